#!/usr/bin/python3
"""PyTorch twin of bench_cnn: the same CNNs (LeNet-5 and the BatchNorm CNN), data, optimiser (SGD lr 0.01
momentum 0.9) and loop; prints one JSON object. Weights keep PyTorch's default initialisation.

    /usr/bin/python3 bench/torch_cnn.py --net bn --epochs 2 --limit 12800 --threads 2
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mlp import floats, peak_rss_mib, read_idx  # noqa: E402  (the same data path as the MLP twin)


def load(data, split, limit):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{data}/{prefix}-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28)
    y = read_idx(f"{data}/{prefix}-labels-idx1-ubyte.gz").long()
    if limit:
        x, y = x[:limit].contiguous(), y[:limit].contiguous()
    return x, y


def make_net(name):
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 6 * 6, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--net", default="bn", choices=["lenet", "bn"])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "test", a.test_limit)
    net = make_net(a.net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
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
    epoch_s = statistics.median(times[1:] if len(times) > 1 else times)
    rss = peak_rss_mib()  # the training's peak, before evaluation
    net.eval()
    with torch.no_grad():
        right = sum((net(floats(xte[b:b + 1000])).argmax(1) == yte[b:b + 1000]).sum().item()
                    for b in range(0, xte.shape[0], 1000))
    print(json.dumps({"impl": "pytorch", "net": a.net, "batch": a.batch, "threads": a.threads, "examples": n,
                      "epoch_s": epoch_s, "epoch60k_s": epoch_s * 60000 / n, "epoch_times": times,
                      "test_accuracy": right / xte.shape[0], "final_loss": last, "peak_rss_mib": rss}))


if __name__ == "__main__":
    main()
