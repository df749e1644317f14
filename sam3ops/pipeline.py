"""The main job: weights -> predict -> convert -> benchmark -> register -> promote, in one parent run.

Each stage is a child run of the pipeline's run. A stage whose inputs and parameters match an
earlier FINISHED run (same key: its parameters plus the content of the folders it reads, and its
output still intact) is reused, not recomputed; the summary says which. Then every artifact that
passed parity (and the fp32 source) is registered, and the fastest by the chosen policy is promoted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sam3ops import tracking
from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest, is_intact
from sam3ops.convert.stage import convert_stage
from sam3ops.errors import UsageError
from sam3ops.predict.stage import predict_stage
from sam3ops.tracking.reuse import find_reusable, folder_digest, mark, stage_key
from sam3ops.weights.stage import init_stage

log = logging.getLogger(__name__)

PIPELINE_FORMATS = ("fp16", "bf16", "onnx", "tensorrt")


@dataclass
class StageRow:
    """One line of the summary: a stage, what it made, and whether it was reused."""

    stage: str
    artifact: str
    run_id: str
    reused: bool = False
    parity: str = ""
    ms_per_image: float | None = None
    throughput_img_s: float | None = None
    version: str = ""
    note: str = ""


@dataclass
class PipelineResult:
    """What the main job did."""

    run_id: str
    weights: Path
    weights_random: bool
    images_ok: int
    instances: int
    predictions: Path
    rows: list[StageRow] = field(default_factory=list)
    production: str | None = None  # the version the alias now points at

    def table(self) -> str:
        """The summary as aligned text."""
        head = ("stage", "artifact", "run", "reused", "parity", "ms/image", "images/s", "version")
        lines = [head] + [(r.stage, r.artifact, r.run_id[:12], "yes" if r.reused else "", r.parity,
                           "" if r.ms_per_image is None else f"{r.ms_per_image:.1f}",
                           "" if r.throughput_img_s is None else f"{r.throughput_img_s:.1f}",
                           r.version + (f" ({r.note})" if r.note else "")) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def parse_policy(policy: str) -> tuple[str, int | None]:
    """``latency@N`` (ms per image at batch N) or ``throughput`` (best images/s over the batch sizes)."""
    if policy == "throughput":
        return "throughput", None
    kind, _, batch = policy.partition("@")
    if kind == "latency" and batch.isdigit() and int(batch) > 0:
        return "latency", int(batch)
    raise UsageError(f"unknown promotion policy {policy!r}", hint="use latency@N (e.g. latency@1) or throughput")


def parse_formats(text: str, *, gpu: bool) -> list[str]:
    """``fp16,onnx`` -> the formats to convert to; ``auto`` = fp16 and onnx, plus tensorrt on a GPU with TensorRT."""
    if text == "auto":
        formats = ["fp16", "onnx"]
        if gpu and _tensorrt_available():
            formats.append("tensorrt")
        return formats
    formats = [f.strip() for f in text.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in PIPELINE_FORMATS:
            raise UsageError(f"unknown format {fmt!r}", hint=f"choose from: {', '.join(PIPELINE_FORMATS)} (or auto)")
    return list(dict.fromkeys(formats))


def _tensorrt_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def resolve_weights(weights: str, preset: str, seed: int, *, nested: bool) -> tuple[Path, bool, str | None, bool]:
    """Real weights when ``weights`` holds a verified download; otherwise the random ``preset``.

    Returns the folder, whether its weights are random, the run that wrote them (if known) and
    whether that run was reused.
    """
    import mlflow

    folder = Path(weights)
    if (folder / MANIFEST_NAME).is_file():
        manifest = Manifest.read(folder)
        if is_intact(folder):
            log.info("using %s (%s@%s)", folder, manifest.repo_id, manifest.commit[:12])
            found = mlflow.MlflowClient().search_runs(
                [e.experiment_id for e in mlflow.MlflowClient().search_experiments()],
                f"tags.weights_commit = '{manifest.commit}' and attributes.status = 'FINISHED' "
                "and tags.`sam3ops.stage` = 'download'", order_by=["attributes.start_time DESC"], max_results=1)
            return folder, manifest.random, found[0].info.run_id if found else None, bool(found)
        log.warning("%s does not match its manifest; falling back to the %s preset", folder, preset)
    log.info("no verified weights in %s: using the %s preset (RANDOM weights)", folder, preset)
    output = Path(f"weights/sam3-{preset}")
    key = stage_key("init", preset=preset, seed=seed, output=str(output.resolve()))
    if (previous := find_reusable(key)) and is_intact(output):
        return output, True, previous.info.run_id, True
    result, run_id = init_stage(preset=preset, seed=seed, nested=nested)
    mark(run_id, key)
    return result.output, True, run_id, False


def _files_digest(paths: list[str]) -> str:
    from sam3ops.checkpoint.manifest import file_hashes
    from sam3ops.inference import collect_images

    return hashlib.sha256(json.dumps([(str(p), file_hashes(p)[0]) for p in collect_images(paths)]).encode()).hexdigest()


def _predict(folder: Path, inputs: list[str], prompt_sets, output: str, device: str, rows: list[StageRow]) -> dict:
    """Predict on ``inputs`` (or reuse an identical earlier prediction); return images_ok, instances_total."""
    import mlflow

    key = stage_key("predict", weights=folder_digest(folder), images=_files_digest(inputs),
                    prompt_sets=list(prompt_sets), output=str(Path(output).resolve()), device=device)
    previous = find_reusable(key)
    if previous and Path(output).is_dir():
        metrics = previous.data.metrics
        rows.append(StageRow("predict", "fp32", previous.info.run_id, reused=True))
        return {"images_ok": metrics.get("images_ok", 0), "instances_total": metrics.get("instances_total", 0)}
    summary, run_id, _ = predict_stage(images=inputs, weights=str(folder), prompt_sets=list(prompt_sets),
                                              output=output, device=device, nested=True)
    instances = sum(summary.instances_per_prompt().values())
    mlflow.MlflowClient().log_metric(run_id, "instances_total", instances)
    mark(run_id, key)
    rows.append(StageRow("predict", "fp32", run_id, note=f"{len(summary.succeeded)} images"))
    return {"images_ok": len(summary.succeeded), "instances_total": instances}


@dataclass
class _Artifact:
    """A weights folder the pipeline benchmarks and may register."""

    label: str  # fp32, fp16, onnx, ...
    folder: Path
    run_id: str | None  # the run that made it (registered from)
    parity: str  # pass | fail | reference
    row: StageRow


def _convert(source: Path, fmt: str, *, device: str, rows: list[StageRow]) -> _Artifact:
    """Convert (or reuse an identical earlier conversion) in a child run."""
    import mlflow

    from sam3ops.errors import ParityError

    output = source.parent / f"{source.name}-{fmt}"
    key = stage_key("convert", format=fmt, source=folder_digest(source), device=device, output=str(output.resolve()))
    previous = find_reusable(key)
    if previous and is_intact(output):
        row = StageRow("convert", fmt, previous.info.run_id, reused=True, parity=previous.data.tags.get("parity", ""))
    else:
        try:
            report, run_id = convert_stage(input_dir=str(source), format=fmt, output=str(output),
                                                  overwrite=True, device=device, nested=True)
            mark(run_id, key)
            row = StageRow("convert", fmt, run_id, parity="pass" if report.passed else "fail")
        except ParityError as exc:
            run_id = mlflow.last_active_run().info.run_id
            row = StageRow("convert", fmt, run_id, parity="fail", note=exc.message[:60])
    rows.append(row)
    return _Artifact(fmt, output, row.run_id, row.parity, row)


def _benchmark(artifact: _Artifact, source: Path, *, batch: str, device: str, iterations: int,
               rows: list[StageRow]) -> dict[int, dict]:
    """Benchmark one artifact (or reuse an identical earlier benchmark); return metrics per batch size."""
    import mlflow

    from sam3ops.bench.stage import bench_stage

    precision = artifact.label if artifact.label in ("fp16", "bf16") else "fp32"
    key = stage_key("benchmark", weights=folder_digest(artifact.folder), batch=batch, device=device,
                    iterations=iterations, precision=precision)
    client = mlflow.MlflowClient()
    previous = find_reusable(key)
    if previous:
        run_id, reused = previous.info.run_id, True
    else:
        reference = None if artifact.label == "fp32" else str(source)  # accuracy always against the fp32 source
        _, run_id = bench_stage(weights=str(artifact.folder), precision=precision, batch=batch, image_size=1008, prompts_per_image=4, warmup=1,
                                iterations=iterations, device=device, reference=reference, nested=True,
                                source_run_id=artifact.run_id)
        mark(run_id, key)
        reused = False
    per_batch: dict[int, dict] = {}
    for name in ("ms_per_image", "throughput_img_s"):
        for point in client.get_metric_history(run_id, name):
            per_batch.setdefault(point.step, {})[name] = point.value
    rows.append(StageRow("benchmark", artifact.label, run_id, reused=reused, parity=artifact.parity))
    return per_batch


def _score(per_batch: dict[int, dict], policy: tuple[str, int | None]) -> tuple[float | None, float | None, float | None]:
    """(ranking score: lower is better, ms per image, images/s) of a benchmark under ``policy``."""
    kind, batch = policy
    if kind == "latency":
        at = per_batch.get(batch, {})
        ms = at.get("ms_per_image")
        return ms, ms, at.get("throughput_img_s")
    best = max((v.get("throughput_img_s") or 0.0, b) for b, v in per_batch.items()) if per_batch else (0.0, None)
    at = per_batch.get(best[1], {})
    return (-best[0] if best[0] else None), at.get("ms_per_image"), at.get("throughput_img_s")


def run_pipeline(*, weights: str = "weights/sam3", preset: str = "tiny", seed: int = 0, images: list[str] = (),
                 prompt_sets: list[str] = ("single_objects",), output: str = "predictions", device: str = "cpu",
                 formats: str = "auto", batch: str = "1,4", iterations: int = 5, policy: str = "latency@1",
                 model_name: str = "sam3", alias: str = "production") -> PipelineResult:
    """Run the whole chain in one parent run (``sam3-pipeline``, or the run ``mlflow run`` created).

    Args:
        weights: a weights folder; when it holds no verified download, ``preset`` is initialised.
        images: inputs for predict; none means the bundled sample photos (written to ``samples/``).
        formats: conversions to make (``auto``: fp16 and onnx, plus tensorrt on a GPU with TensorRT).
        batch, iterations: the benchmark of every artifact.
        policy: how the production version is chosen: ``latency@N`` or ``throughput``.
        model_name, alias: where versions are registered and which alias the winner gets.
    """
    from sam3ops.bench.config import parse_batches
    from sam3ops.inference.segmenter import resolve_device
    from sam3ops.predict.samples import write_samples
    from sam3ops import registry

    params = {"weights": weights, "preset": preset, "seed": seed, "images": " ".join(images),
              "prompt_sets": ",".join(prompt_sets), "output": output, "device": device, "formats": formats,
              "batch": batch, "iterations": iterations, "policy": policy, "model_name": model_name, "alias": alias}
    with tracking.stage_run("pipeline", params=params) as run:
        import mlflow

        ranking = parse_policy(policy)
        batches = parse_batches(batch)
        if ranking[1] is not None and ranking[1] not in batches:
            raise UsageError(f"policy {policy} ranks at batch {ranking[1]}, which the benchmark does not run",
                             hint=f"add {ranking[1]} to --batch or use latency@{batches[0]}")
        chosen = parse_formats(formats, gpu=resolve_device(device).type == "cuda")
        rows: list[StageRow] = []
        folder, random, weights_run, reused = resolve_weights(weights, preset, seed, nested=True)
        rows.append(StageRow("weights", "fp32", weights_run or "-", reused=reused, parity="reference"))

        inputs = list(images) or [str(p) for p in write_samples(Path("samples"))]
        predicted = _predict(folder, inputs, prompt_sets, output, device, rows)

        artifacts = [_Artifact("fp32", folder, weights_run, "reference", rows[0])]
        artifacts += [_convert(folder, fmt, device=device, rows=rows) for fmt in chosen]
        scores = {}
        for artifact in [a for a in artifacts if a.parity in ("pass", "reference")]:
            per_batch = _benchmark(artifact, folder, batch=batch, device=device, iterations=iterations, rows=rows)
            scores[artifact.label] = _score(per_batch, ranking)
            rows[-1].ms_per_image, rows[-1].throughput_img_s = scores[artifact.label][1:]

        versions = {}
        for artifact in artifacts:
            if artifact.parity not in ("pass", "reference") or not artifact.run_id:
                continue
            registered = registry.register(run_id=artifact.run_id, name=model_name, nested=True)
            versions[artifact.label] = registered.version
            rows.append(StageRow("register", artifact.label, registered.register_run_id or artifact.run_id,
                                 reused=registered.reused, parity=artifact.parity, version=registered.version))
        ranked = sorted((s[0], label) for label, s in scores.items() if s[0] is not None and label in versions)
        production = None
        if ranked:
            winner = ranked[0][1]
            promoted = registry.promote(version=versions[winner], name=model_name, alias=alias, allow_random=random,
                                        reason=f"pipeline {run.info.run_id}: fastest by {policy}", nested=True)
            production = promoted.version
            rows.append(StageRow("promote", winner, promoted.run_id or "-", version=production, note=alias))
        mlflow.set_tags({"weights_random": str(random).lower(), "weights_dir": str(folder),
                         **({"production_version": production} if production else {})})
        mlflow.log_metrics({"images_ok": predicted["images_ok"], "instances_total": predicted["instances_total"],
                            "stages_reused": sum(r.reused for r in rows)})
        result = PipelineResult(run.info.run_id, folder, random, int(predicted["images_ok"]),
                                int(predicted["instances_total"]), Path(output), rows, production)
        mlflow.log_text(result.table() + "\n", "summary.txt")
    return result
