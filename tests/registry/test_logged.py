"""Versions as MLflow 3 logged models: each checkpoint stored once, registered by reference, its
metrics linked to it and to the photos, ranked with search_logged_models; each ships its serving
code and the requirements of its format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from sam3ops.registry import pull, register
from sam3ops.registry.logged import MODELS_EXPERIMENT, log_weights_model, model_name
from sam3ops.registry.ranking import rank
from sam3ops.weights.stage import init_stage
from tests.conftest import subprocess_env
from tests.support.registry import image_bytes, point_at

pytestmark = pytest.mark.slow

WORKSPACE_ONLY = ("plotly", "scikit-image", "click", "onnxconverter-common", "onnx", "onnxscript", "open-clip-torch",
                  "nvidia-ml-py", "psutil", "requests", "huggingface-hub")


def _bytes_under(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _model_file(model_id: str, rel: str) -> str:
    """A file of a logged model (``models:/<model_id>/PATH`` is read as a registered model's name)."""
    return mlflow.artifacts.load_text(f"{mlflow.get_logged_model(model_id).artifact_location}/{rel}")


def _names(requirements: str) -> list[str]:
    return [line.split("==")[0] for line in requirements.splitlines() if line and not line.startswith("#")]


def test_one_registration_of_the_fp32_source_stores_it_once(tiny_weights, tmp_path, capsys):
    shutil.copytree(tiny_weights, tmp_path / "tiny")
    checkpoint = _bytes_under(tmp_path / "tiny")
    run_id = init_stage(preset="tiny", output=str(tmp_path / "tiny"), seed=0).run_id
    logged = _bytes_under(tmp_path / "mlruns")
    result = register(run_id=run_id, name="sam3")
    stored = _bytes_under(tmp_path / "mlruns")
    with capsys.disabled():
        print(f"\ntiny fp32 source: checkpoint {checkpoint} B; artifact store after init {logged} B, "
              f"after register {stored} B ({stored / checkpoint:.3f}x)")
    # The init run logged the checkpoint once (plus ~0.7 MB of serving code and a 2 KB example);
    # registering added no weights: the version is that logged model.
    assert checkpoint <= logged < 1.1 * checkpoint + 1_000_000
    assert stored - logged < 50_000
    model_id = mlflow.get_run(run_id).data.tags["model_id"]
    version = mlflow.MlflowClient().get_model_version("sam3", result.version)
    assert version.source == f"models:/{model_id}" and version.tags["model_id"] == model_id
    assert not mlflow.MlflowClient().list_artifacts(result.register_run_id)  # the register run holds no copy
    model = mlflow.get_logged_model(model_id)
    assert model.name == "safetensors-fp32" == model_name("fp32", "fp32")
    assert model.experiment_id == mlflow.get_experiment_by_name(MODELS_EXPERIMENT).experiment_id
    # A second init of the same files links that model instead of storing them again.
    again = init_stage(preset="tiny", output=str(tmp_path / "tiny"), seed=0).run_id
    assert mlflow.get_run(again).data.tags["model_id"] == model_id
    assert _bytes_under(tmp_path / "mlruns") - stored < 50_000  # that run's manifest.json artifact, no weights
    # Pull verifies the version's files against the manifest, as for versions registered before.
    pulled = pull(dest=tmp_path / "pulled", name="sam3", version=result.version)
    assert pulled.files and all((tmp_path / "tiny" / rel).read_bytes() == (tmp_path / "pulled" / rel).read_bytes()
                                for rel in pulled.files)


def test_a_version_ships_its_code_and_its_formats_requirements(tiny_weights, tiny_onnx, tmp_path):
    with mlflow.start_run():  # one model per run, as the stages do
        safetensors = log_weights_model(tiny_weights, format="fp16", precision="fp16")
    with mlflow.start_run():
        onnx = log_weights_model(tiny_onnx, format="onnx", precision="fp32")
    for model_id, runtime, absent in ((safetensors, "safetensors", "onnxruntime"),
                                      (onnx, "onnxruntime", "safetensors")):
        conf = yaml.safe_load(_model_file(model_id, "MLmodel"))["flavors"]["python_function"]
        assert conf["code"] == "code"
        assert "from sam3ops.registry.pyfunc import Sam3PyFunc" in _model_file(model_id, "pyfunc_entry.py")
        requirements = _names(_model_file(model_id, "requirements.txt"))
        assert {"mlflow", "torch", "transformers", "pandas", "pillow", "pycocotools"} <= set(requirements)
        assert any(r.startswith(runtime) for r in requirements), requirements
        assert not any(r.startswith(absent) for r in requirements), requirements
        assert not set(requirements) & set(WORKSPACE_ONLY), requirements
    assert mlflow.get_logged_model(onnx).name == "onnx-fp32"


# Loads a model and predicts in a process of its own, then lists the distributions it imported.
IMPORTS = r"""
import json, sys
from importlib import metadata
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict({"image": open(sys.argv[2], "rb").read(), "prompts": ["person"]})
import sam3ops
names = {m.split(".")[0] for m in list(sys.modules)} - set(sys.stdlib_module_names)
dists = metadata.packages_distributions()
found = sorted({d for n in names if n != "sam3ops" for d in dists.get(n, [])})
print(json.dumps({"sam3ops": sam3ops.__file__, "dists": found}))
"""


# Imported only because this workspace has them: each importer takes it when present and goes on without
# it (the fresh-environment test runs without all three).
OPTIONAL_HERE = {"psutil": "opentelemetry.sdk.resources (mlflow's tracing)",
                 "nvidia-ml-py": "torch.cuda (pynvml)", "defusedxml": "torchvision.datasets"}


def _closure(requirements: list[str]) -> set[str]:
    """The distributions that installing ``requirements`` brings in (their dependencies, recursively)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, pending = set(), [canonicalize_name(r) for r in requirements]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(req.name))
    return seen


@pytest.mark.parametrize("fmt", ["fp16", "onnx"])
def test_what_serving_imports_is_in_the_requirements(fmt, tiny_weights, tiny_onnx, tmp_path):
    """Load and predict in a fresh process: every third-party package imported comes with the model's
    requirements, and sam3ops itself comes from the model's own code."""
    from packaging.utils import canonicalize_name

    with mlflow.start_run():
        model_id = log_weights_model(tiny_onnx if fmt == "onnx" else tiny_weights, format=fmt,
                                     precision="fp32" if fmt == "onnx" else "fp16")
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(tmp_path / "model")))
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(image_bytes())
    env = subprocess_env()
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", IMPORTS, str(local), str(photo)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["sam3ops"]).is_relative_to(local / "code"), report["sam3ops"]
    allowed = _closure([*_names((local / "requirements.txt").read_text()), "mlflow"])
    missing = {d for d in map(canonicalize_name, report["dists"]) if d not in allowed and d not in OPTIONAL_HERE}
    assert not missing, f"imported while serving but not required: {sorted(missing)}"


