"""Versions registered before the registry became a package still load."""

from sam3ops.registry.pyfunc import Sam3PyFunc


def test_the_old_entry_files_import_still_finds_the_model_class():
    namespace: dict = {}
    exec("from sam3ops.pyfunc import Sam3PyFunc", namespace)  # the line in those versions' entry file
    assert namespace["Sam3PyFunc"] is Sam3PyFunc


OLD_ENTRY = "import mlflow\nfrom sam3ops.pyfunc import Sam3PyFunc\n\nmlflow.models.set_model(Sam3PyFunc())\n"


def test_a_version_registered_the_old_way_still_loads_and_pulls(tiny_weights, tmp_path):
    """As `register` made versions before logged models: a copy of the files inside a register run's
    model, no code shipped (``code: null``), its entry importing the installed sam3ops."""
    import mlflow
    import yaml

    from sam3ops.checkpoint.manifest import Manifest, file_hashes
    from sam3ops.registry import pull
    from sam3ops.registry.logged import link_tree
    from tests.support.registry import image_bytes

    entry = tmp_path / "entry.py"
    entry.write_text(OLD_ENTRY)
    weights = link_tree(tiny_weights, tmp_path / "weights")
    sha = file_hashes(weights / "manifest.json")[0]
    config = {"format": "fp32", "precision": "fp32", "manifest_sha256": sha}
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=str(entry), artifacts={"weights": str(weights)},
                                       model_config=config, pip_requirements=["mlflow"])
    version = mlflow.register_model(info.model_uri, "sam3", tags={**config, "parity": "reference"}).version
    where = mlflow.MlflowClient().get_model_version_download_uri("sam3", version)
    assert yaml.safe_load(mlflow.artifacts.load_text(f"{where}/MLmodel"))["flavors"]["python_function"]["code"] is None
    [out] = mlflow.pyfunc.load_model(f"models:/sam3/{version}").predict({"image": image_bytes(), "prompts": ["cat"]})
    assert out["height"] == 512 and out["prompts"] == ["cat"]
    pulled = pull(dest=tmp_path / "pulled", name="sam3", version=version)
    listed = [entry.path for entry in Manifest.read(tiny_weights).files]
    assert sorted(pulled.files) == sorted([*listed, "manifest.json"])
