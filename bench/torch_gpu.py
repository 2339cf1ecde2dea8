#!/usr/bin/env python3
"""PyTorch's side of bench_gpu (bench/gpu.cpp): the same workloads on GPU 0, eager, timed the same way.
Prints one line per workload, NAME us_per_call, and the PyTorch version and GPU name as `# ...` lines."""
import time

import torch


def median_us(call, calls):
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return sorted(runs)[len(runs) // 2]


def mlp(hidden, dev):
    layers, d = [], 784
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
        d = h
    layers.append(torch.nn.Linear(d, 10))
    return torch.nn.Sequential(*layers).to(dev)


def main():
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means f32, as in backprop
    torch.manual_seed(0)
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    with torch.no_grad():
        for name, hidden, batch in [("mlp_forward_b128", (256, 128), 128), ("mlp_forward_b32", (256, 128), 32),
                                    ("wide_forward_b512", (1024, 1024), 512)]:
            net = mlp(hidden, dev)
            x = torch.rand(batch, 784, device=dev)
            print(f"{name} {median_us(lambda: net(x), 200):.2f}", flush=True)
        a = torch.randn(2048, 2048, device=dev)
        print(f"sgemm_2048 {median_us(lambda: a @ a, 20):.2f}", flush=True)
        v = torch.rand(1 << 20, device=dev)
        print(f"add_1m {median_us(lambda: v + v, 200):.2f}", flush=True)


if __name__ == "__main__":
    main()