def test_metrics_are_linked_to_the_model_and_the_photos(formats, monkeypatch):
    point_at(monkeypatch, formats.uri)
    experiment = mlflow.get_experiment_by_name(MODELS_EXPERIMENT)
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert sorted(m.name for m in models) == sorted(formats.runs)
    for model in models:
        by_key = {}
        for metric in model.metrics:
            by_key.setdefault(metric.key, set()).add(metric.dataset_name)
        assert "benchmark-photos" in by_key["ms_per_image"], model.name
        if model.name != "safetensors-fp32":  # the source is the reference: no gate
            assert "parity-photos" in by_key["parity_mask_iou"], model.name
        run = mlflow.get_run(formats.runs[model.name])
        assert run.data.tags["model_id"] == model.model_id
        if model.name != "safetensors-fp32":
            assert "parity-photos" in {i.dataset.name for i in run.inputs.dataset_inputs}


def test_rank_orders_the_registered_formats_by_their_logged_models(formats, monkeypatch, capsys):
    from tests.support.cli import run_cli

    point_at(monkeypatch, formats.uri)
    ranked = rank(formats.name, allow_random=True)
    assert sorted(r.model_name for r in ranked) == sorted(formats.versions)
    values = [r.value for r in ranked]
    assert values == sorted(values)
    for r in ranked:
        assert r.version == formats.versions[r.model_name]
        history = [m for m in mlflow.get_logged_model(r.model_id).metrics if m.key == "ms_per_image"]
        assert r.value == max(history, key=lambda m: (m.timestamp, m.step)).value
        assert (r.parity_mask_iou is None) == (r.model_name == "safetensors-fp32")
    # Without --allow-random these random-weight versions are not promotable: nothing is ranked.
    assert rank(formats.name) == []
    code, out, err = run_cli(capsys, "rank", "--name", formats.name, "--allow-random")
    assert code == 0, err
    assert [line.split()[3] for line in out.splitlines()] == [r.model_name for r in ranked]
    code, out, _ = run_cli(capsys, "rank", "--name", formats.name, "--metric", "throughput_img_s",
                           "--higher-is-better", "--allow-random")
    throughput = [float(line.split("throughput_img_s=")[1].split()[0]) for line in out.splitlines()]
    assert code == 0 and throughput == sorted(throughput, reverse=True)
