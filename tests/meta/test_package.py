"""Meta's package as this project finds it: the vocabulary path and a clear line when it is missing."""

from __future__ import annotations

import importlib.util

import pytest

from sam3ops.meta import package


def test_the_vocabulary_comes_from_sam3_bpe_path_where_set(monkeypatch, tmp_path):
    carried = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    carried.write_bytes(b"")
    monkeypatch.setenv(package.BPE_ENV, str(carried))
    assert package.bpe_path() == str(carried)
    monkeypatch.delenv(package.BPE_ENV)
    assert package.bpe_path().endswith("bpe_simple_vocab_16e6.txt.gz") and package.bpe_path() != str(carried)


def test_a_missing_runtime_need_is_named_in_one_line_with_the_install_commands(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iopath" else real(name))
    with pytest.raises(package.MetaPackageError) as raised:
        package.require_package()
    line = raised.value.one_line()
    assert "missing iopath" in line and "--no-deps sam3==0.1.4" in line and "\n" not in line
    assert "--no-deps -r requirements-no-deps.txt" in line  # what a registered version's environment runs
