#!/usr/bin/env python3
"""PyTorch's side of tests/nn/layernorm_test.cpp and tests/nn/residual_test.cpp: the same computation on the
same deterministic inputs (value k of a tensor filled with `seed` is sin(0.37 (k + 1) + seed)), printed one
tensor a line as "name v0 v1 ..." with every digit of each double.
usage: torch_layers.py layernorm | train | attention
"""
import math
import sys

import torch

torch.set_default_dtype(torch.float64)


def filled(shape, seed, scale=1.0):
    n = math.prod(shape)
    return torch.tensor([scale * math.sin(0.37 * (k + 1) + seed) for k in range(n)]).reshape(shape)


def emit(name, t):
    print(name, " ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist()))


def layernorm():
    for tag, shape, normalized in (("last", (5, 4), (4,)), ("two", (3, 2, 4), (2, 4))):
        ln = torch.nn.LayerNorm(normalized, eps=1e-5)
        with torch.no_grad():
            ln.weight.copy_(filled(normalized, 1.0))
            ln.bias.copy_(filled(normalized, 2.0))
        x = filled(shape, 3.0).requires_grad_()
        y = ln(x)
        (y * filled(shape, 4.0)).sum().backward()
        emit(tag + ".y", y)
        emit(tag + ".dx", x.grad)
        emit(tag + ".dweight", ln.weight.grad)
        emit(tag + ".dbias", ln.bias.grad)


class Residual(torch.nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


def train():
    nn = torch.nn
    net = nn.Sequential(nn.Linear(4, 6), Residual(nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 6), nn.Tanh())),
                        nn.LayerNorm(6), nn.Linear(6, 2))
    with torch.no_grad():
        for j, (name, p) in enumerate(net.named_parameters()):
            p.copy_(filled(p.shape, float(j), 0.5))
    x, target = filled((8, 4), 10.0), filled((8, 2), 20.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(5):
        opt.zero_grad()
        loss = ((net(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        emit("loss%d" % step, loss)
    for name, p in net.named_parameters():
        emit(name, p)


class AttentionBlock(torch.nn.Module):
    """y = LayerNorm(x + MHA(x, x, x)); out = head(mean over the sequence of y)."""

    def __init__(self, dtype):
        super().__init__()
        nn = torch.nn
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=dtype)
        self.norm = nn.LayerNorm(8, dtype=dtype)
        self.head = nn.Linear(8, 3, dtype=dtype)

    def forward(self, x, attn_mask=None, key_padding_mask=None):
        a, w = self.mha(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask)
        return self.head(self.norm(x + a).mean(1)), w


def attention():
    """Four SGD steps of an attention block with a float causal mask, and four with bool causal and key
    padding masks, in f64 and f32; parameter j of the sorted names is filled with seed j, scale 0.5."""
    L = 5
    causal = torch.triu(torch.full((L, L), float("-inf")), diagonal=1)
    for tag, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        net = AttentionBlock(dtype)
        params = dict(net.named_parameters())
        with torch.no_grad():
            for j, name in enumerate(sorted(params)):
                params[name].copy_(filled(params[name].shape, float(j), 0.5))
        x, target = filled((2, L, 8), 10.0).to(dtype), filled((2, 3), 20.0).to(dtype)
        pad = torch.tensor([[False, False, False, True, True], [False] * L])
        out, w = net(x, key_padding_mask=pad)
        emit(tag + ".padded", out)
        emit(tag + ".padded_weights", w)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for step in range(4):
            opt.zero_grad()
            loss = ((net(x, attn_mask=causal.to(dtype))[0] - target) ** 2).mean()
            loss.backward()
            opt.step()
            emit("%s.loss%d" % (tag, step), loss)
        for name, p in net.named_parameters():
            emit(tag + "." + name, p)
        # Bool masks, both at once: a fresh block trained four steps with the key padding above and a causal
        # attn_mask (true = not allowed to attend).
        net = AttentionBlock(dtype)
        params = dict(net.named_parameters())
        with torch.no_grad():
            for j, name in enumerate(sorted(params)):
                params[name].copy_(filled(params[name].shape, float(j), 0.5))
        bool_causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
        emit(tag + ".bool.weights", net(x, attn_mask=bool_causal, key_padding_mask=pad)[1])
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for step in range(4):
            opt.zero_grad()
            loss = ((net(x, attn_mask=bool_causal, key_padding_mask=pad)[0] - target) ** 2).mean()
            loss.backward()
            opt.step()
            emit("%s.bool.loss%d" % (tag, step), loss)
        for name, p in net.named_parameters():
            emit(tag + ".bool." + name, p)


if __name__ == "__main__":
    {"layernorm": layernorm, "train": train, "attention": attention}[sys.argv[1]]()
