#!/usr/bin/python3
"""Reads a safetensors file by hand (json + struct, no safetensors package) into PyTorch tensors and prints them.

    read_safetensors.py FILE

Used by tests/io/compat_test.cpp to check that files written by backprop follow the format as any other reader
sees it. Prints one line per tensor, in file order,
    tensor <TAB> name <TAB> dtype <TAB> d0,d1,... <TAB> v0 v1 ... (float.hex of each element, exact)
then one line per metadata entry, `meta <TAB> key <TAB> value`, then `checksum ok` or `checksum absent`.
Exits with status 1 and a message on stderr if the file breaks the format or its backprop checksum.
"""
import json
import struct
import sys
import zlib

import torch

DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate key in header")
    return dict(pairs)


def content_checksum(tensors, metadata):
    """CRC-32 of the canonical stream described in docs/files.md."""
    u64 = lambda x: struct.pack("<Q", x)
    text = lambda s: u64(len(s.encode("utf-8"))) + s.encode("utf-8")
    stream = u64(len(tensors))
    for name, dtype, shape, raw in sorted(tensors, key=lambda t: t[0].encode("utf-8")):
        stream += text(name) + text(dtype) + u64(len(shape)) + b"".join(u64(d) for d in shape) + raw
    entries = sorted((k, v) for k, v in metadata.items() if k != "backprop.checksum")
    stream += u64(len(entries))
    for key, value in sorted(entries, key=lambda kv: kv[0].encode("utf-8")):
        stream += text(key) + text(value)
    return "crc32:%08x" % zlib.crc32(stream)


def main():
    with open(sys.argv[1], "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8 != 0:
        fail("header length %d is not a multiple of 8" % n)
    header = json.loads(blob[8 : 8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    data = blob[8 + n :]
    metadata = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    position = 0
    tensors = []
    for name, info in entries:
        torch_dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        if begin != position or end - begin != count * size:
            fail("tensor %s: data_offsets %s do not follow %d" % (name, info["data_offsets"], position))
        position = end
        raw = data[begin:end]
        if count:
            t = torch.frombuffer(bytearray(raw), dtype=torch_dtype).reshape(info["shape"])
        else:
            t = torch.empty(info["shape"], dtype=torch_dtype)
        tensors.append((name, info["dtype"], info["shape"], raw))
        values = " ".join(float(v).hex() for v in t.reshape(-1).tolist())
        print("tensor\t%s\t%s\t%s\t%s" % (name, info["dtype"], ",".join(map(str, info["shape"])), values))
    if position != len(data):
        fail("%d bytes after the last tensor" % (len(data) - position))
    for key, value in metadata.items():
        if key != "backprop.checksum":
            print("meta\t%s\t%s" % (key, value))
    if "backprop.checksum" not in metadata:
        print("checksum absent")
    elif metadata["backprop.checksum"] != content_checksum(tensors, metadata):
        fail("checksum %s, computed %s" % (metadata["backprop.checksum"], content_checksum(tensors, metadata)))
    else:
        print("checksum ok")


if __name__ == "__main__":
    main()
