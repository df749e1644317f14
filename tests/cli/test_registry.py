"""`sam3ops register`, `promote`, `rollback`, `pull`, `versions`: what they pass on and print."""

from pathlib import Path
from types import SimpleNamespace

from sam3ops.registry import DEFAULT_ALIAS, DEFAULT_NAME
from tests.cli.helpers import invoke
from tests.support.cli import run_cli


def _move(**fields):
    return SimpleNamespace(**{"name": "sam3", "alias": "production", "version": "3", "previous": "2",
                              "action": "promote", "run_id": "prun", **fields})


def test_register_says_when_the_run_was_registered_before(replace):
    tags = {"format": "fp16", "precision": "fp16", "parity": "pass", "weights_random": "true"}
    call = replace("sam3ops.registry.register", SimpleNamespace(version="4", tags=tags, reused=True,
                                                                register_run_id=None))
    out = invoke("register", "--run-id", "abc").output
    assert call.kwargs == {"run_id": "abc", "name": DEFAULT_NAME}
    assert out.strip() == "run abc is already sam3 version 4 (fp16, precision fp16, parity pass, RANDOM weights)"


def test_promote_reads_a_bool_value_and_an_empty_gpu_as_none(replace):
    call = replace("sam3ops.registry.promote", _move())
    out = invoke("promote", "--version", "3", "--allow-random", "true", "--reason", "faster").output
    assert call.kwargs == {"version": "3", "name": DEFAULT_NAME, "alias": DEFAULT_ALIAS, "allow_random": True,
                           "target_gpu": None, "reason": "faster"}
    assert out.strip() == "sam3@production -> version 3 (promote; was 2, now sam3@previous-production) (run prun)"


def test_rollback_that_changes_nothing_says_so(replace):
    call = replace("sam3ops.registry.rollback", _move(action="unchanged"))
    out = invoke("rollback", "--reason", "oops").output
    assert call.kwargs == {"name": DEFAULT_NAME, "alias": DEFAULT_ALIAS, "reason": "oops"}
    assert out.strip() == "sam3@production already is version 3: nothing changed"


def test_pull_refuses_an_alias_and_a_version_together(capsys, replace):
    call = replace("sam3ops.registry.pull", None)
    code, _, err = run_cli(capsys, "pull", "--alias", "production", "--version", "3", "--dest", "d")
    assert code == 2 and "give --alias or --version, not both" in err
    assert call.calls == []


def test_pull_prints_forced_problems_as_warnings(replace):
    done = SimpleNamespace(forced=["built on another GPU"], up_to_date=True, version="5", format="tensorrt")
    call = replace("sam3ops.registry.pull", done)
    result = invoke("pull", "--version", "5", "--dest", "d", "--force")
    assert call.kwargs == {"dest": Path("d"), "name": DEFAULT_NAME, "version": "5", "alias": None, "force": True}
    assert result.output.strip().splitlines() == ["warning: --force: built on another GPU",
                                                  "d already holds sam3 version 5 (tensorrt), verified"]


def test_versions_lists_one_line_per_version(monkeypatch):
    version = SimpleNamespace(version="2", aliases=["production"], tags={"format": "onnx", "precision": "fp32",
                                                                         "parity": "pass", "weights_random": "false",
                                                                         "source_run_id": "src"})
    monkeypatch.setattr("sam3ops.registry.list_versions", lambda name: [version] if name == "other" else [])
    assert invoke("versions").output == ""
    assert invoke("versions", "--name", "other").output.split() == [
        "2", "production", "onnx", "fp32", "parity=pass", "random=false", "run=src"]
