"""The main job: weights -> predict, one parent MLflow run with a child run per stage.

Later stages (convert, benchmark, register, promote) join this chain as they are built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sam3ops import stages, tracking
from sam3ops.manifest import MANIFEST_NAME, Manifest

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """What the main job did."""

    run_id: str
    weights: Path
    weights_random: bool
    images_ok: int
    instances: int
    predictions: Path


def resolve_weights(weights: str, preset: str, seed: int, *, nested: bool) -> tuple[Path, bool]:
    """Real weights when ``weights`` holds a verified download; otherwise the random ``preset``.

    Returns the folder and whether its weights are random.
    """
    folder = Path(weights)
    if (folder / MANIFEST_NAME).is_file():
        manifest = Manifest.read(folder)
        if not manifest.problems(folder):
            log.info("using %s (%s@%s)", folder, manifest.repo_id, manifest.commit[:12])
            return folder, manifest.random
        log.warning("%s does not match its manifest; falling back to the %s preset", folder, preset)
    log.info("no verified weights in %s: using the %s preset (RANDOM weights)", folder, preset)
    result, _ = stages.init_stage(preset=preset, seed=seed, nested=nested)
    return result.output, True


def run_pipeline(*, weights: str = "weights/sam3", preset: str = "tiny", seed: int = 0, images: list[str] = (),
                 prompt_sets: list[str] = ("single_objects",), output: str = "predictions",
                 device: str = "cpu") -> PipelineResult:
    """Run the chain in one parent run (``sam3-pipeline``, or the run ``mlflow run`` created).

    Args:
        weights: a weights folder; when it holds no verified download, ``preset`` is initialised.
        images: inputs for predict; none means the bundled sample photos (written to ``samples/``).
    """
    from sam3ops.samples import write_samples

    params = {"weights": weights, "preset": preset, "seed": seed, "images": " ".join(images),
              "prompt_sets": ",".join(prompt_sets), "output": output, "device": device}
    with tracking.stage_run("pipeline", params=params) as run:
        import mlflow

        folder, random = resolve_weights(weights, preset, seed, nested=True)
        inputs = list(images) or [str(p) for p in write_samples(Path("samples"))]
        summary, _, _ = stages.predict_stage(images=inputs, weights=str(folder), prompt_sets=list(prompt_sets),
                                             output=output, device=device, nested=True)
        mlflow.set_tags({"weights_random": str(random).lower(), "weights_dir": str(folder)})
        mlflow.log_metrics({"images_ok": len(summary.succeeded),
                            "instances_total": sum(summary.instances_per_prompt().values())})
    return PipelineResult(run.info.run_id, folder, random, len(summary.succeeded),
                          sum(summary.instances_per_prompt().values()), Path(output))
