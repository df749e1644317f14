"""What machine and software a run ran on, as MLflow tags.

It never imports mlflow, so measurement code (which must run on hosts without mlflow) can reuse it.
"""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import sam3ops


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(path: Path) -> str | None:
    """The commit checked out at ``path``, with ``+dirty`` for uncommitted changes; None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def gpu_name() -> str:
    """Name of CUDA device 0 as torch sees it, or ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def environment_tags(repo_root: Path) -> dict[str, str]:
    """Tags that say where and with what a run ran: git commit, host, versions, GPU."""
    import torch

    tags = {
        "sam3ops.version": sam3ops.__version__,
        "host": socket.gethostname(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "transformers_version": _version("transformers"),
        "mlflow_version": _version("mlflow"),
        "cuda_version": torch.version.cuda or "none",
        "gpu_name": gpu_name(),
    }
    commit = git_commit(repo_root)
    if commit:
        tags["git_commit"] = commit
    return tags
