"""The benchmark in MLflow: resolve the weights, run the core, log what it measured.

One run per benchmark in experiment ``sam3-benchmark``. With one configuration (runtime and
precision) its metrics go on that run; with several, each configuration gets a child run (same
param and metric names as a single run, so every run lines up in the compare view) and the parent
holds the table and charts. Per-batch metrics are logged with ``step`` = batch size, so the UI
charts them against batch. Results measured elsewhere (JSON from a bare GPU host) are logged the
same way by :func:`log_results`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from sam3ops import tracking
from sam3ops.bench.config import BenchConfig
from sam3ops.bench.results import BenchResults, ConfigResult
from sam3ops.errors import WeightsError

log = logging.getLogger(__name__)

RESULTS_JSON = "benchmark.json"
TABLE_FILE = "benchmark_table.json"
CHARTS_FILE = "benchmark_charts.html"


def resolve_weights(weights: str) -> Path:
    """A local folder for ``weights``: a folder, ``runs:/RUN/PATH`` or ``models:/NAME@ALIAS`` (downloaded).

    Raises:
        WeightsError: nothing usable there (the hint says to run download or init).
    """
    if not weights.startswith(("runs:/", "models:/", "mlflow-artifacts:")):
        return Path(weights)
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=_logged_model_uri(weights)))
    except Exception as exc:
        raise WeightsError(f"cannot fetch weights from {weights}: {' '.join(str(exc).split())[:300]}",
                           hint="check the run id or model alias (`mlflow ui`), or pass a local folder") from None
    # A run's folder or a registered model: the weights are the folder that holds config.json.
    found = [p.parent for p in sorted(local.rglob("config.json")) if (p.parent / "processor_config.json").is_file()]
    if not found:
        raise WeightsError(f"{weights} holds no SAM3 weights folder (no config.json with processor_config.json)")
    return found[0]


def _logged_model_uri(weights: str) -> str:
    """``runs:/RUN/weights`` of a run that logged its files as a model (tag ``model_id``): that model."""
    if weights.startswith("runs:/") and weights.rstrip("/").endswith("/weights"):
        import mlflow

        run_id = weights.removeprefix("runs:/").split("/")[0]
        if model_id := mlflow.MlflowClient().get_run(run_id).data.tags.get("model_id"):
            return f"models:/{model_id}"
    return weights


def run_params(config: dict) -> dict:
    """The params of a benchmark run (the names of :mod:`sam3ops.bench.metrics`), from a config's JSON."""
    join = lambda value: ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value  # noqa: E731
    return {"weights": config["weights"], "runtime": config["runtime"], "precision": join(config["precisions"]),
            "batch": join(config["batches"]), "image_size": config["image_size"],
            "prompts_per_image": config["prompts_per_image"], "warmup": config["warmup"],
            "iterations": config["iterations"], "min_duration": config["min_duration_s"],
            "device": config["device"], "system_metrics": str(bool(config.get("system_metrics"))).lower(),
            "torch_options": ",".join(f"{k}={join(v)}" for k, v in sorted((config.get("options") or {}).items()))
            or "none"}


def requested_params(weights: str, options: dict[str, Any]) -> dict[str, Any]:
    """The params a benchmark run logs before its options are validated: as given, defaults filled in.

    ``options`` are :class:`BenchConfig` fields. Runtime and precision are left out: they are logged
    once resolved (``auto`` -> torch, onnx, tensorrt), and the tags of the same names always hold
    the resolved values (`mlflow run` logs them as given).
    """
    given = {f.name: f.default for f in fields(BenchConfig) if f.default is not MISSING}
    given.update(options, weights=weights)
    params = {key: value for key, value in run_params(given).items() if key not in ("runtime", "precision")}
    return {**params, "photos": given["photos"]}


def _identity(results: BenchResults) -> dict[str, str]:
    env, weights = results.environment, results.weights
    return {"gpu_name": env.get("gpu_name", "cpu"), "weights_commit": str(weights.get("commit")),
            "weights_random": str(bool(weights.get("random"))).lower(),
            "weights_preset": str(weights.get("preset")),
            **{key: str(env[key]) for key in ("driver_version", "cuda_version", "torch_version", "tensorrt_version",
                                              "onnxruntime_version", "compute_capability") if key in env}}


