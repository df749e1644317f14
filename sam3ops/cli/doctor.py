"""``sam3ops doctor``: clean up after processes that were killed."""

from __future__ import annotations

import click


@click.command()
def doctor() -> None:
    """End this host's RUNNING runs whose process was killed (kill -9, out of memory) and remove their staging.

    Each such run ends FAILED with an ``error`` tag saying so; the staging folders its process made
    are removed (download .part files and a pull's folder are kept: the next run resumes them).
    Prints one line per run ended and per folder removed. Every sam3ops stage does the same when it
    starts; this does it on demand. Exits non-zero only when the tracking store cannot be reached.
    """
    import socket

    from sam3ops.tracking import configure
    from sam3ops.tracking.reaper import reap

    configure()
    reaped = reap()
    for run in reaped:
        for line in run.lines():
            click.echo(line)
    if not reaped:
        click.echo(f"nothing to clean up: no RUNNING run of a killed process on {socket.gethostname()}")


COMMANDS = (doctor,)
