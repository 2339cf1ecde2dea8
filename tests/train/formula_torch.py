#!/usr/bin/python3
"""One full-batch SGD update of a 3-4-2 tanh network in PyTorch, for formula_test.cpp.

Usage: formula_torch.py IN.json
IN.json holds x [N, 3], y [N], the initial parameters w1 [4, 3], b1 [4], w2 [2, 4], b2 [2], lr, and cases, each
{l1, l2, clip}. For each case: cost = cross_entropy(net(x), y) + l1 * sum |W| + l2 * 1/2 sum W^2 (weights only),
backward, torch.nn.utils.clip_grad_norm_(all parameters, clip) when clip > 0, one torch.optim.SGD step. Prints
one JSON object: {"cases": [{"w1", "b1", "w2", "b2" (after the step), "grad_norms": [||dW1||, ||dW2||]}]}.
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    x = torch.tensor(spec["x"])
    y = torch.tensor(spec["y"], dtype=torch.long)
    out = []
    for case in spec["cases"]:
        p = {k: torch.tensor(spec[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")}
        opt = torch.optim.SGD(list(p.values()), lr=spec["lr"])
        opt.zero_grad()
        logits = F.linear(torch.tanh(F.linear(x, p["w1"], p["b1"])), p["w2"], p["b2"])
        cost = F.cross_entropy(logits, y)
        for w in (p["w1"], p["w2"]):
            cost = cost + case["l1"] * w.abs().sum() + case["l2"] * 0.5 * (w * w).sum()
        cost.backward()
        if case["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(p.values()), case["clip"])
        norms = [float(p["w1"].grad.norm()), float(p["w2"].grad.norm())]
        opt.step()
        result = {k: v.detach().tolist() for k, v in p.items()}
        result["grad_norms"] = norms
        out.append(result)
    print(json.dumps({"torch_version": torch.__version__, "cases": out}))


if __name__ == "__main__":
    main()
