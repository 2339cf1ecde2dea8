"""Loads a backprop model file in PyTorch and prints its predictions for a CSV file, one JSON object per line.

Usage: torch_predict.py MODEL.safetensors FEATURES.csv

The safetensors format is parsed with the standard library and numpy (no safetensors package needed); the
network is rebuilt as a torch.nn.Sequential from the "architecture" metadata, whose module indices match
backprop's, so load_state_dict takes the tensors by their names unchanged. The "preprocessing" metadata and the
preprocess.mean / preprocess.std tensors standardise the features as backprop does.
"""
import json
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, meta


def build(arch):
    activations = {
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "sigmoid": torch.nn.Sigmoid,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
    }
    layers = []
    width = arch["inputs"]
    for h in arch["hidden"]:
        layers.append(torch.nn.Linear(width, h))
        if arch["batchnorm"]:
            layers.append(torch.nn.BatchNorm1d(h, eps=1e-5, momentum=0.1))
        layers.append(activations[arch["activation"]]())
        if arch["dropout"] > 0:
            layers.append(torch.nn.Dropout(arch["dropout"]))
        width = h
    layers.append(torch.nn.Linear(width, arch["outputs"]))
    return torch.nn.Sequential(*layers)


def main():
    tensors, meta = read_safetensors(sys.argv[1])
    arch = json.loads(meta["architecture"])
    pre = json.loads(meta["preprocessing"])
    net = build(arch)
    state = {k: v for k, v in tensors.items() if not k.startswith("preprocess.")}
    for k in list(state):
        if k.endswith("num_batches_tracked"):
            state[k] = state[k].to(torch.long)
    net.load_state_dict(state, strict=True)
    net.eval()
    x = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    x = torch.from_numpy(x)
    if pre["standardize"]:
        x = (x - tensors["preprocess.mean"]) / tensors["preprocess.std"]
    with torch.no_grad():
        p = torch.softmax(net(x), dim=1)
    for row in p:
        k = int(torch.argmax(row))
        print(json.dumps({"class": pre["class_names"][k], "probability": float(row[k])}))


if __name__ == "__main__":
    main()
