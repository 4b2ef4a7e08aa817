#!/usr/bin/env python3
"""The layering rule of dptrain, checked on every build and as a test.

Layers, lowest first (README "How it is built"):
  core -> nn -> backend/cpu, backend/cuda (+ kernels/) -> input, dist, track
       -> train -> study -> data, cli
A source file may include headers of its own layer and of layers below it,
never of a layer above or beside it (backend/cpu and backend/cuda do not see
each other; input, dist and track do not see each other).

Usage: check_layers.py SOURCE_DIR      exit 0 when clean, 1 listing each bad include
       check_layers.py --self-test     shows that a wrong-way include is caught
"""
import os
import re
import sys

# layer -> the layers it may include (itself included)
ALLOWED = {
    "core": {"core"},
    "nn": {"core", "nn"},
    "backend/cpu": {"core", "nn", "backend/cpu"},
    "backend/cuda": {"core", "nn", "backend/cuda"},
    "kernels": {"backend/cuda", "kernels"},
    "input": {"core", "input"},
    "dist": {"core", "nn", "backend/cpu", "backend/cuda", "dist"},
    "track": {"core", "track"},
    "train": {"core", "nn", "backend/cpu", "backend/cuda", "input", "dist", "track", "train"},
    "study": {"core", "nn", "input", "dist", "track", "train", "study"},
    "data": {"core", "input", "data"},
    "cli": {"core", "nn", "backend/cpu", "backend/cuda", "input", "dist", "track", "train", "study",
            "data", "cli"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_path(rel):
    """Layer of a file given its path relative to the source root."""
    parts = rel.split("/")
    if parts[0] == "src":
        parts = parts[1:]
    if not parts:
        return None
    if parts[0] == "backend" and len(parts) > 1:
        return "backend/" + parts[1]
    if parts[0] in ALLOWED:
        return parts[0]
    return None


def layer_of_include(inc, including_dir_layer):
    parts = inc.split("/")
    if len(parts) == 1:
        return including_dir_layer   # same folder ("dp_cuda_common.cuh")
    if parts[0] == "backend" and len(parts) > 2:
        return "backend/" + parts[1]
    return parts[0] if parts[0] in ALLOWED else None


def check_file(path, rel):
    lay = layer_of_path(rel)
    if lay is None:
        return []
    bad = []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for m in INCLUDE.finditer(text):
        inc = m.group(1)
        target = layer_of_include(inc, lay)
        if target is None:
            continue
        if target not in ALLOWED[lay]:
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{rel}:{line}: layer '{lay}' includes \"{inc}\" of layer '{target}' "
                       f"(allowed: {', '.join(sorted(ALLOWED[lay]))})")
    return bad


def scan(root):
    bad = []
    for top in ("src", "data", "kernels"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for fn in files:
                if fn.endswith((".c", ".h", ".cu", ".cuh")):
                    p = os.path.join(dirpath, fn)
                    bad += check_file(p, os.path.relpath(p, root))
    return bad


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "src", "nn"))
        os.makedirs(os.path.join(d, "src", "train"))
        with open(os.path.join(d, "src", "nn", "x.c"), "w") as f:
            f.write('#include "nn/graph.h"\n#include "train/optim.h"\n')
        with open(os.path.join(d, "src", "train", "y.c"), "w") as f:
            f.write('#include "nn/graph.h"\n#include "dist/dist.h"\n')
        bad = scan(d)
        ok = len(bad) == 1 and "src/nn/x.c:2" in bad[0]
        print("self-test:", "ok" if ok else "FAILED", bad)
        return 0 if ok else 1


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    bad = scan(root)
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print(f"check_layers: {len(bad)} include(s) cross the layers upwards", file=sys.stderr)
        return 1
    print("check_layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
