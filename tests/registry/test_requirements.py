"""Each version's pip requirements: its format's runtime, and for Meta's layout Meta's package apart."""

from sam3ops.registry.requirements import no_deps_requirements, pip_requirements


def _names(requirements: list[str]) -> set[str]:
    return {line.split("==")[0] for line in requirements}


def test_transformers_layouts_need_nothing_installed_without_deps():
    for format in ("fp32", "bf16", "onnx", "tensorrt"):
        assert no_deps_requirements(format) == []
        assert not _names(pip_requirements(format)) & {"sam3", "einops", "timm"}


def test_metas_layout_lists_its_runtime_and_sam3_apart():
    for format in ("fp32", "fp16", "bf16"):
        names = _names(pip_requirements(format, layout="meta"))
        assert {"einops", "iopath", "timm", "ftfy", "regex", "open_clip_torch", "torch", "transformers"} <= names
        assert "sam3" not in names and "safetensors" not in names
        (sam3,) = no_deps_requirements(format, layout="meta")
        assert sam3.startswith("sam3==")


def test_installed_versions_are_pinned():
    from importlib import metadata

    assert f"timm=={metadata.version('timm').split('+')[0]}" in pip_requirements("fp32", layout="meta")
