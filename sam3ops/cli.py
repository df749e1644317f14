"""The ``sam3ops`` command line: a thin click layer over the library.

Each command parses its options, opens the stage's MLflow run, calls one library function and
prints the result. Errors are caught once in :func:`main`: a user error prints one line on stderr
with a hint and exits non-zero; the full traceback only with ``SAM3OPS_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import click

import sam3ops
from sam3ops import redact
from sam3ops.errors import Sam3opsError

DEBUG_ENV = "SAM3OPS_DEBUG"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _setup_logging() -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(redact.RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("sam3ops").setLevel(logging.INFO)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(sam3ops.__version__, prog_name="sam3ops")
def cli() -> None:
    """sam3ops: take SAM3 from a hub checkpoint to a production backend, tracked in MLflow.

    Runs go to MLFLOW_TRACKING_URI, or to the embedded store mlflow.db at the workspace root
    (open it with `mlflow ui --backend-store-uri sqlite:///mlflow.db`).
    """


@cli.command()
@click.option("--repo-id", default="facebook/sam3", show_default=True, help="Hub repo to download.")
@click.option("--revision", default="main", show_default=True, help="Branch, tag or commit sha.")
@click.option("--output", default="weights/sam3", show_default=True, type=click.Path(path_type=Path),
              help="Destination folder (laid out like the repo, plus manifest.json).")
@click.option("--include", default="transformers", show_default=True,
              type=click.Choice(["transformers", "pt", "all"]),
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
    from sam3ops import hub, tracking

    redact.register(token)
    params = {"repo_id": repo_id, "revision": revision, "output": output, "include": include}
    with tracking.stage_run("download", params=params, tags={"weights_random": "false"}) as run:
        import mlflow

        result = hub.download(repo_id=repo_id, revision=revision, output=output, include=include, token=token)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "repo_id": repo_id})
        mlflow.log_metrics({
            "bytes_downloaded": result.bytes_downloaded,
            "seconds": result.seconds,
            "mb_per_s": result.mb_per_s,
            "files_fetched": len(result.fetched),
            "files_total": len(result.manifest.files),
        })
        mlflow.log_artifact(str(output / "manifest.json"))
    click.echo(
        f"{repo_id}@{result.manifest.commit[:12]} -> {output}: {len(result.fetched)} of "
        f"{len(result.manifest.files)} files fetched, {result.bytes_downloaded / 1e6:.1f} MB in "
        f"{result.seconds:.1f} s (run {run.info.run_id})"
    )


@cli.command()
@click.option("--preset", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
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
    from sam3ops import presets, tracking

    params = {"preset": preset, "output": output, "seed": seed}
    folder = Path(f"weights/sam3-{preset}" if output == "auto" else output)
    with tracking.stage_run("init", params=params, tags={"weights_random": "true", "preset": preset}) as run:
        import mlflow

        result = presets.init_weights(preset=preset, output=folder, seed=seed, force=force)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "reused": str(result.reused).lower()})
        if not result.reused:
            mlflow.log_metrics({"parameters": result.parameters, "seconds": result.seconds})
        mlflow.log_metric("bytes_written", sum(f.size for f in result.manifest.files))
        mlflow.log_artifact(str(folder / "manifest.json"))
    verb = "already holds" if result.reused else "now holds"
    click.echo(
        f"{folder} {verb} the {preset} preset with RANDOM weights (seed {seed}, commit "
        f"{result.manifest.commit[:12]}) (run {run.info.run_id})"
    )


@cli.command("prompts")
@click.option("--file", "path", default=None, type=click.Path(path_type=Path),
              help="Prompt-set file  [default: prompts/default_prompts.json]")
def prompts_cmd(path: Path | None) -> None:
    """List the prompt sets and their prompts (validates the file)."""
    from sam3ops.prompts import load_prompt_sets

    for name, prompts in load_prompt_sets(path).items():
        click.echo(f"{name}: {', '.join(prompts)}")


def _raise_on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    # Turn SIGTERM into an exception so the run helper ends the run instead of leaving it RUNNING.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    _setup_logging()
    redact.register_environment()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        cli.main(args=argv, prog_name="sam3ops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sam3ops: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("sam3ops: interrupted", err=True)
        sys.exit(130)
    except Sam3opsError as exc:
        _print_error(exc, exc.one_line())
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything else is our bug or the environment's: still one line
        _print_error(exc, f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        sys.exit(1)


def _print_error(exc: BaseException, line: str) -> None:
    if os.environ.get(DEBUG_ENV):
        click.echo(redact.redact("".join(traceback.format_exception(exc))), err=True)
    click.echo(f"sam3ops: error: {redact.redact(' '.join(line.split()))}", err=True)
