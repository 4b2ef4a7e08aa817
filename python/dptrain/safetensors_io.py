"""The safetensors format, read and written with torch (and numpy) only.

Layout (https://huggingface.co/docs/safetensors): 8-byte little-endian header
length N, N bytes of JSON header, then the raw little-endian tensor data. The
header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
end]} (offsets relative to the data start) and may hold "__metadata__", a
str -> str map. dptrain's weights files (src/train/weights.c) are such files.

The reader validates what it reads (header length, JSON, known dtypes, offsets
inside the file, sizes that equal shape x element size) and raises
SafetensorsError naming the file and the tensor. The writer uses the
safetensors package when it is installed and writes the format itself
otherwise (or when backend="pure" / DPTRAIN_SAFETENSORS=pure), so tools that
only have torch work; both produce files each other's reader accepts.
"""
import json
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

from dptrain.afile import atomic_write

# safetensors dtype -> (torch dtype, numpy dtype used to read the raw bytes).
# BF16 has no numpy dtype: it is read as uint16 and viewed as bfloat16.
DTYPES = {
    "F64": (torch.float64, "<f8"),
    "F32": (torch.float32, "<f4"),
    "F16": (torch.float16, "<f2"),
    "BF16": (torch.bfloat16, "<u2"),
    "I64": (torch.int64, "<i8"),
    "I32": (torch.int32, "<i4"),
    "I16": (torch.int16, "<i2"),
    "I8": (torch.int8, "i1"),
    "U8": (torch.uint8, "u1"),
    "BOOL": (torch.bool, "?"),
}
TORCH_TO_ST = {t: name for name, (t, _) in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024   # the safetensors package's own limit

if sys.byteorder != "little":   # tensors are written from memory as they are
    raise ImportError("dptrain.safetensors_io supports little-endian machines only")


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file (the message names it)."""


def _itemsize(dtype):
    return np.dtype(DTYPES[dtype][1]).itemsize


def read_header(path):
    """Returns (header dict without __metadata__, metadata dict, data_start).
    Validates every entry against the file size."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SafetensorsError(f"'{path}' is not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n == 0 or n > MAX_HEADER or 8 + n > size:
                raise SafetensorsError(f"'{path}' is not a safetensors file (header length {n}, file {size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise SafetensorsError(f"cannot read '{path}': {e.strerror}") from e
    try:
        hdr = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"'{path}': header is not JSON ({e})") from e
    if not isinstance(hdr, dict):
        raise SafetensorsError(f"'{path}': header is not a JSON object")
    meta = hdr.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise SafetensorsError(f"'{path}': __metadata__ must map strings to strings")
    data_len = size - 8 - n
    for name, e in hdr.items():
        if not isinstance(e, dict) or e.get("dtype") not in DTYPES:
            raise SafetensorsError(f"'{path}': tensor '{name}' has an unknown dtype ({e.get('dtype') if isinstance(e, dict) else e!r})")
        shape, offs = e.get("shape"), e.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)):
            raise SafetensorsError(f"'{path}': tensor '{name}' needs an integer shape and two data_offsets")
        lo, hi = offs
        want = int(np.prod(shape, dtype=np.int64)) * _itemsize(e["dtype"])
        if not 0 <= lo <= hi <= data_len:
            raise SafetensorsError(f"'{path}': tensor '{name}' data [{lo}, {hi}) lies outside the {data_len} data bytes (truncated file?)")
        if hi - lo != want:
            raise SafetensorsError(f"'{path}': tensor '{name}' has {hi - lo} bytes, its dtype and shape {shape} need {want}")
    return hdr, meta, 8 + n


def read_metadata(path):
    """The file's __metadata__ (str -> str)."""
    return read_header(path)[1]


def read_safetensors(path):
    """Returns (OrderedDict name -> torch tensor, metadata). Tensors are copies
    (writable, aligned) in the file's header order."""
    hdr, meta, start = read_header(path)
    out = OrderedDict()
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    for name, e in hdr.items():
        tdt, ndt = DTYPES[e["dtype"]]
        lo, hi = e["data_offsets"]
        a = np.frombuffer(data, dtype=ndt, count=(hi - lo) // np.dtype(ndt).itemsize, offset=lo)
        t = torch.from_numpy(a.copy()).reshape(e["shape"])
        out[name] = t.view(torch.bfloat16) if e["dtype"] == "BF16" else t
    return out, meta


def _pure_bytes(tensors, metadata):
    """The whole file as bytes. Tensors are laid out by element size (largest
    first), then name, as the safetensors package does, so every tensor starts
    aligned to its element size when the header is padded to 8 bytes."""
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    hdr = OrderedDict()
    if metadata:
        hdr["__metadata__"] = metadata
    blobs, off = [], 0
    for k in names:
        t = tensors[k].detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            b = t.view(torch.int16).numpy().tobytes()
        else:
            b = t.numpy().tobytes()
        hdr[k] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def have_safetensors_package():
    try:
        import safetensors.torch  # noqa: F401
        return True
    except ImportError:
        return False


def write_safetensors(path, tensors, metadata=None, backend="auto"):
    """Writes tensors (name -> torch tensor) and metadata (str -> str) to path,
    atomically (temp file, fsync, rename). backend: "auto" (the safetensors
    package when installed, unless DPTRAIN_SAFETENSORS=pure), "pure" (this
    module's writer) or "safetensors". Returns the backend used."""
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"safetensors metadata must map str to str (got {k!r}: {type(v).__name__})")
    for k, t in tensors.items():
        if t.dtype not in TORCH_TO_ST:
            raise TypeError(f"tensor '{k}': dtype {t.dtype} has no safetensors equivalent")
    if backend == "auto":
        backend = "pure" if os.environ.get("DPTRAIN_SAFETENSORS") == "pure" or not have_safetensors_package() \
            else "safetensors"
    if backend == "pure":
        data = _pure_bytes(tensors, metadata)
        atomic_write(path, lambda f: f.write(data))
    elif backend == "safetensors":
        import safetensors.torch
        ts = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}
        data = safetensors.torch.save(ts, metadata=metadata or None)
        atomic_write(path, lambda f: f.write(data))
    else:
        raise ValueError(f"unknown safetensors backend '{backend}' (auto, pure, safetensors)")
    return backend
