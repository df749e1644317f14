"""Prompt sets: the shipped file is valid and covers the required kinds; bad files get clear errors."""

import json

import pytest

from sam3ops.errors import PromptsError
from sam3ops.inference import prompts
from tests.conftest import REPO_ROOT


def test_default_file_has_required_categories():
    sets = prompts.load_prompt_sets(REPO_ROOT / "prompts" / "default_prompts.json")
    assert "person" in sets["single_objects"]
    assert "person wearing a red shirt" in sets["objects_with_attributes"]
    assert "background" in sets["background_foreground"]
    assert "left hand" in sets["body_parts"]
    assert all(len(p) >= 3 for p in sets.values())


def _write(tmp_path, data):
    path = tmp_path / "p.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("{not json", "not valid JSON"),
        ({"sets": {}}, "non-empty object 'sets'"),
        ({"sets": {"a": []}}, "set 'a' must be a non-empty list"),
        ({"sets": {"a": ["cat", "   "]}}, "empty or blank"),
        ({"sets": {"a": ["cat", 3]}}, "must be text"),
        ({"sets": {"a": ["cat", "cat "]}}, "repeats 'cat'"),
    ],
)
def test_invalid_files(tmp_path, data, fragment):
    with pytest.raises(PromptsError, match=fragment):
        prompts.load_prompt_sets(_write(tmp_path, data))


def test_missing_file(tmp_path):
    with pytest.raises(PromptsError, match="not found"):
        prompts.load_prompt_sets(tmp_path / "nope.json")


def test_resolve_combines_explicit_and_sets(tmp_path):
    path = _write(tmp_path, {"sets": {"a": ["cat", "dog"], "b": ["dog", "car"]}})
    assert prompts.resolve_prompts(["  red   car "], ["a", "b"], path=path) == ["red car", "cat", "dog", "car"]


def test_resolve_refuses_blank_unknown_and_nothing(tmp_path):
    path = _write(tmp_path, {"sets": {"a": ["cat"]}})
    with pytest.raises(PromptsError, match="blank"):
        prompts.resolve_prompts([""], path=path)
    with pytest.raises(PromptsError, match="unknown prompt set 'zzz'") as info:
        prompts.resolve_prompts([], ["zzz"], path=path)
    assert "known sets: a" in info.value.one_line()
    with pytest.raises(PromptsError, match="no prompts"):
        prompts.resolve_prompts([], [], path=path)
