#!/usr/bin/env python3
"""PyTorch's side of tests/nn/conv_layers_test.cpp: a small CNN with every convolution and pooling layer, and a
Conv1d, on deterministic inputs (value k of a tensor filled with `seed` is sin(0.37 (k + 1) + seed)), printed
one tensor a line as "name v0 v1 ..." with every digit of each double.
usage: torch_conv.py cnn
"""
import math
import sys

import torch

torch.set_default_dtype(torch.float64)
nn = torch.nn


def filled(shape, seed, scale=1.0):
    n = math.prod(shape)
    return torch.tensor([scale * math.sin(0.37 * (k + 1) + seed) for k in range(n)]).reshape(shape)


def emit(name, t):
    print(name, " ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist()))


def cnn():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, padding="same", groups=2), nn.Tanh(),
                        nn.ConvTranspose2d(6, 3, 2, stride=2), nn.AvgPool2d(3, stride=2, padding=1),
                        nn.AdaptiveAvgPool2d((2, 3)))
    with torch.no_grad():
        for j, (name, p) in enumerate(net.named_parameters()):
            p.copy_(filled(p.shape, float(j), 0.5))
    x = filled((3, 2, 6, 6), 10.0).requires_grad_()
    v = filled((3, 3, 2, 3), 20.0)
    y = net(x)
    (y * v).sum().backward()
    emit("y", y)
    emit("dx", x.grad)
    for name, p in net.named_parameters():
        emit("grad." + name, p.grad)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        loss = (net(x) * v).sum()
        loss.backward()
        opt.step()
        emit("loss%d" % step, loss)
    for name, t in net.state_dict().items():
        emit(name, t)
    net.eval()
    emit("eval_y", net(x))

    conv = nn.Conv1d(3, 4, 3, stride=2, padding=1)
    with torch.no_grad():
        conv.weight.copy_(filled(conv.weight.shape, 30.0))
        conv.bias.copy_(filled(conv.bias.shape, 31.0))
    s = filled((2, 3, 7), 32.0).requires_grad_()
    z = conv(s)
    (z * filled(z.shape, 33.0)).sum().backward()
    emit("conv1d.y", z)
    emit("conv1d.dx", s.grad)
    emit("conv1d.dweight", conv.weight.grad)


if __name__ == "__main__":
    {"cnn": cnn}[sys.argv[1]]()
