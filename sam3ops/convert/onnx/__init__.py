"""ONNX graphs of SAM3: export of the three parts, float16 graphs."""
