"""``sam3ops pipeline``: the main job, every stage in one parent run."""

from __future__ import annotations

import click

from sam3ops.cli.options import PRESETS, TopK, defaults_of
from sam3ops.pipeline.config import PipelineConfig

DEFAULTS = defaults_of(PipelineConfig)


@click.command()
@click.option("--weights", default=DEFAULTS["weights"], show_default=True,
              help="Real weights to use when this folder holds a verified download.")
@click.option("--preset", type=click.Choice(PRESETS), default=DEFAULTS["preset"], show_default=True,
              help="Random-weights preset to use otherwise.")
@click.option("--seed", default=DEFAULTS["seed"], show_default=True, type=int)
@click.option("--image", "images", multiple=True, help="Input for predict (repeatable)  [default: sample photos]")
@click.option("--prompt-set", "prompt_sets", multiple=True, default=DEFAULTS["prompt_sets"], show_default=True)
@click.option("--output", default=DEFAULTS["output"], show_default=True)
@click.option("--device", default=DEFAULTS["device"], show_default=True)
@click.option("--top-k", default=DEFAULTS["top_k"], show_default=True, type=TopK("auto"),
              help="Predict keeps the K best instances per prompt whatever their score; auto: 3 on random "
                   "weights (their scores pass no threshold), the score threshold on real ones; off: the threshold.")
@click.option("--formats", default=DEFAULTS["formats"], show_default=True,
              help="Conversions: auto (fp16,onnx; + tensorrt on a GPU with TensorRT) or a list like fp16,bf16,onnx.")
@click.option("--batch", default=DEFAULTS["batch"], show_default=True,
              help="Batch sizes every artifact is benchmarked at.")
@click.option("--iterations", default=DEFAULTS["iterations"], show_default=True, type=int,
              help="Measured calls per batch size.")
@click.option("--policy", default=DEFAULTS["policy"], show_default=True,
              help="Which version is promoted: latency@N (ms per image at batch N) or throughput.")
@click.option("--model-name", default=DEFAULTS["model_name"], show_default=True,
              help="Registered model for the versions.")
@click.option("--alias", default=DEFAULTS["alias"], show_default=True, help="Alias the fastest version gets.")
def pipeline(**options) -> None:
    """The main job: weights -> predict -> convert -> benchmark -> register -> promote.

    One parent run with a child run per stage; a stage whose inputs and parameters match an earlier
    finished run is reused. Random weights (no download) are promoted too, tagged weights_random=true.
    """
    from sam3ops.pipeline.run import run_pipeline
    from sam3ops.pipeline.summary import benchmarks_link
    from sam3ops.tracking.ui import experiment_of_run, ui_base, with_command

    # The options are PipelineConfig's fields by name: the pipeline validates them inside its run.
    result = run_pipeline(**options)
    done = result.outputs
    # The benchmark runs of the parent's experiment (sam3-pipeline, or where `mlflow run` put it).
    experiment_id = experiment_of_run(result.run_id)
    ui = with_command(benchmarks_link(experiment_id) if experiment_id else ui_base())
    alias, model = options["alias"], options["model_name"]
    production = f"models:/{model}@{alias} -> version {done.production}" if done.production else "none"
    click.echo(done.table())
    click.echo(f"\nweights     {done.weights} ({'RANDOM' if done.weights_random else 'real'})\n"
               f"predict     {done.images_ok} images, {done.instances} instances -> {done.predictions}\n"
               f"{alias:<11} {production}\nrun         {result.run_id}\nui          {ui}")


COMMANDS = (pipeline,)
