"""dptrain's Python side: torch twins of dptrain's models, ONNX export, and
the safetensors format dptrain writes.

    import dptrain
    model, info = dptrain.load_model("runs/x/model.safetensors")   # torch nn.Module, eval mode
    x = info.preprocessing.transform(image_uint8_hwc)[None]         # dptrain's eval transform
    probs = model(x).softmax(1)                                      # class order: info.class_names

`python -m dptrain.export --weights F --onnx model.onnx` writes the ONNX model.
The twins need torch and torchvision; export needs onnx, its check onnxruntime.
Names resolve lazily, so `python -m dptrain.export` can report a missing
package clearly instead of failing on import.
"""
__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "dptrain.config", "Preprocessing": "dptrain.config", "WeightsInfo": "dptrain.config",
    "read_info": "dptrain.config", "build_model": "dptrain.models", "load_model": "dptrain.models",
    "read_metadata": "dptrain.safetensors_io", "read_safetensors": "dptrain.safetensors_io",
    "write_safetensors": "dptrain.safetensors_io", "SafetensorsError": "dptrain.safetensors_io",
    "OnnxClassifier": "dptrain.onnx_model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dptrain' has no attribute {name!r}")
