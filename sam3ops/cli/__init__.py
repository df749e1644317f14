"""The ``sam3ops`` command line: a thin click layer over the library.

One module per command group (:mod:`weights`, :mod:`predict`, :mod:`convert`, :mod:`bench`,
:mod:`registry`, :mod:`pipeline`); each command checks which options go together, calls one
library function and prints the result. At import time they read only torch-free modules (the
stages' config modules, the registry's package API), and the library itself when they run, so
``--help`` and argument errors never import torch. Errors are caught once, in :func:`main`: a user
error prints one line on stderr with a hint and exits non-zero; the full traceback only with
``SAM3OPS_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback

import click

import sam3ops
from sam3ops.cli import bench, convert, doctor, pipeline, predict, registry, weights
from sam3ops.errors import Sam3opsError
from sam3ops.tracking import redact

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


for _group in (weights, predict, convert, bench, registry, pipeline, doctor):
    for _command in _group.COMMANDS:
        cli.add_command(_command)


def raise_on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """SIGTERM handler: raise KeyboardInterrupt, so the run helper ends the run KILLED instead of
    leaving it RUNNING (a CI timeout, `kill`). :func:`main` installs it."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI with ``argv`` (default: the process arguments) and turn every error
    into one line on stderr and an exit code.

    Raises:
        SystemExit: always for an error (2 for usage errors, the typed error's exit code, 130 when
            interrupted, 1 otherwise); click's own exits for ``--help`` and ``--version``.
    """
    _setup_logging()
    redact.register_environment()
    signal.signal(signal.SIGTERM, raise_on_sigterm)
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
        from sam3ops.errors import tracking_error

        if translated := tracking_error(exc):
            _print_error(exc, translated.one_line())
            sys.exit(translated.exit_code)
        _print_error(exc, f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        sys.exit(1)


def _print_error(exc: BaseException, line: str) -> None:
    if os.environ.get(DEBUG_ENV):
        click.echo(redact.redact("".join(traceback.format_exception(exc))), err=True)
    click.echo(f"sam3ops: error: {redact.redact(' '.join(line.split()))}", err=True)
