"""The weights stage: a hub download or a random preset, each in its own MLflow run.

The CLI commands (``download``, ``init``) and the pipeline both call these; ``nested=True`` makes
the run a child of the active one (the pipeline's).
"""

from __future__ import annotations

from pathlib import Path

from sam3ops import tracking
from sam3ops.tracking.result import StageResult
from sam3ops.weights.config import preset_folder


def download_stage(*, repo_id: str, revision: str, output: str, include: str, token: str | None = None,
                   nested: bool = False) -> StageResult:
    """Download weights from the hub into ``output`` in a ``download`` run, verified and resumable.

    Args:
        repo_id, revision: the hub repo and the branch, tag or commit (pinned to its commit sha).
        output: the destination folder (laid out like the repo, plus ``manifest.json``).
        include: which files: ``transformers``, ``pt`` or ``all``.
        token: a Hugging Face token (else HF_TOKEN or the stored login); never logged.
        nested: run as a child of the active run.

    Returns:
        A :class:`StageResult` whose outputs are the ``DownloadResult`` (``reused`` when every file
        was already intact).

    Raises:
        HubError, IntegrityError, DiskSpaceError: from the download (the run ends FAILED).
    """
    import mlflow

    from sam3ops.weights import hub

    params = {"repo_id": repo_id, "revision": revision, "output": output, "include": include}
    with tracking.stage_run("download", params=params, tags={"weights_random": "false"}, nested=nested) as run:
        result = hub.download(repo_id=repo_id, revision=revision, output=Path(output), include=include, token=token)
        # weights_dir: where `sam3ops register` finds the files (checked against the logged manifest).
        mlflow.set_tags({"weights_commit": result.manifest.commit, "repo_id": repo_id,
                         "weights_dir": str(Path(output).resolve())})
        mlflow.log_metrics({
            "bytes_downloaded": result.bytes_downloaded,
            "seconds": result.seconds,
            "mb_per_s": result.mb_per_s,
            "files_fetched": len(result.fetched),
            "files_total": len(result.manifest.files),
        })
        mlflow.log_artifact(str(Path(output) / "manifest.json"))
        _log_model(Path(output), {"weights_random": "false", "weights_commit": result.manifest.commit})
    return StageResult(stage="download", run_id=run.info.run_id, outputs=result, reused=not result.fetched)


def init_stage(*, preset: str, output: str = "auto", seed: int = 0, force: bool = False,
               nested: bool = False) -> StageResult:
    """Write a random-weights preset in an ``init`` run.

    Args:
        preset: ``tiny`` or ``full``.
        output: the destination folder; ``auto`` means ``weights/sam3-<preset>``.
        seed: the same seed gives the same weights.
        force: replace ``output`` when it holds something else.
        nested: run as a child of the active run.

    Returns:
        A :class:`StageResult` whose outputs are the ``InitResult`` (``reused`` when ``output``
        already held this preset and seed).

    Raises:
        UsageError: an unknown preset, or ``output`` holds other files and ``force`` is not set.
    """
    import mlflow

    from sam3ops.weights import presets

    params = {"preset": preset, "output": output, "seed": seed}
    folder = Path(preset_folder(preset) if output == "auto" else output)
    with tracking.stage_run("init", params=params, tags={"weights_random": "true", "preset": preset},
                            nested=nested) as run:
        result = presets.init_weights(preset=preset, output=folder, seed=seed, force=force)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "reused": str(result.reused).lower(),
                         "weights_dir": str(folder.resolve())})
        if not result.reused:
            mlflow.log_metrics({"parameters": result.parameters, "seconds": result.seconds})
        mlflow.log_metric("bytes_written", sum(f.size for f in result.manifest.files))
        mlflow.log_artifact(str(folder / "manifest.json"))
        _log_model(folder, {"weights_random": "true", "weights_commit": result.manifest.commit, "preset": preset})
    return StageResult(stage="init", run_id=run.info.run_id, outputs=result, reused=result.reused)


def _log_model(folder: Path, tags: dict[str, str]) -> None:
    """The fp32 checkpoint as a logged model (``safetensors-fp32``), once: a folder already logged
    with the same files is linked (tag ``model_id``), not copied again."""
    from sam3ops.registry.logged import reuse_or_log

    reuse_or_log(folder, format="fp32", precision="fp32", tags=tags)
