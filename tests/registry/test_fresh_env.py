"""The production version runs where sam3ops was never installed: a fresh virtual environment built
only from the version's own requirements.txt loads ``models:/sam3@production`` and predicts.

Slow (a few minutes: torch and its CUDA libraries come from this machine's disk, the rest from the
package registry through pip's cache), so it builds one environment for one version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import mlflow
import pytest

from sam3ops.registry import promote, register
from sam3ops.weights.stage import init_stage
from tests.support.registry import image_bytes

pytestmark = pytest.mark.slow

PREDICT = r"""
import json, sys
import mlflow
model = mlflow.pyfunc.load_model("models:/sam3@production")
[out] = model.predict({"image": open(sys.argv[1], "rb").read(), "prompts": ["person", "cup"]},
                      params={"score_threshold": 0.0})
print(json.dumps({"keys": sorted(out), "instances": len(out["labels"]), "size": [out["height"], out["width"]]}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would reach the workspace's packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(extra)
    return env


def _fresh_env(requirements: Path, env: dict[str, str]) -> Path:
    """The python of a virtual environment made from ``requirements`` alone (no system site packages).

    Built once per requirements file content, into ``SAM3OPS_TEST_ENVS`` (default
    ``~/.cache/sam3ops/test-envs``), staged and renamed so an interrupted build is never reused:
    installing torch with its CUDA libraries takes minutes to tens of minutes on a busy disk.
    """
    import hashlib
    import shutil

    root = Path(os.environ.get("SAM3OPS_TEST_ENVS") or Path.home() / ".cache" / "sam3ops" / "test-envs")
    target = root / hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    if not (target / "bin" / "python").exists():
        staging = root / f".{target.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, system_site_packages=False).create(staging)
        installed = subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
                                    "-r", str(requirements)], env=env, capture_output=True, text=True, timeout=3600)
        assert installed.returncode == 0, installed.stderr[-3000:]
        staging.rename(target)
    assert "include-system-site-packages = false" in (target / "pyvenv.cfg").read_text()
    return target / "bin" / "python"


def test_a_fresh_environment_from_the_requirements_alone_serves_production(tiny_weights, tmp_path, capsys):
    import shutil

    shutil.copytree(tiny_weights, tmp_path / "tiny")
    run_id = init_stage(preset="tiny", output=str(tmp_path / "tiny"), seed=0).run_id
    version = register(run_id=run_id, name="sam3").version
    promote(version=version, name="sam3", allow_random=True, reason="fresh-environment test")
    # MLflow's own way to a model's requirements (only that file is fetched).
    requirements = Path(mlflow.pyfunc.get_model_dependencies("models:/sam3@production"))
    env = _clean_env(MLFLOW_TRACKING_URI=mlflow.get_tracking_uri(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    python = _fresh_env(requirements, env)
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(image_bytes())
    # Fresh indeed: sam3ops is nowhere in this environment (only inside the model, as its code).
    probe = subprocess.run([str(python), "-c", "import sam3ops"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode != 0 and "No module named 'sam3ops'" in probe.stderr
    done = subprocess.run([str(python), "-c", PREDICT, str(photo)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["keys"] == ["boxes", "height", "labels", "masks", "prompts", "scores", "width"]
    assert out["size"] == [512, 512] and out["instances"] > 0
    # The same request here, through this workspace's sam3ops, gives as many instances.
    model = mlflow.pyfunc.load_model("models:/sam3@production")
    [here] = model.predict({"image": image_bytes(), "prompts": ["person", "cup"]}, params={"score_threshold": 0.0})
    assert len(here["labels"]) == out["instances"]
    with capsys.disabled():
        print(f"\nfresh environment from {len(requirements.read_text().splitlines())} requirements: "
              f"{sys.version.split()[0]}, predicted {out['instances']} instances")
