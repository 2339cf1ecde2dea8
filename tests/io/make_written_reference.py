#!/usr/bin/python3
"""Writes tests/io/data/pytorch_written.safetensors: tensors converted by PyTorch to the narrower dtypes
backprop can store (F16, BF16, F32 from f64, I32, U8), each beside its source, in the layout the safetensors
package writes (8-byte header length, JSON header, data in header order).

    make_written_reference.py OUT

The test saves each source with backprop under the same names, asking for the same stored dtypes, and
compares the data section with this file's byte for byte.
"""
import sys

import torch

from make_dtypes_reference import write


def main():
    torch.manual_seed(0)
    tie = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -8, 1 + 3 * 2 ** -8]
    edge = [65504.0, 65519.0, -65519.99, 6.1e-5, 5.9e-8, 2.9e-8, 3.0e-8, 1e-9, -0.0, 0.0, 1 / 3, -2.5]
    x = torch.cat([torch.tensor(tie + edge), torch.randn(40) * 100, torch.randn(20) * 1e-5]).float()
    # BF16 holds the range of float: values near its largest are rounded, not overflowed.
    wide = torch.tensor([3.38e38, -3.0e38, 1e-38, 1e-40, 7.0e4, 1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8]).float()
    # f64 converts through f32 (double rounding), as torch does: the first value ties only after that step.
    y = torch.cat([torch.tensor([1 + 2 ** -11 + 2 ** -40, 1 + 2 ** -8 + 2 ** -40, 1 / 3, 65504.0]),
                   torch.randn(12, dtype=torch.float64) * 10]).double()
    i = torch.tensor([[0, 1, 255], [7, 128, 200]], dtype=torch.int64)
    j = torch.tensor([2147483647, -2147483648, 0, -7], dtype=torch.int64)
    tensors = {
        "x": x, "x.f16": x.half(), "x.bf16": x.bfloat16(),
        "wide": wide, "wide.bf16": wide.bfloat16(),
        "y": y, "y.f16": y.half(), "y.bf16": y.bfloat16(), "y.f32": y.float(),
        "i": i, "i.u8": i.to(torch.uint8), "i.i32": i.int(), "j": j, "j.i32": j.int(),
        "mask": torch.tensor([True, False, True]),
    }
    write(sys.argv[1], tensors)


if __name__ == "__main__":
    main()
