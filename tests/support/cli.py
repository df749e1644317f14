"""Run the CLI in-process the way a user's shell would."""

from sam3ops import cli


def run_cli(capsys, *argv):
    """Run ``sam3ops ARGV``; return (exit code, stdout, stderr)."""
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
