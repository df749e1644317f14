"""A weights folder as an MLflow 3 logged model: logged once, by the stage that wrote it.

The stage that writes a checkpoint (``download``, ``init``, ``convert``) logs it here as a pyfunc
LoggedModel in experiment ``sam3-models``, so that every format sits side by side in that
experiment's models view, named by format and precision (``safetensors-fp32``, ``onnx-fp16``,
``tensorrt-fp16``). Registering points the registry at that model (``models:/<model_id>``), with
no second copy. Parity and benchmark metrics are linked to it (``model_id``) and to the photos
they were measured on (a dataset), and promotion ranks the models with ``search_logged_models``.

Each model ships its own serving code (the ``sam3ops`` package as MLflow ``code_paths``) and the
requirements of its format (:mod:`sam3ops.registry.requirements`): an environment built from its
``requirements.txt`` alone loads and runs it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from pathlib import Path

import sam3ops
from sam3ops import tracking
from sam3ops.checkpoint.kinds import layout_of
from sam3ops.checkpoint.manifest import file_hashes, verify_folder
from sam3ops.registry.requirements import no_deps_requirements, pip_requirements, runtime_of
from sam3ops.tracking.store import experiment_name

MODELS_EXPERIMENT = experiment_name("models")
MODEL_ID_TAG = "model_id"  # on the run that logged the model
CODE_DIR = Path(sam3ops.__file__).parent
NO_DEPS_FILE = "requirements-no-deps.txt"  # beside requirements.txt: `pip install --no-deps -r` it after
FAMILY = {"torch": "safetensors", "onnx": "onnx", "tensorrt": "tensorrt"}


def model_name(format: str, precision: str) -> str:
    """The logged model's name: its file format and precision (``safetensors-bf16``, ``onnx-fp32``)."""
    family = "compiled" if format == "compiled" else FAMILY[runtime_of(format)]
    return f"{family}-{precision}"


def log_weights_model(folder: Path, *, format: str, precision: str, tags: dict[str, str] | None = None) -> str:
    """Log ``folder`` (verified against its manifest) as a LoggedModel of the active run; tag the run
    ``model_id``. Returns the model id.

    Args:
        folder: a weights folder with its ``manifest.json``.
        format, precision: what it is (the version tags of the same names).
        tags: more tags for the model (weights_random, weights_commit, trt_version, ...).
    """
    import mlflow

    from sam3ops.registry.pyfunc import WEIGHTS_ARTIFACT

    folder = Path(folder)
    verify_folder(folder, what=f"the {format} weights folder {folder}", only_listed=True,
                  hint="write the folder again; its files changed after they were written")
    manifest_sha256 = file_hashes(folder / "manifest.json")[0]
    tags = {**(tags or {}), "format": format, "precision": precision, "manifest_sha256": manifest_sha256}
    run_id = mlflow.active_run().info.run_id
    model = mlflow.initialize_logged_model(name=model_name(format, precision), source_run_id=run_id,
                                           tags=tags, experiment_id=tracking.ensure_experiment(MODELS_EXPERIMENT))
    with tempfile.TemporaryDirectory(prefix="sam3ops-model-") as tmp:
        code = shutil.copytree(CODE_DIR, Path(tmp) / "sam3ops", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # MLflow names the artifact's folder after the source folder: stage it as `weights` (pull reads there).
        weights = link_tree(folder, Path(tmp) / WEIGHTS_ARTIFACT)
        layout = layout_of(folder)
        with _artifact_bars_as_the_hubs():
            _log_no_deps_requirements(model.model_id, no_deps_requirements(format, layout=layout), Path(tmp))
            _log_pyfunc(model, weights, code, format=format, precision=precision, run_id=run_id, layout=layout,
                        manifest_sha256=manifest_sha256, trt_version=tags.get("trt_version"))
    mlflow.set_tag(MODEL_ID_TAG, model.model_id)
    return model.model_id


def _log_no_deps_requirements(model_id: str, requirements: list[str], tmp: Path) -> None:
    """``requirements-no-deps.txt`` beside MLflow's ``requirements.txt`` when the layout has such
    requirements (Meta's ``sam3``): installed after it with ``pip install --no-deps -r``."""
    import mlflow

    if not requirements:
        return
    path = tmp / NO_DEPS_FILE
    path.write_text("\n".join(requirements) + "\n")
    mlflow.MlflowClient().log_model_artifact(model_id, str(path))


def _log_pyfunc(model, weights: Path, code: Path, *, format: str, precision: str, run_id: str, layout: str,
                manifest_sha256: str, trt_version: str | None) -> None:
    """``mlflow.pyfunc.log_model`` into the initialized ``model``: the entry, weights, code, requirements."""
    import mlflow

    from sam3ops.registry.pyfunc import ENTRY_FILE, WEIGHTS_ARTIFACT, input_example, signature

    mlflow.pyfunc.log_model(
        name=model.name, model_id=model.model_id, python_model=str(ENTRY_FILE),
        artifacts={WEIGHTS_ARTIFACT: str(weights)}, code_paths=[str(code)],
        # A 32x32 image with one prompt: MLflow runs the model on the example once while logging.
        signature=signature(), input_example=input_example(),
        pip_requirements=pip_requirements(format, layout=layout, trt_version=trt_version),
        # No model_config: MLflow logs it as params of the active run (download, init and convert
        # runs would carry format/precision/manifest_sha256 params). The pyfunc reads these from the
        # MLmodel's metadata (:func:`sam3ops.registry.pyfunc.shipped_metadata`), logged nowhere else.
        metadata={"sam3ops": {"format": format, "precision": precision, "manifest_sha256": manifest_sha256,
                              "source_run_id": run_id}},
    )


@contextlib.contextmanager
def _artifact_bars_as_the_hubs():
    """MLflow's artifact progress bars off while logging where the hub's are off
    (``HF_HUB_DISABLE_PROGRESS_BARS``): log_model downloads the model back to run its input example,
    with a "Downloading artifacts" bar. ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``, when set, decides."""
    import os

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    try:
        from huggingface_hub.utils import are_progress_bars_disabled

        quiet = are_progress_bars_disabled()
    except ImportError:
        quiet = False
    if not quiet or key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def link_tree(folder: Path, target: Path) -> Path:
    """``target`` holding the manifest's files of ``folder`` and the manifest, hard-linked where the
    file system allows (no copy of a multi-GB checkpoint), copied otherwise. Returns ``target``."""
    import os

    from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest

    for rel in [entry.path for entry in Manifest.read(folder).files] + [MANIFEST_NAME]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(folder / rel, target / rel)
        except OSError:
            shutil.copy2(folder / rel, target / rel)
    return target


def reuse_or_log(folder: Path, *, format: str, precision: str, tags: dict[str, str] | None = None) -> str:
    """The id of a READY logged model of exactly these files (same manifest), else a new one logged
    by :func:`log_weights_model`; the active run is tagged with it either way."""
    import mlflow

    found = find_model(manifest_sha256=file_hashes(Path(folder) / "manifest.json")[0])
    if found is None:
        return log_weights_model(folder, format=format, precision=precision, tags=tags)
    mlflow.set_tag(MODEL_ID_TAG, found.model_id)
    return found.model_id


def find_model(*, manifest_sha256: str):
    """The newest READY LoggedModel in ``sam3-models`` whose files have this manifest, or None."""
    import mlflow

    experiment = mlflow.MlflowClient().get_experiment_by_name(MODELS_EXPERIMENT)
    if experiment is None:
        return None
    found = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id], output_format="list",
        filter_string=f"tags.manifest_sha256 = '{manifest_sha256}'",
        order_by=[{"field_name": "creation_time", "ascending": False}])
    # The status is checked here: MLflow 3.17's SQL store matches no model with `status = 'READY'`.
    return next((model for model in found if _ready(model)), None)