def _log_config(config: ConfigResult, results: BenchResults, model_id: str | None = None) -> None:
    """A configuration's params and metrics on the active run (per-batch metrics at step = batch),
    linked to the logged model of the weights (``model_id``) and to the photos measured on."""
    import mlflow

    client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
    identity = _identity(results)
    # `mlflow run` may have logged precision=fp32,bf16 etc. for the parent: never re-log a key.
    tracking.log_new_params({"runtime": config.runtime, "precision": config.precision, **identity})
    mlflow.set_tags({"runtime": config.runtime, "precision": config.precision,
                     "weights_random": identity["weights_random"]})
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    dataset = _photo_set(results.config)
    link = {"model_id": model_id, "dataset_name": dataset and dataset.name,
            "dataset_digest": dataset and dataset.digest}
    # One millisecond apart in batch order: the largest batch is the latest value, for the logged
    # model as for the run (search_logged_models ranks by a model's latest value of a metric).
    metrics = [Metric(key, value, now + i, batch.batch, **link)
               for i, batch in enumerate(config.batches) for key, value in batch.metrics().items()]
    metrics += [Metric(key, value, now, 0, **link) for key, value in config.summary_metrics().items()]
    for start in range(0, len(metrics), 900):  # the REST API takes at most 1000 per call
        client.log_batch(run_id, metrics=metrics[start:start + 900], synchronous=True)
    if any(b.status != "ok" for b in config.batches):
        mlflow.set_tag("failed_batches", ",".join(f"{b.batch}:{b.status}" for b in config.batches if b.status != "ok"))


def _photo_set(config: dict):
    """The photos the benchmark fed, at the size it fed them, as a dataset logged on the active run;
    None for results measured elsewhere on a photo folder this machine does not have."""
    from sam3ops.bench.workload import photo_pool
    from sam3ops.errors import Sam3opsError
    from sam3ops.predict.samples import BUNDLED
    from sam3ops.registry.logged import photo_dataset

    photos = config.get("photos")
    try:
        if photos:
            from sam3ops.inference.images import collect_images

            names = [path.name for path in collect_images([photos])]
        else:
            names = list(BUNDLED)
        pool = photo_pool(int(config["image_size"]), photos)
    except Sam3opsError as exc:
        log.warning("benchmark metrics not linked to their photos: %s", exc.message)
        return None
    return photo_dataset(list(zip(names, pool, strict=True)), name="benchmark-photos", source=photos)


def _model_id(results: BenchResults) -> str | None:
    """The logged model of the benchmarked files (found by their manifest), or None."""
    from sam3ops.registry.logged import model_id_of

    weights = results.weights.get("path") or results.config.get("weights")
    return model_id_of(str(weights)) if weights else None


def _log_summary(results: BenchResults) -> None:
    """The table, charts and raw JSON on the active run."""
    import mlflow
    import pandas as pd

    from sam3ops.bench import charts

    mlflow.log_table(pd.DataFrame(results.rows()), artifact_file=TABLE_FILE)
    mlflow.log_text(charts.results_page(results), CHARTS_FILE)
    mlflow.log_dict(results.to_json(), RESULTS_JSON)


def log_results(results: BenchResults) -> None:
    """Log ``results`` on the active run: metrics (children for several configurations), table, charts."""
    import mlflow

    identity = _identity(results)
    mlflow.set_tags(identity)
    tracking.log_new_params({k: identity[k] for k in ("gpu_name", "weights_commit", "weights_random")})
    if model_id := _model_id(results):
        mlflow.set_tag("model_id", model_id)
    if len(results.configs) == 1:
        mlflow.set_tag("mlflow.runName", results.configs[0].name)  # torch-bf16, onnx-fp32: readable in the UI
        _log_config(results.configs[0], results, model_id)
    else:
        params = run_params(results.config)
        tracking.log_new_params({key: params[key] for key in ("runtime", "precision")})
        mlflow.set_tags({"runtime": ",".join(dict.fromkeys(c.runtime for c in results.configs)),
                         "precision": ",".join(c.precision for c in results.configs)})
        for config in results.configs:
            params = {**run_params(results.config), "runtime": config.runtime, "precision": config.precision}
            # The parent's sampler covers the whole sweep: a second one per child would disturb it twice.
            with tracking.stage_run("benchmark", params=params, nested=True, run_name=config.name,
                                    log_system_metrics=False):
                _log_config(config, results, model_id)
    _log_summary(results)


