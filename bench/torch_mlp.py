#!/usr/bin/python3
"""PyTorch twin of bench_mlp: the same MLP, data, optimiser and loop; prints one JSON object.

    /usr/bin/python3 bench/torch_mlp.py --batch 128 --epochs 3 --threads 1 --hidden 256,128
    /usr/bin/python3 bench/torch_mlp.py --mode infer --hidden 256,128
"""
import argparse
import gzip
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load(data, split, limit=0):
    prefix = "train" if split == "train" else "t10k"
    # The images stay as bytes (as backprop's benchmark keeps them); each batch is converted by floats().
    x = read_idx(f"{data}/{prefix}-images-idx3-ubyte.gz").reshape(-1, 784)
    y = read_idx(f"{data}/{prefix}-labels-idx1-ubyte.gz").long()
    if limit:
        x, y = x[:limit].contiguous(), y[:limit].contiguous()
    return x, y


def floats(x):
    return x.float() / 255.0


def make_mlp(hidden):
    layers, prev = [], 784
    for h in hidden:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        prev = h
    layers.append(nn.Linear(prev, 10))
    net = nn.Sequential(*layers)
    for m in net:  # He-uniform weights and zero biases, as backprop's Linear defaults
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_train(a):
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "test")
    torch.manual_seed(a.seed)
    net = make_mlp(a.hidden)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    n = xtr.shape[0]
    times, last = [], 0.0
    for _ in range(a.epochs):
        order = torch.randperm(n)
        t0 = time.perf_counter()
        for b in range(0, n, a.batch):
            idx = order[b:b + a.batch]
            x, y = floats(xtr[idx]), ytr[idx]
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        last = loss.item()
        times.append(time.perf_counter() - t0)
    timed = times[1:] if len(times) > 1 else times
    epoch_s = statistics.median(timed)
    with torch.no_grad():
        right = sum((net(floats(xte[b:b + 1000])).argmax(1) == yte[b:b + 1000]).sum().item()
                    for b in range(0, xte.shape[0], 1000))  # 1000 rows at a time, as backprop's benchmark
        acc = right / xte.shape[0]
    return {"impl": "pytorch", "mode": "train", "batch": a.batch, "threads": a.threads,
            "hidden": ",".join(map(str, a.hidden)), "examples": n, "epoch_s": epoch_s, "epoch_times": times,
            "samples_per_s": n / epoch_s, "test_accuracy": acc, "final_loss": last,
            "peak_rss_mib": peak_rss_mib()}


def run_infer(a):
    torch.manual_seed(a.seed)
    net = make_mlp(a.hidden).eval()
    one, big = torch.rand(1, 784), torch.rand(1024, 784)
    lat, thr = [], []
    with torch.inference_mode():
        for _ in range(200):
            net(one)
        for _ in range(21):
            t0 = time.perf_counter()
            for _ in range(200):
                net(one)
            lat.append((time.perf_counter() - t0) / 200)
        for _ in range(3):
            net(big)
        for _ in range(11):
            t0 = time.perf_counter()
            for _ in range(5):
                net(big)
            thr.append(5 * 1024 / (time.perf_counter() - t0))
    return {"impl": "pytorch", "mode": "infer", "threads": a.threads, "latency_us": statistics.median(lat) * 1e6,
            "batch1024_samples_per_s": statistics.median(thr), "peak_rss_mib": peak_rss_mib()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="train", choices=["train", "infer"])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    a.hidden = [int(h) for h in a.hidden.split(",") if h]
    torch.set_num_threads(a.threads)
    out = run_train(a) if a.mode == "train" else run_infer(a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