def _ready(model) -> bool:
    return getattr(model.status, "value", str(model.status)) == "READY"


def model_id_of(weights: str, folder: Path | None = None) -> str | None:
    """The logged model that ``weights`` (as a benchmark takes it) is, or None when there is none.

    ``models:/<model_id>``, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (the version's model),
    ``runs:/RUN/...`` (the model that run logged), or a local folder (the model with its manifest).
    A lookup that fails answers None: linking metrics to a model is decoration of the run.
    """
    import mlflow

    client = mlflow.MlflowClient()
    with contextlib.suppress(Exception):
        if weights.startswith("models:/m-"):
            return weights.removeprefix("models:/").strip("/")
        if weights.startswith("models:/"):
            from sam3ops.registry.client import parse_model_uri

            name, version, alias = parse_model_uri(weights)
            mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
            return getattr(mv, "model_id", None)
        if weights.startswith("runs:/"):
            return client.get_run(weights.removeprefix("runs:/").split("/")[0]).data.tags.get(MODEL_ID_TAG)
        manifest = Path(folder or weights) / "manifest.json"
        if manifest.is_file() and (found := find_model(manifest_sha256=file_hashes(manifest)[0])):
            return found.model_id
    return None


def photo_dataset(photos: list[tuple[str, object]], *, name: str, source: str | None = None):
    """The photos a metric was measured on, as an MLflow dataset (logged on the active run).

    Args:
        photos: (name, PIL image) pairs; each row records the name, size and a sha256 of the pixels,
            so the digest changes when the photos do.
        name: the dataset's name (``parity-photos``, ``benchmark-photos``).
        source: where the photos are: a folder, default scikit-image's bundled data.
    """
    import hashlib

    import mlflow
    import pandas as pd

    rows = [{"photo": label, "width": image.size[0], "height": image.size[1],
             "pixels_sha256": hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()} for label, image in photos]
    if source is None:
        import skimage.data

        source = str(Path(skimage.data.__file__).parent)
    with warnings.catch_warnings():
        # MLflow registers its local-path source twice and warns that a path "can be interpreted in
        # multiple ways" (both are the same class).
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        # Its schema hint is for a model's inputs (an int column cannot hold a missing value); the
        # photo sizes here are never missing, and the hint printed once per dataset in `make demo`.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        dataset = mlflow.data.from_pandas(pd.DataFrame(rows), source=source, name=name)
        mlflow.log_input(dataset, context=name.split("-")[0])  # where the schema is inferred
    return dataset
