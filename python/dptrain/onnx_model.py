"""Scoring with an exported model (python -m dptrain.export) in ONNX Runtime:
everything it needs comes from the .onnx file's metadata_props.

    from dptrain.onnx_model import OnnxClassifier
    clf = OnnxClassifier("model.onnx")          # CUDA / TensorRT providers first when installed
    probs = clf.predict(list_of_uint8_hwc_images)        # (N, classes), order clf.class_names

Needs onnxruntime (or onnxruntime-gpu for CUDAExecutionProvider and
TensorrtExecutionProvider) and torch (for the preprocessing).
"""
import json

import numpy as np

from dptrain.config import Preprocessing

# Fastest first; ONNX Runtime skips the ones its build lacks.
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxClassifier:
    def __init__(self, path, providers=None):
        import onnxruntime as ort
        if providers is None:
            avail = ort.get_available_providers()
            providers = [p for p in PREFERRED if p in avail] or avail
        self.session = ort.InferenceSession(path, providers=providers)
        md = self.session.get_modelmeta().custom_metadata_map
        if "dptrain.preprocessing" not in md:
            raise ValueError(f"'{path}' has no dptrain.preprocessing metadata: was it written by dptrain export?")
        self.preprocessing = Preprocessing.from_description(json.loads(md["dptrain.preprocessing"]))
        self.class_names = json.loads(md["dptrain.class_names"])
        self.metadata = dict(md)

    def logits(self, x):
        """x: preprocessed (N, C, S, S) float32 -> logits (N, classes)."""
        return self.session.run(["logits"], {"input": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def preprocess(self, images):
        """uint8 (H, W[, C]) images (any sizes) -> the (N, C, S, S) batch."""
        import torch
        return torch.stack([self.preprocessing.transform(im) for im in images]).numpy()

    def predict(self, images):
        """Class probabilities (N, classes) of raw uint8 images."""
        z = self.logits(self.preprocess(images)).astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
