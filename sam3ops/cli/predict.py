"""``sam3ops predict``, ``samples`` and ``prompts``: segment images with text prompts, and their inputs."""

from __future__ import annotations

from pathlib import Path

import click

from sam3ops.cli.options import TopK
from sam3ops.predict import config


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--weights", default=config.DEFAULT_WEIGHTS, show_default=True, help="Weights folder (download or init).")
@click.option("--prompt", "prompt_texts", multiple=True, metavar="TEXT", help="A text prompt (repeatable).")
@click.option("--prompt-set", "prompt_sets", multiple=True, metavar="NAME",
              help="A set from prompts/default_prompts.json (repeatable; `sam3ops prompts` lists them).")
@click.option("--output", default=config.DEFAULT_OUTPUT, show_default=True, help="Folder for the results.")
@click.option("--device", default=config.DEFAULT_DEVICE, show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--precision", default=config.DEFAULT_PRECISION, show_default=True, type=click.Choice(config.PRECISIONS))
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True,
              help="torch.compile the encoders (slow first call, faster after).")
@click.option("--score-threshold", default=config.DEFAULT_SCORE_THRESHOLD, show_default=True, type=float,
              help="Keep instances scoring above this (query score x presence score).")
@click.option("--mask-threshold", default=config.DEFAULT_MASK_THRESHOLD, show_default=True, type=float,
              help="Binarise masks above this.")
@click.option("--runtime", default=config.DEFAULT_RUNTIME, show_default=True, type=click.Choice(config.RUNTIMES),
              help="auto: from what WEIGHTS holds (a Meta sam3.pt runs on Meta's model); meta: Meta's own model "
                   "(needs Meta's package and a folder holding sam3.pt).")
@click.option("--top-k", default=config.OFF, show_default=True, type=TopK(),
              help="Keep the K best-scoring instances per prompt in each image, whatever their score "
                   "(--score-threshold is then not applied); off: the threshold.")
@click.option("--max-pixels", default=config.DEFAULT_MAX_PIXELS, show_default=True, type=int,
              help="Refuse images with more pixels (decompression-bomb guard).")
def predict(images, weights, prompt_texts, prompt_sets, output, device, precision, compile_model,
            score_threshold, mask_threshold, runtime, top_k, max_pixels) -> None:
    """Segment IMAGES (files, folders or globs) with text prompts; write masks, JSON, overlays, pages.

    Per image, under OUTPUT/<name>/: result.json (labels, scores, boxes, areas), masks.png (16-bit
    instance label map), masks_rle.json (COCO RLE), overlay.png and page.html (interactive, offline).
    A bad image is reported and skipped; the exit code is 0 only when every image succeeded.
    """
    from sam3ops.predict.stage import predict_stage

    result = predict_stage(
        images=list(images), weights=weights, prompt_texts=list(prompt_texts), prompt_sets=list(prompt_sets),
        output=output, device=device, precision=precision, compile_model=compile_model,
        score_threshold=score_threshold, mask_threshold=mask_threshold, top_k=top_k, max_pixels=max_pixels,
        runtime=runtime).raise_for_status()
    done = result.outputs
    random_note = " (RANDOM weights: the masks mean nothing)" if done.weights_random else ""
    click.echo(f"{done.images_ok} images, {done.instances} instances -> {output}{random_note} (run {result.run_id})")


@click.command()
@click.option("--output", default="samples", show_default=True, help="Folder for the photos.")
def samples(output: str) -> None:
    """Write real sample photos (scikit-image's astronaut, chelsea, coffee, rocket) as PNG files."""
    from sam3ops.predict.samples import write_samples

    for path in write_samples(Path(output)):
        click.echo(str(path))


@click.command("prompts")
@click.option("--file", "path", default=None, type=click.Path(path_type=Path),
              help="Prompt-set file  [default: prompts/default_prompts.json]")
def prompts(path: Path | None) -> None:
    """List the prompt sets and their prompts (validates the file)."""
    from sam3ops.inference.prompts import load_prompt_sets

    for name, texts in load_prompt_sets(path).items():
        click.echo(f"{name}: {', '.join(texts)}")


COMMANDS = (predict, samples, prompts)
