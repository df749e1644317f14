"""The main job: weights -> predict -> convert -> benchmark -> register -> promote, in one parent run.

Each stage is a child run of the pipeline's run, started through the stage's public function. A
stage whose inputs and parameters match an earlier FINISHED run (same reuse key: its parameters
plus the content of the folders it reads, and its output still intact) is reused, not recomputed;
the summary says which. Then every artifact that passed parity (and the fp32 source) is
registered, and the fastest by the chosen policy is promoted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam3ops import registry, tracking
from sam3ops.bench.stage import bench_stage
from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest, is_intact
from sam3ops.convert.stage import convert_stage
from sam3ops.pipeline.config import PipelineConfig
from sam3ops.pipeline.summary import PipelineSummary, StageRow
from sam3ops.predict.stage import predict_stage
from sam3ops.tracking.result import StageResult
from sam3ops.tracking.reuse import find_reusable, folder_digest, mark, stage_key
from sam3ops.weights.config import preset_folder
from sam3ops.weights.stage import init_stage

log = logging.getLogger(__name__)

PASSED = ("pass", "reference")  # the parity of an artifact that may be benchmarked, registered and promoted


@dataclass
class _Artifact:
    """A weights folder the pipeline benchmarks and may register."""

    label: str  # fp32, fp16, onnx, ...
    folder: Path
    run_id: str | None  # the run that made it (registered from)
    parity: str  # pass | fail | reference


def run_pipeline(**options: Any) -> StageResult[PipelineSummary]:
    """Run the whole chain in one parent run (``sam3-pipeline``, or the run ``mlflow run`` created).

    Args:
        options: the fields of :class:`PipelineConfig` (weights, preset, seed, images, prompt_sets,
            output, device, formats, batch, iterations, policy, model_name, alias); its defaults
            apply. They are validated inside the run: a bad one ends it FAILED with its error.

    Returns:
        A :class:`StageResult` whose outputs are the :class:`PipelineSummary`.

    Raises:
        UsageError: a bad option. Any stage's error (a prediction with failed images included)
            ends the pipeline's run FAILED; a conversion under the parity gate does not: it is a
            row with parity ``fail``, neither benchmarked nor registered.
    """
    with tracking.stage_run("pipeline") as run:
        import mlflow

        from sam3ops.inference.device import resolve_device
        from sam3ops.predict.samples import write_samples

        config = PipelineConfig(**options)
        tracking.log_new_params(config.params())
        formats = config.formats_for(gpu=resolve_device(config.device).type == "cuda")
        rows: list[StageRow] = []
        folder, random, made_by = _weights(config)
        rows.append(StageRow("weights", "fp32", made_by.run_id if made_by else "-",
                             reused=bool(made_by and made_by.reused), parity="reference"))
        inputs = list(config.images) or [str(p) for p in write_samples(Path("samples"))]
        images_ok, instances = _predict(folder, inputs, config, rows, top_k=config.top_k_for(random=random))

        artifacts = [_Artifact("fp32", folder, made_by.run_id if made_by else None, "reference")]
        artifacts += [_convert(folder, fmt, config.device, rows) for fmt in formats]
        scores = {a.label: _benchmark(a, folder, config, rows) for a in artifacts if a.parity in PASSED}
        versions = _register(artifacts, config, rows)
        production = _promote(scores, versions, config, random=random, reason=f"pipeline {run.info.run_id}",
                              rows=rows)
        summary = PipelineSummary(folder, random, images_ok, instances, Path(config.output), rows, production)
        mlflow.set_tags({"weights_random": str(random).lower(), "weights_dir": str(folder),
                         **({"production_version": production} if production else {})})
        mlflow.log_metrics({"images_ok": images_ok, "instances_total": instances,
                            "stages_reused": summary.stages_reused})
        mlflow.log_text(summary.table() + "\n", "summary.txt")
    return StageResult(stage="pipeline", run_id=run.info.run_id, outputs=summary)


def _run_or_reuse(stage: str, key: str, *, intact: Callable[[], bool],
                  start: Callable[[], StageResult]) -> StageResult:
    """The newest FINISHED run with reuse ``key`` while its output is ``intact``, else ``start()``'s run
    (tagged with ``key`` when it finished, so the next identical stage reuses it)."""
    previous = find_reusable(key)
    if previous and intact():
        return StageResult(stage=stage, run_id=previous.info.run_id, reused=True)
    result = start()
    if result.ok:
        mark(result.run_id, key)
    return result


def _weights(config: PipelineConfig) -> tuple[Path, bool, StageResult | None]:
    """Real weights when ``config.weights`` holds a verified download, otherwise the random preset.

    Returns the folder, whether its weights are random, and the run that made them (None when unknown).
    """
    folder = Path(config.weights)
    if (folder / MANIFEST_NAME).is_file():
        manifest = Manifest.read(folder)
        if is_intact(folder):
            log.info("using %s (%s@%s)", folder, manifest.repo_id, manifest.commit[:12])
            return folder, manifest.random, _download_run(manifest.commit)
        log.warning("%s does not match its manifest; falling back to the %s preset", folder, config.preset)
    log.info("no verified weights in %s: using the %s preset (RANDOM weights)", folder, config.preset)
    output = Path(preset_folder(config.preset))  # init's output for `auto`
    key = stage_key("init", preset=config.preset, seed=config.seed, output=str(output.resolve()))
    made = _run_or_reuse("init", key, intact=lambda: is_intact(output),
                         start=lambda: init_stage(preset=config.preset, seed=config.seed, nested=True))
    return output, True, made


def _download_run(commit: str) -> StageResult | None:
    """The newest finished download run of weights ``commit``, if any (as a reused result)."""
    import mlflow

    client = mlflow.MlflowClient()
    found = client.search_runs([e.experiment_id for e in client.search_experiments()],
                               f"tags.weights_commit = '{commit}' and attributes.status = 'FINISHED' "
                               f"and tags.`{tracking.STAGE_TAG}` = 'download'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return StageResult(stage="download", run_id=found[0].info.run_id, reused=True) if found else None


def _files_digest(paths: list[str]) -> str:
    from sam3ops.checkpoint.manifest import file_hashes
    from sam3ops.inference import collect_images

    return hashlib.sha256(json.dumps([(str(p), file_hashes(p)[0]) for p in collect_images(paths)]).encode()).hexdigest()


def _predict(folder: Path, inputs: list[str], config: PipelineConfig, rows: list[StageRow], *,
             top_k: int | None) -> tuple[int, int]:
    """Predict on ``inputs`` (or reuse an identical earlier prediction); return (images ok, instances).

    ``top_k``: the k best instances per prompt (random weights: their scores pass no threshold), or
    None for the score threshold.

    Raises:
        PartialFailureError: some images failed (the pipeline stops: its predictions are incomplete).
    """
    import mlflow

    output = Path(config.output)
    key = stage_key("predict", weights=folder_digest(folder), images=_files_digest(inputs),
                    prompt_sets=list(config.prompt_sets), output=str(output.resolve()), device=config.device,
                    top_k=top_k)
    result = _run_or_reuse("predict", key, intact=output.is_dir, start=lambda: predict_stage(
        images=inputs, weights=str(folder), prompt_sets=list(config.prompt_sets), output=config.output,
        device=config.device, top_k=top_k, nested=True)).raise_for_status()
    # The run's metrics, made now or reused: the same numbers either way.
    metrics = mlflow.MlflowClient().get_run(result.run_id).data.metrics
    images_ok, instances = int(metrics.get("images_ok", 0)), int(metrics.get("instances_total", 0))
    selection = f"top-{top_k} per prompt" if top_k else "score threshold"
    rows.append(StageRow("predict", "fp32", result.run_id, reused=result.reused,
                         note=selection if result.reused else f"{images_ok} images, {selection}"))
    return images_ok, instances


def _convert(source: Path, fmt: str, device: str, rows: list[StageRow]) -> _Artifact:
    """Convert ``source`` to ``fmt`` (or reuse an identical earlier conversion) in a child run."""
    import mlflow

    output = source.parent / f"{source.name}-{fmt}"
    key = stage_key("convert", format=fmt, source=folder_digest(source), device=device, output=str(output.resolve()))
    result = _run_or_reuse("convert", key, intact=lambda: is_intact(output), start=lambda: convert_stage(
        input_dir=str(source), format=fmt, output=str(output), overwrite=True, device=device, nested=True))
    parity = mlflow.MlflowClient().get_run(result.run_id).data.tags.get("parity", "")
    rows.append(StageRow("convert", fmt, result.run_id, reused=result.reused, parity=parity,
                         note=result.error.message[:60] if result.error else ""))
    return _Artifact(fmt, output, result.run_id, parity)


def _benchmark(artifact: _Artifact, source: Path, config: PipelineConfig, rows: list[StageRow]) -> float | None:
    """Benchmark one artifact (or reuse an identical earlier benchmark); return its ranking score
    under the policy (lower is better; None when it has no figure for the policy)."""
    import mlflow

    precision = artifact.label if artifact.label in ("fp16", "bf16") else "fp32"
    key = stage_key("benchmark", weights=folder_digest(artifact.folder), batch=config.batch, device=config.device,
                    iterations=config.iterations, precision=precision)
    reference = None if artifact.label == "fp32" else str(source)  # accuracy always against the fp32 source
    result = _run_or_reuse("benchmark", key, intact=lambda: True, start=lambda: bench_stage(
        weights=str(artifact.folder), reference=reference, source_run_id=artifact.run_id, nested=True,
        precisions=precision, batches=config.batch, warmup=1, iterations=config.iterations, device=config.device))
    per_batch: dict[int, dict] = {}
    for name in ("ms_per_image", "throughput_img_s"):
        for point in mlflow.MlflowClient().get_metric_history(result.run_id, name):
            per_batch.setdefault(point.step, {})[name] = point.value
    score, ms, throughput = _score(per_batch, config.ranking)
    rows.append(StageRow("benchmark", artifact.label, result.run_id, reused=result.reused, parity=artifact.parity,
                         ms_per_image=ms, throughput_img_s=throughput))
    return score


Score = tuple[float | None, float | None, float | None]


def _score(per_batch: dict[int, dict], policy: tuple[str, int | None]) -> Score:
    """(ranking score: lower is better, ms per image, images/s) of a benchmark under ``policy``."""
    kind, batch = policy
    if kind == "latency":
        at = per_batch.get(batch, {})
        ms = at.get("ms_per_image")
        return ms, ms, at.get("throughput_img_s")
    best = max((v.get("throughput_img_s") or 0.0, b) for b, v in per_batch.items()) if per_batch else (0.0, None)
    at = per_batch.get(best[1], {})
    return (-best[0] if best[0] else None), at.get("ms_per_image"), at.get("throughput_img_s")


def _register(artifacts: list[_Artifact], config: PipelineConfig, rows: list[StageRow]) -> dict[str, str]:
    """Register every artifact that passed parity (and the fp32 source); return its version per label."""
    versions = {}
    for artifact in artifacts:
        if artifact.parity not in PASSED or not artifact.run_id:
            continue
        registered = registry.register(run_id=artifact.run_id, name=config.model_name, nested=True)
        versions[artifact.label] = registered.version
        rows.append(StageRow("register", artifact.label, registered.register_run_id or artifact.run_id,
                             reused=registered.reused, parity=artifact.parity, version=registered.version))
    return versions


def _promote(scores: dict[str, float | None], versions: dict[str, str], config: PipelineConfig, *, random: bool,
             reason: str, rows: list[StageRow]) -> str | None:
    """Promote the best-scoring registered artifact to the alias; return its version (None: nothing ranked)."""
    ranked = sorted((score, label) for label, score in scores.items() if score is not None and label in versions)
    if not ranked:
        return None
    winner = ranked[0][1]
    promoted = registry.promote(version=versions[winner], name=config.model_name, alias=config.alias,
                                allow_random=random, reason=f"{reason}: fastest by {config.policy}", nested=True)
    rows.append(StageRow("promote", winner, promoted.run_id or "-", version=promoted.version, note=config.alias))
    return promoted.version
