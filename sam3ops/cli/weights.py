"""``sam3ops download`` and ``sam3ops init``: the weights every later stage reads."""

from __future__ import annotations

from pathlib import Path

import click

from sam3ops.cli.options import DEFAULT_REPO, INCLUDES, PRESETS
from sam3ops.predict.config import DEFAULT_WEIGHTS


@click.command()
@click.option("--repo-id", default=DEFAULT_REPO, show_default=True, help="Hub repo to download.")
@click.option("--revision", default="main", show_default=True, help="Branch, tag or commit sha.")
@click.option("--output", default=DEFAULT_WEIGHTS, show_default=True, type=click.Path(path_type=Path),
              help="Destination folder (laid out like the repo, plus manifest.json).")
@click.option("--include", default=INCLUDES[0], show_default=True, type=click.Choice(INCLUDES),
              help="transformers: config, processor, tokenizer, safetensors; pt: adds sam3.pt; all: every file.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Hugging Face token. Prefer HF_TOKEN or `hf auth login`: an option is visible to other users "
                   "of this machine. Never logged.")
def download(repo_id: str, revision: str, output: Path, include: str, token: str | None) -> None:
    """Download SAM3 weights from the Hugging Face hub into OUTPUT, verified and tracked.

    The revision is pinned to its commit sha; every file is checked against the hub's sha256;
    files already intact are kept and partial ones resume. Set HF_HUB_DISABLE_PROGRESS_BARS=1
    to turn the progress bars off.
    """
    from sam3ops.tracking import redact
    from sam3ops.weights.stage import download_stage

    redact.register(token)
    result = download_stage(repo_id=repo_id, revision=revision, output=str(output), include=include, token=token)
    done = result.outputs
    click.echo(f"{repo_id}@{done.manifest.commit[:12]} -> {output}: {len(done.fetched)} of "
               f"{len(done.manifest.files)} files fetched, {done.bytes_downloaded / 1e6:.1f} MB in "
               f"{done.seconds:.1f} s (run {result.run_id})")


@click.command()
@click.option("--preset", type=click.Choice(PRESETS), default=PRESETS[0], show_default=True,
              help="tiny: a few MB at 224 px, for tests and the CPU demo; full: the real ~840 M-parameter SAM3.")
@click.option("--output", default="auto", show_default=True,
              help="Destination folder; auto means weights/sam3-<preset>.")
@click.option("--seed", default=0, show_default=True, type=int, help="The same seed gives the same weights.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it holds something else.")
def init(preset: str, output: str, seed: int, force: bool) -> None:
    """Write an architecture-true SAM3 checkpoint with RANDOM weights.

    Same layout as `download` (config, safetensors, processor, tokenizer, manifest.json), marked
    random in the manifest and the run, so every later stage can run before access to the real
    weights is granted. Its masks mean nothing.
    """
    from sam3ops.weights.stage import init_stage

    result = init_stage(preset=preset, output=output, seed=seed, force=force)
    done = result.outputs
    verb = "already holds" if result.reused else "now holds"
    click.echo(f"{done.output} {verb} the {preset} preset with RANDOM weights (seed {seed}, commit "
               f"{done.manifest.commit[:12]}) (run {result.run_id})")


COMMANDS = (download, init)
