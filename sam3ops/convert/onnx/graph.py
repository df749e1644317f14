"""Checks every ONNX graph sam3ops writes passes: onnx's full checker and strict shape inference."""

from __future__ import annotations

from pathlib import Path


def check_graph(path: Path) -> None:
    """``onnx.checker``'s full check and strict shape inference of the graph at ``path``."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)  # by path: works past 2 GB
    onnx.shape_inference.infer_shapes_path(str(path), check_type=True, strict_mode=True)
