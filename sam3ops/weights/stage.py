"""The weights stage: a hub download or a random preset, each in its own MLflow run.

The CLI commands (``download``, ``init``) and the pipeline both call these; ``nested=True`` makes
the run a child of the active one (the pipeline's).
"""

from __future__ import annotations

from pathlib import Path

from sam3ops import tracking


def download_stage(*, repo_id: str, revision: str, output: str, include: str, token: str | None = None,
                   nested: bool = False):
    """Download weights from the hub in a ``download`` run; return (DownloadResult, run id)."""
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
    return result, run.info.run_id


def init_stage(*, preset: str, output: str = "auto", seed: int = 0, force: bool = False, nested: bool = False):
    """Write a random-weights preset in an ``init`` run; return (InitResult, run id)."""
    import mlflow

    from sam3ops.weights import presets

    params = {"preset": preset, "output": output, "seed": seed}
    folder = Path(f"weights/sam3-{preset}" if output == "auto" else output)
    with tracking.stage_run("init", params=params, tags={"weights_random": "true", "preset": preset},
                            nested=nested) as run:
        result = presets.init_weights(preset=preset, output=folder, seed=seed, force=force)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "reused": str(result.reused).lower(),
                         "weights_dir": str(folder.resolve())})
        if not result.reused:
            mlflow.log_metrics({"parameters": result.parameters, "seconds": result.seconds})
        mlflow.log_metric("bytes_written", sum(f.size for f in result.manifest.files))
        mlflow.log_artifact(str(folder / "manifest.json"))
    return result, run.info.run_id
