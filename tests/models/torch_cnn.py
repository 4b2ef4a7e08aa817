"""The baseline CNN as a torch nn.Module: the shipped twin in
python/dptrain/models.py (same parameter names and layout as
src/nn/models/cnn.c, same init order, so fixtures are unchanged)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from dptrain.models import BaselineCNN, ConvBNReLU  # noqa: E402,F401
