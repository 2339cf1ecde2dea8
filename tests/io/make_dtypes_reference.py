#!/usr/bin/python3
"""Writes tests/io/data/pytorch_dtypes.safetensors: tensors of every dtype backprop reads, built by PyTorch, in
the layout the safetensors package writes (8-byte header length, JSON header, data in header order).

    make_dtypes_reference.py OUT

Each F16/BF16 tensor comes with "<name>.f32", PyTorch's own widening of it, so the test compares backprop's
conversion with torch's bit for bit. "bn.*" is the state dict of a torch BatchNorm1d(3) after three training
steps, with its I64 counter "bn.num_batches_tracked".
"""
import json
import struct
import sys

import torch

NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def raw(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = raw(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(3)
    for _ in range(3):
        bn(torch.randn(4, 3))
    # Finite edge values: smallest subnormal, largest subnormal, smallest normal, largest finite, -0, 1/3.
    f16 = torch.tensor([5.960464477539063e-08, 6.097555160522461e-05, 6.103515625e-05, 65504.0, -0.0,
                        1 / 3, -2.5, 1.0], dtype=torch.float16)
    bf16 = torch.tensor([9.183549615799121e-41, 1.1754943508222875e-38, 3.3895313892515355e38, -0.0,
                         1 / 3, -2.5, 1.0], dtype=torch.bfloat16)
    tensors = {
        "f16": f16, "f16.f32": f16.float(),
        "bf16": bf16, "bf16.f32": bf16.float(),
        "i64": torch.tensor([[0, -1], [9223372036854775807, -9223372036854775808]], dtype=torch.int64),
        "i32": torch.tensor([2147483647, -2147483648, 0, 7], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "mask": torch.tensor([[True, False, True]]),
        "bn.num_batches_tracked": bn.state_dict()["num_batches_tracked"],
        "bn.running_mean": bn.running_mean,
        "bn.running_var": bn.running_var,
        "bn.weight": bn.weight.detach(),
        "bn.bias": bn.bias.detach(),
    }
    write(sys.argv[1], tensors)


if __name__ == "__main__":
    main()
