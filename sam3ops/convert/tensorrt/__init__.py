"""TensorRT engines: readiness of the ONNX graphs, the operator table, the engine build."""
