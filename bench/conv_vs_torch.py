#!/usr/bin/python3
"""bench_conv against PyTorch on the CPU: the same nets (LeNet-5-like and a small BatchNorm CNN), batch 128,
the same thread count, one training step (forward, cross-entropy, backward, SGD) timed as the median of
--steps steps. The two run alternately in the same run, --rounds times; the ratio is backprop / PyTorch per
round and its median is reported (below 1: backprop is faster).
usage: bench/conv_vs_torch.py BUILD_DIR [--threads 2] [--steps 20] [--rounds 3]
"""
import argparse
import re
import statistics
import subprocess
import time

import torch
import torch.nn as nn


def torch_step_ms(name, batch, threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name == "lenet":
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(64 * 6 * 6, 10))
    x = torch.rand(batch, 1, 28, 28)
    y = torch.arange(batch) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    ms = []
    for step in range(steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        if step >= 3:
            ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    for name in ("lenet", "bn"):
        ratios = []
        for _ in range(a.rounds):
            out = subprocess.run([a.build + "/bench/bench_conv", name, "--batch", str(a.batch), "--threads",
                                  str(a.threads), "--steps", str(a.steps)], capture_output=True, text=True,
                                 check=True).stdout
            ours = float(re.search(r"([0-9.]+) ms/step", out).group(1))
            theirs = torch_step_ms(name, a.batch, a.threads, a.steps)
            ratios.append(ours / theirs)
            print(f"{name}: backprop {ours:.2f} ms/step, PyTorch {torch.__version__} {theirs:.2f} ms/step, "
                  f"ratio {ours / theirs:.2f}", flush=True)
        print(f"{name}: median ratio {statistics.median(ratios):.2f} over {a.rounds} rounds "
              f"({a.threads} threads, batch {a.batch})", flush=True)


if __name__ == "__main__":
    main()
