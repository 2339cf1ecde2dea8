#!/usr/bin/python3
"""Runs an ONNX model written by backprop in ONNX Runtime, after onnx.checker, and reports what it computed.

    onnx_check.py MODEL.onnx compare DATA.safetensors   # DATA: tensors "input" [N, ...] and "expected" [N, ...]
    onnx_check.py MODEL.onnx predict IDX.gz LIMIT       # raw images, printed like `backprop predict --json`

compare: runs the model on all N rows in batches of 1000 and on the first 200 rows one at a time (the batch
dimension is dynamic; "input" is f32, f64, or i64 token ids), and prints one JSON object: the largest absolute
and relative differences to "expected" for each, the rows, the operators, the opset, the input's shape and
element type, and the metadata. predict: one JSON line per image with the
class (from the model's metadata), its index and its softmax probability.
Used by tests/io/onnx_test.cpp and tests/cli/export_test.cpp. Exits with status 1 and a message on stderr
when the checker refuses the model.
"""
import gzip
import json
import struct
import sys

import numpy as np
import onnx
import onnxruntime

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin : 8 + n + end]
        out[name] = np.frombuffer(raw, DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def session(path):
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        print(f"onnx.checker refused {path}: {e}", file=sys.stderr)
        sys.exit(1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    s = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return model, s


def differences(got, expected):
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    rel = diff / np.maximum(np.abs(expected.astype(np.float64)), 1.0)
    return float(diff.max()), float(rel.max())


def compare(model_path, data_path):
    model, s = session(model_path)
    data = read_safetensors(data_path)
    x, expected = data["input"], data["expected"]
    name = s.get_inputs()[0].name
    batched = np.concatenate([s.run(None, {name: x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])
    single = np.concatenate([s.run(None, {name: x[i : i + 1]})[0] for i in range(min(200, len(x)))])
    abs_b, rel_b = differences(batched, expected)
    abs_1, rel_1 = differences(single, expected[: len(single)])
    print(json.dumps({
        "rows": int(len(x)),
        "max_abs_diff": abs_b,
        "max_rel_diff": rel_b,
        "batch1_rows": int(len(single)),
        "batch1_max_abs_diff": abs_1,
        "batch1_max_rel_diff": rel_1,
        "output_shape": list(batched.shape),
        "ops": [n.op_type for n in model.graph.node],
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")],
        "input_shape": [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim],
        "input_type": onnx.TensorProto.DataType.Name(model.graph.input[0].type.tensor_type.elem_type),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }))


def predict(model_path, idx_path, limit):
    model, s = session(model_path)
    with gzip.open(idx_path) if idx_path.endswith(".gz") else open(idx_path, "rb") as f:
        raw = f.read()
    dims = struct.unpack(">III", raw[4:16])
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(dims[0], dims[1] * dims[2])[:limit].astype(np.float32)
    names = json.loads({p.key: p.value for p in model.metadata_props}.get("class_names", "[]"))
    logits = s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for row, probs in enumerate(p):
        c = int(probs.argmax())
        print(json.dumps({"row": row, "class": names[c] if c < len(names) else str(c), "index": c,
                          "probability": float(probs[c])}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "compare":
        compare(sys.argv[1], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[2] == "predict":
        predict(sys.argv[1], sys.argv[3], int(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
