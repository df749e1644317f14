"""The tags of a registered version: what it is, where it came from, and how fast it ran.

``format precision parity weights_random weights_commit layout`` and the source run (+ ``trt_version
gpu_name compute_capability`` for engines; ``torch_version aoti_device`` and ``gpu_name
compute_capability`` or ``cpu_isa`` for AOTInductor packages), and ``bench.*`` from the newest
benchmark of the artifact.
``layout`` is ``meta`` for Meta's ``sam3.pt`` (it runs on Meta's own model), else ``transformers``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sam3ops import tracking
from sam3ops.bench import metrics
from sam3ops.checkpoint.kinds import aoti_sidecar, engine_sidecar, layout_of
from sam3ops.registry.client import ENGINE_FORMATS, now, quote, who
from sam3ops.tracking.store import experiment_name

BENCHMARK_EXPERIMENT = experiment_name("benchmark")


def version_tags(run, stage: str, weights: Path) -> dict[str, str]:
    """The tags a version of ``run``'s weights folder gets.

    Args:
        run: the source run (a convert run, or the download/init run of the source checkpoint).
        stage: that run's stage tag.
        weights: the run's weights folder, with its manifest.

    Returns:
        tag -> value: the run's own tags where it has them, else what the manifest (or, for an
        engine, its sidecar) says.
    """
    from sam3ops.checkpoint.manifest import Manifest

    tags, run_id = run.data.tags, run.info.run_id
    manifest = Manifest.read(weights)
    is_convert = stage == "convert"
    out = {
        "format": tags.get("format", "fp32") if is_convert else "fp32",
        "precision": tags.get("precision", "fp32") if is_convert else "fp32",
        "parity": tags.get("parity", "") if is_convert else "reference",
        "weights_random": tags.get("weights_random", str(manifest.random).lower()),
        "weights_commit": tags.get("weights_commit", manifest.commit),
        "layout": layout_of(weights),
        "source_run_id": run_id,
        "source_stage": stage,
        "files": str(len(manifest.files)),
        "size_bytes": str(sum(entry.size for entry in manifest.files)),
        "registered_by": who(),
        "registered_at": now(),
    }
    if manifest.preset:
        out["preset"] = manifest.preset
    if out["format"] in ENGINE_FORMATS:
        sidecar = engine_sidecar(weights)
        for key, sidecar_key in (("trt_version", "tensorrt_version"), ("gpu_name", "gpu_name"),
                                 ("compute_capability", "compute_capability")):
            out[key] = tags.get(key) or str(sidecar.get(sidecar_key, "unknown"))
    if out["format"] == "aoti":
        out.update(_aoti_tags(tags, aoti_sidecar(weights)))
    return out


def _aoti_tags(tags: dict[str, str], sidecar: dict) -> dict[str, str]:
    """What AOTInductor packages are tied to: the run's tags, else their ``aoti.json``."""
    pairs = (("torch_version", "torch_version"), ("aoti_device", "device"), ("gpu_name", "gpu_name"),
             ("compute_capability", "compute_capability"), ("cpu_isa", "cpu_isa"))
    return {key: str(tags.get(key) or sidecar[side]) for key, side in pairs if tags.get(key) or sidecar.get(side)}


def benchmark_tags(mlflow_client, run) -> dict[str, str]:
    """``bench.<metric>`` of the newest finished benchmark run of this artifact; empty if none.

    A loose match, in ``sam3-benchmark`` and in the source run's own experiment (the pipeline's
    benchmarks are children there): tag ``source_run_id`` is the run, or param ``weights`` names
    the run or the folder it wrote. Metrics are logged with step = batch: the values are the
    largest batch's (``bench.batch``).
    """
    for candidate in _benchmark_runs(mlflow_client, run):
        if candidate.info.status != "FINISHED":
            continue
        holders = [candidate]
        if not any(k in metrics.HEADLINE for k in candidate.data.metrics):  # a parent: its children hold them
            holders = mlflow_client.search_runs([candidate.info.experiment_id],
                                                f"tags.mlflow.parentRunId = '{candidate.info.run_id}'")
        values = {k: v for holder in holders for k, v in holder.data.metrics.items() if k in metrics.HEADLINE}
        if values:
            tags = {"bench_run_id": candidate.info.run_id,
                    **{f"bench.{k}": f"{v:.6g}" for k, v in sorted(values.items())}}
            # The numbers are optional decoration of a version: a failed lookup leaves them out.
            with contextlib.suppress(Exception):
                steps = [point.step for holder in holders
                         for point in mlflow_client.get_metric_history(holder.info.run_id, "ms_per_image")]
                if steps:
                    tags["bench.batch"] = str(max(steps))
            return tags
    return {}


def _benchmark_runs(mlflow_client, run) -> list:
    """The benchmark runs that name ``run`` or the folder it wrote, newest first."""
    run_id = run.info.run_id
    experiments = {run.info.experiment_id}
    if benchmark := mlflow_client.get_experiment_by_name(BENCHMARK_EXPERIMENT):
        experiments.add(benchmark.experiment_id)
    filters = [f"tags.source_run_id = '{run_id}'", f"params.weights LIKE '%{run_id}%'"]
    if output := run.data.params.get("output") or run.data.tags.get("weights_dir"):
        filters += [f"params.weights = '{quote(output)}'", f"params.weights = '{quote(str(Path(output).resolve()))}'"]
    found = {}
    for query in filters:
        # Optional decoration again: a filter the store cannot take (odd characters in a path) is skipped.
        with contextlib.suppress(Exception):
            for candidate in mlflow_client.search_runs(sorted(experiments), query,
                                                       order_by=["attributes.start_time DESC"], max_results=20):
                if candidate.data.tags.get(tracking.STAGE_TAG) == "benchmark":
                    found[candidate.info.run_id] = candidate
    return sorted(found.values(), key=lambda r: r.info.start_time or 0, reverse=True)
