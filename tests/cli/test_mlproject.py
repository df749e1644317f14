"""The MLproject file mirrors the command line: its entry points, their parameters and their defaults."""

import shlex

import click
import pytest
import yaml

from sam3ops import cli
from tests.conftest import REPO_ROOT

ENTRY_POINTS = yaml.safe_load((REPO_ROOT / "MLproject").read_text())["entry_points"]
COMMAND_OF = {"main": "pipeline", "benchmark": "bench"}  # the entry points named otherwise than their command
# Defaults only the entry point has, and why the command leaves them out.
ENTRY_POINT_ONLY_DEFAULTS = {
    ("predict", "prompt_set"): "the command needs --prompt or --prompt-set; the entry point picks a set",
    ("pull", "alias"): "the command leaves --alias unset so that --version can be given alone",
}


def _command(name: str) -> click.Command:
    return cli.cli.commands[COMMAND_OF.get(name, name)]


def _param(name: str, parameter: str) -> click.Parameter:
    """The click parameter an entry point's parameter is passed to (an option, or an argument)."""
    for param in _command(name).params:
        if f"--{parameter.replace('_', '-')}" in param.opts or param.opts == [parameter]:
            return param
    raise AssertionError(f"{name} has no option for the entry point parameter {parameter}")


def _received(command: click.Command, args: list[str]) -> dict:
    """What the command's function would be called with for ``args`` (parsed, defaults applied)."""
    with command.make_context(command.name, args) as ctx:
        return dict(ctx.params)


def _bare(command: click.Command) -> dict:
    """What the command receives given only its required options and arguments (any valid value)."""
    args = []
    for param in command.params:
        if param.required:
            value = param.type.choices[0] if isinstance(param.type, click.Choice) else "x"
            args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return _received(command, args)


def _as_mlflow_runs_it(name: str) -> dict:
    """What the command receives from ``mlflow run -e NAME`` with every default (MLflow quotes each value)."""
    entry = ENTRY_POINTS[name]
    values = {p: shlex.quote(str(spec.get("default", "x"))) for p, spec in entry.get("parameters", {}).items()}
    return _received(_command(name), shlex.split(entry["command"].format(**values))[2:])


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_runs_its_command_with_every_parameter(name):
    entry = ENTRY_POINTS[name]
    command = COMMAND_OF.get(name, name)
    assert command in cli.cli.commands, name
    assert entry["command"].startswith(f"sam3ops {command} "), name
    for parameter in entry.get("parameters", {}):
        _param(name, parameter)
        assert f"{{{parameter}}}" in entry["command"], (name, parameter)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_point_defaults_are_the_command_defaults(name):
    """`mlflow run -e NAME` with its defaults calls the command with exactly what the bare command uses,
    for every parameter the command has a default of its own for (not a required one)."""
    via_mlflow, bare = _as_mlflow_runs_it(name), _bare(_command(name))
    compared = 0
    for parameter, spec in ENTRY_POINTS[name].get("parameters", {}).items():
        param = _param(name, parameter)
        if "default" in spec and not param.required and (name, parameter) not in ENTRY_POINT_ONLY_DEFAULTS:
            assert via_mlflow[param.name] == bare[param.name], (name, parameter)
            compared += 1
    assert compared, name


@pytest.mark.parametrize("name, parameter", sorted(ENTRY_POINT_ONLY_DEFAULTS))
def test_each_exception_still_differs(name, parameter):
    """An exception that no longer differs would hide a later mismatch."""
    param = _param(name, parameter)
    assert _bare(_command(name))[param.name] in (None, ())
    assert _as_mlflow_runs_it(name)[param.name] not in (None, ())
