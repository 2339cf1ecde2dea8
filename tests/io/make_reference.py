#!/usr/bin/python3
"""Writes tests/io/data/reference.safetensors: a file made outside backprop, from PyTorch tensors.

    make_reference.py [OUTPUT]

The writer here is independent of backprop's: it lays the file out the way the safetensors library does
(tensors sorted by element size, largest first, then by name; compact JSON with "__metadata__" first; header
padded with spaces to a multiple of 8) and computes backprop's checksum by the rule in docs/files.md.
tests/io/compat_test.cpp loads the committed file and compares every element with the same formulas in C++
(all exactly representable or correctly rounded, so the comparison is bit for bit). Rerun this script and
commit the result only when the formulas change on both sides.
"""
import json
import os
import struct
import sys
import zlib

import torch


def tensors():
    return {
        "embedding.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 3 - 1.5,
        "head.bias": (torch.arange(5, dtype=torch.float64) - 2) / 7,
        "temperature": torch.tensor(0.125, dtype=torch.float32),
        "special": torch.tensor([-0.0, 1e-40, 3.4e38, -1e-7], dtype=torch.float32),
        "mask": torch.zeros(0, 3, dtype=torch.float64),
    }


METADATA = {"format": "pt", "source": "tests/io/make_reference.py"}
NAMES = {torch.float32: "F32", torch.float64: "F64"}


def checksum(items, metadata):
    u64 = lambda x: struct.pack("<Q", x)
    text = lambda s: u64(len(s.encode("utf-8"))) + s.encode("utf-8")
    stream = u64(len(items))
    for name, t in sorted(items, key=lambda kv: kv[0].encode("utf-8")):
        stream += text(name) + text(NAMES[t.dtype]) + u64(t.dim()) + b"".join(u64(d) for d in t.shape)
        stream += t.contiguous().numpy().tobytes()
    stream += u64(len(metadata))
    for key, value in sorted(metadata.items(), key=lambda kv: kv[0].encode("utf-8")):
        stream += text(key) + text(value)
    return "crc32:%08x" % zlib.crc32(stream)


def main():
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "reference.safetensors")
    path = sys.argv[1] if len(sys.argv) > 1 else default
    items = sorted(tensors().items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header = {"__metadata__": dict(METADATA, **{"backprop.checksum": checksum(items, METADATA)})}
    data = b""
    for name, t in items:
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
