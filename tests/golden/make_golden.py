#!/usr/bin/python3
"""Writes tests/golden/ops_golden.json: reference values computed by PyTorch, for golden_test.cpp.

For every op: fixed inputs, the output, the gradients of <v, op(inputs)> for a fixed v, and the second-order
term d/dx <u, d<v, op>/dx> (a Hessian-vector product) for a fixed u. The inputs, v and u are written into the
file, so the C++ side needs no agreement on random numbers and no Python at test time. A small network adds an
end-to-end case: logits, cross-entropy loss, every parameter gradient, a Hessian-vector product and a short
loss curve of plain gradient descent. A last case differentiates twice through torch.utils.checkpoint.

Run it from anywhere with Debian's python3-torch installed:  /usr/bin/python3 tests/golden/make_golden.py [OUT]
(OUT defaults to the committed ops_golden.json next to this script; regen_test.cpp writes elsewhere and compares.)
Everything is computed in float64.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611
rng = np.random.RandomState(SEED)
torch.set_default_dtype(torch.float64)


def draw(shape, lo=-1.0, hi=1.0, kinks=()):
    """Uniform values in [lo, hi), redrawn while closer than 0.05 to a kink (so no derivative is ambiguous)."""
    x = rng.uniform(lo, hi, size=shape)
    for _ in range(100):
        bad = np.zeros(x.shape, dtype=bool)
        for k in kinks:
            bad |= np.abs(x - k) < 0.05
        if not bad.any():
            break
        x[bad] = rng.uniform(lo, hi, size=int(bad.sum()))
    return x


def encode(t):
    if isinstance(t, torch.Tensor):
        t = t.detach()
        # A gradient PyTorch knows to be zero may be a storage-less "zero tensor": its numpy() view would show
        # whatever memory it points at.
        if t._is_zerotensor():
            t = torch.zeros(t.shape)
        a = t.numpy()
    else:
        a = np.asarray(t)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def mm(a, b, ta, tb):
    return (a.transpose(-1, -2) if ta else a) @ (b.transpose(-1, -2) if tb else b)


# name -> function of (list of input tensors, args dict). Names and args are the C++ test's vocabulary.
OPS = {
    "add": lambda x, a: x[0] + x[1],
    "sub": lambda x, a: x[0] - x[1],
    "mul": lambda x, a: x[0] * x[1],
    "div": lambda x, a: x[0] / x[1],
    "maximum": lambda x, a: torch.maximum(x[0], x[1]),
    "add_scalar": lambda x, a: x[0] + a["b"],
    "mul_scalar": lambda x, a: x[0] * a["b"],
    "rsub": lambda x, a: a["b"] - x[0],
    "rdiv": lambda x, a: a["b"] / x[0],
    "neg": lambda x, a: -x[0],
    "exp": lambda x, a: torch.exp(x[0]),
    "log": lambda x, a: torch.log(x[0]),
    "pow": lambda x, a: torch.pow(x[0], a["p"]),
    "sqrt": lambda x, a: torch.sqrt(x[0]),
    "abs": lambda x, a: torch.abs(x[0]),
    "clamp": lambda x, a: torch.clamp(x[0], a["lo"], a["hi"]),
    "sigmoid": lambda x, a: torch.sigmoid(x[0]),
    "tanh": lambda x, a: torch.tanh(x[0]),
    "relu": lambda x, a: torch.relu(x[0]),
    "leaky_relu": lambda x, a: F.leaky_relu(x[0], a["slope"]),
    "masked_scale": lambda x, a: x[0] * x[1] * a["scale"],
    "sum": lambda x, a: torch.sum(x[0]),
    "sum_axis": lambda x, a: torch.sum(x[0], dim=a["axis"], keepdim=a["keepdim"]),
    "mean": lambda x, a: torch.mean(x[0]),
    "mean_axis": lambda x, a: torch.mean(x[0], dim=a["axis"], keepdim=a["keepdim"]),
    "max_axis": lambda x, a: torch.max(x[0], dim=a["axis"], keepdim=a["keepdim"]).values,
    "sum_to": lambda x, a: x[0].sum_to_size(a["shape"]) if a["shape"] else x[0].sum(),
    "broadcast_to": lambda x, a: torch.broadcast_to(x[0], a["shape"]),
    "mm": lambda x, a: mm(x[0], x[1], a["ta"], a["tb"]),
    "linear": lambda x, a: F.linear(x[0], x[1], x[2] if len(x) > 2 else None),
    "transpose": lambda x, a: x[0].t(),
    "reshape": lambda x, a: x[0].reshape(a["shape"]),
    "narrow": lambda x, a: torch.narrow(x[0], 0, a["start"], a["length"]),
    "index_select": lambda x, a: torch.index_select(x[0], 0, torch.tensor(a["indices"])),
    "concat": lambda x, a: torch.cat(x, 0),
    "softmax": lambda x, a: torch.softmax(x[0], a["axis"]),
    "log_softmax": lambda x, a: torch.log_softmax(x[0], a["axis"]),
    "sum_dims": lambda x, a: torch.sum(x[0], dim=a["dims"], keepdim=a["keepdim"]),
    "mean_dims": lambda x, a: torch.mean(x[0], dim=a["dims"], keepdim=a["keepdim"]),
    "amax": lambda x, a: torch.amax(x[0], dim=a["dims"], keepdim=a["keepdim"]),
    "amin": lambda x, a: torch.amin(x[0], dim=a["dims"], keepdim=a["keepdim"]),
    "logsumexp": lambda x, a: torch.logsumexp(x[0], dim=a["dims"], keepdim=a["keepdim"]),
    "var": lambda x, a: torch.var(x[0], dim=a["dims"] or None, correction=a["correction"], keepdim=a["keepdim"]),
    "std": lambda x, a: torch.std(x[0], dim=a["dims"] or None, correction=a["correction"], keepdim=a["keepdim"]),
    "norm": lambda x, a: torch.linalg.vector_norm(x[0], ord=float(a["p"]), dim=a["dims"] or None, keepdim=a["keepdim"]),
    "max_dim": lambda x, a: torch.max(x[0], dim=a["dim"], keepdim=a["keepdim"]).values,
    "min_dim": lambda x, a: torch.min(x[0], dim=a["dim"], keepdim=a["keepdim"]).values,
    "topk": lambda x, a: torch.topk(x[0], a["k"], dim=a["dim"], largest=a["largest"]).values,
}


def case(op, inputs, args=None, constant=()):
    """inputs: list of numpy arrays; constant: indices of inputs that take no gradient."""
    args = args or {}
    xs = [torch.tensor(v, requires_grad=i not in constant) for i, v in enumerate(inputs)]
    y = OPS[op](xs, args)
    v = torch.tensor(rng.standard_normal(tuple(y.shape)))
    wrt = [x for x in xs if x.requires_grad]
    g = torch.autograd.grad((y * v).sum(), wrt, create_graph=True, allow_unused=True)
    us = [torch.tensor(rng.standard_normal(tuple(x.shape))) for x in wrt]
    s = sum(((gi * ui).sum() for gi, ui in zip(g, us) if gi is not None and gi.requires_grad), torch.zeros(()))
    h = torch.autograd.grad(s, wrt, allow_unused=True) if s.requires_grad else [None] * len(wrt)
    grads, hvps, u_out = [], [], []
    k = 0
    for x in xs:
        if not x.requires_grad:
            grads.append(None)
            hvps.append(None)
            u_out.append(None)
            continue
        gi = g[k] if g[k] is not None else torch.zeros_like(x)
        hi = h[k] if h[k] is not None else torch.zeros_like(x)
        grads.append(encode(gi))
        hvps.append(encode(hi))
        u_out.append(encode(us[k]))
        k += 1
    return {
        "op": op,
        "args": args,
        "inputs": [encode(x) for x in xs],
        "requires_grad": [x.requires_grad for x in xs],
        "output": encode(y),
        "v": encode(v),
        "grads": grads,
        "u": u_out,
        "hvp": hvps,
    }


def op_cases():
    c = []
    for op in ("add", "sub", "mul"):
        for sa, sb in (((2, 3), (2, 3)), ((3, 1, 4), (2, 1)), ((), (2, 3)), ((4, 1), (1, 3)), ((2, 3), (3,))):
            c.append(case(op, [draw(sa), draw(sb)]))
    for sa, sb in (((2, 3), (2, 3)), ((3, 1, 4), (2, 1)), ((2, 3), ())):
        c.append(case("div", [draw(sa), draw(sb, 0.5, 2.0)]))
    c.append(case("maximum", [draw((3, 4)), draw((3, 4))]))
    c.append(case("maximum", [draw((3, 1)), draw((1, 4))]))
    c.append(case("add_scalar", [draw((2, 3))], {"b": 1.5}))
    c.append(case("mul_scalar", [draw((2, 3))], {"b": -2.5}))
    c.append(case("rsub", [draw((2, 3))], {"b": 2.0}))
    c.append(case("rdiv", [draw((2, 3), 0.5, 2.0)], {"b": 3.0}))
    c.append(case("neg", [draw((2, 3))]))
    c.append(case("exp", [draw((2, 3))]))
    c.append(case("log", [draw((2, 3), 0.2, 2.0)]))
    for p, lo in ((3.0, -1.0), (2.0, -1.0), (0.5, 0.2), (-1.5, 0.3)):
        c.append(case("pow", [draw((2, 3), lo, 2.0 if lo > 0 else 1.0)], {"p": p}))
    c.append(case("sqrt", [draw((2, 3), 0.2, 2.0)]))
    c.append(case("abs", [draw((2, 3), kinks=(0.0,))]))
    c.append(case("clamp", [draw((3, 4), kinks=(-0.5, 0.5))], {"lo": -0.5, "hi": 0.5}))
    c.append(case("sigmoid", [draw((2, 3), -3.0, 3.0)]))
    c.append(case("tanh", [draw((2, 3), -2.0, 2.0)]))
    c.append(case("relu", [draw((3, 4), kinks=(0.0,))]))
    c.append(case("leaky_relu", [draw((3, 4), kinks=(0.0,))], {"slope": 0.1}))
    mask = (rng.uniform(size=(3, 4)) < 0.6).astype(np.float64)
    c.append(case("masked_scale", [draw((3, 4)), mask], {"scale": 1.25}, constant=(1,)))
    c.append(case("sum", [draw((3, 4))]))
    for axis, keepdim, shape in ((0, False, (3, 4)), (-1, True, (2, 3, 4)), (1, False, (2, 3, 4))):
        c.append(case("sum_axis", [draw(shape)], {"axis": axis, "keepdim": keepdim}))
    c.append(case("mean", [draw((3, 4))]))
    for axis, keepdim in ((1, False), (0, True)):
        c.append(case("mean_axis", [draw((3, 4))], {"axis": axis, "keepdim": keepdim}))
    for axis, keepdim, shape in ((1, False, (3, 4)), (0, True, (3, 4)), (1, False, (2, 3, 4))):
        c.append(case("max_axis", [draw(shape)], {"axis": axis, "keepdim": keepdim}))
    c.append(case("sum_to", [draw((2, 3, 4))], {"shape": [3, 1]}))
    c.append(case("sum_to", [draw((2, 3))], {"shape": []}))
    c.append(case("broadcast_to", [draw((3, 1))], {"shape": [2, 3, 4]}))
    for ta in (False, True):
        for tb in (False, True):
            sa = (4, 3) if ta else (3, 4)
            sb = (2, 4) if tb else (4, 2)
            c.append(case("mm", [draw(sa), draw(sb)], {"ta": ta, "tb": tb}))
            c.append(case("mm", [draw((2,) + sa), draw((2,) + sb)], {"ta": ta, "tb": tb}))
    c.append(case("linear", [draw((4, 3)), draw((2, 3)), draw((2,))]))
    c.append(case("linear", [draw((4, 3)), draw((2, 3))]))
    c.append(case("transpose", [draw((3, 4))]))
    c.append(case("reshape", [draw((2, 6))], {"shape": [3, 4]}))
    c.append(case("narrow", [draw((4, 3))], {"start": 1, "length": 2}))
    c.append(case("index_select", [draw((4, 3))], {"indices": [2, 0, 2, 3]}))
    c.append(case("concat", [draw((2, 3)), draw((1, 3)), draw((3, 3))]))
    for op in ("softmax", "log_softmax"):
        for axis, shape in ((-1, (3, 4)), (0, (3, 4)), (1, (2, 3, 2))):
            c.append(case(op, [draw(shape, -2.0, 2.0)], {"axis": axis}))
    # Reductions over a set of dims ([] is every dim), max/min/topk on any dim, softmax on any dim.
    for dims, keepdim in (([0, 2], False), ([-1, 1], True), ([], False)):
        c.append(case("sum_dims", [draw((2, 3, 4))], {"dims": dims, "keepdim": keepdim}))
    c.append(case("mean_dims", [draw((2, 3, 4))], {"dims": [1, 2], "keepdim": False}))
    for op in ("amax", "amin"):
        for dims, keepdim in (([0, 2], False), ([1], True), ([], False)):
            c.append(case(op, [draw((2, 3, 4))], {"dims": dims, "keepdim": keepdim}))
    for dims, keepdim in (([1], False), ([0, 2], True)):
        c.append(case("logsumexp", [draw((2, 3, 4), -2.0, 2.0)], {"dims": dims, "keepdim": keepdim}))
    for op in ("var", "std"):
        for dims, correction, keepdim in (([0], 1, False), ([], 0, False), ([1, 2], 1, True)):
            c.append(case(op, [draw((2, 3, 4))], {"dims": dims, "correction": correction, "keepdim": keepdim}))
    for p, dims in ((2.0, []), (2.0, [-1]), (1.0, [0]), ("inf", [0, 2]), (3.0, [1])):  # JSON has no inf
        c.append(case("norm", [draw((2, 3, 4), kinks=(0.0,))], {"p": p, "dims": dims, "keepdim": False}))
    for op in ("max_dim", "min_dim"):
        for dim, keepdim in ((0, False), (1, True), (-1, False)):
            c.append(case(op, [draw((2, 3, 4))], {"dim": dim, "keepdim": keepdim}))
    for k, dim, largest in ((2, -1, True), (2, 0, False), (3, 1, True)):
        c.append(case("topk", [draw((4, 5, 3))], {"k": k, "dim": dim, "largest": largest}))
    for op in ("softmax", "log_softmax"):
        c.append(case(op, [draw((3, 2, 2, 2), -2.0, 2.0)], {"axis": 0}))
        c.append(case(op, [draw((2, 4, 3), -2.0, 2.0)], {"axis": -2}))
    return c


SHAPE_OPS = {
    "permute": lambda x, a: x[0].permute(a["dims"]),
    "transpose_dims": lambda x, a: torch.transpose(x[0], a["d0"], a["d1"]),
    "squeeze": lambda x, a: torch.squeeze(x[0], a["dim"]) if "dim" in a else torch.squeeze(x[0]),
    "unsqueeze": lambda x, a: torch.unsqueeze(x[0], a["dim"]),
    "flatten": lambda x, a: torch.flatten(x[0], a["start"], a["end"]),
    "unflatten": lambda x, a: torch.unflatten(x[0], a["dim"], a["sizes"]),
    "narrow_dim": lambda x, a: torch.narrow(x[0], a["dim"], a["start"], a["length"]),
    "slice": lambda x, a: x[0][(slice(None),) * a["dim"] + (slice(a["start"], a["end"], a["step"]),)],
    "expand": lambda x, a: x[0].expand(a["shape"]),
    "cat": lambda x, a: torch.cat(x, a["dim"]),
    "stack": lambda x, a: torch.stack(x, a["dim"]),
    "split": lambda x, a: torch.split(x[0], a["size"], a["dim"])[a["piece"]],
    "chunk": lambda x, a: torch.chunk(x[0], a["chunks"], a["dim"])[a["piece"]],
    "index_select_dim": lambda x, a: torch.index_select(x[0], a["dim"], torch.tensor(a["index"])),
    "index_add": lambda x, a: torch.index_add(x[0], a["dim"], torch.tensor(a["index"]), x[1]),
    "gather": lambda x, a: torch.gather(x[0], a["dim"], torch.tensor(a["index"])),
    "scatter_add": lambda x, a: torch.scatter_add(x[0], a["dim"], torch.tensor(a["index"]), x[1]),
    "tril": lambda x, a: torch.tril(x[0], a["k"]),
    "triu": lambda x, a: torch.triu(x[0], a["k"]),
    "pad": lambda x, a: F.pad(x[0], a["pads"], mode=a["mode"], value=a["value"]) if a["mode"] == "constant"
    else F.pad(x[0], a["pads"], mode=a["mode"]),
}
OPS.update(SHAPE_OPS)


def shape_cases():
    """Shape and indexing ops on any dim, drawn from their own generator so earlier cases keep their values."""
    global rng
    saved, rng = rng, np.random.RandomState(SEED + 15)
    c = []
    c.append(case("permute", [draw((2, 3, 2, 2))], {"dims": [2, 0, 3, 1]}))
    c.append(case("permute", [draw((2, 3, 4))], {"dims": [-1, 0, 1]}))
    c.append(case("transpose_dims", [draw((2, 3, 4))], {"d0": 0, "d1": -1}))
    c.append(case("squeeze", [draw((2, 1, 3, 1))], {}))
    c.append(case("squeeze", [draw((2, 1, 3))], {"dim": 1}))
    c.append(case("unsqueeze", [draw((2, 3))], {"dim": -1}))
    c.append(case("flatten", [draw((2, 3, 2, 2))], {"start": 1, "end": 2}))
    c.append(case("unflatten", [draw((2, 6))], {"dim": 1, "sizes": [3, -1]}))
    c.append(case("narrow_dim", [draw((2, 3, 4))], {"dim": -1, "start": 1, "length": 2}))
    c.append(case("slice", [draw((2, 5, 2))], {"dim": 1, "start": 0, "end": 5, "step": 2}))
    c.append(case("slice", [draw((3, 6))], {"dim": 1, "start": -4, "end": 100, "step": 3}))
    c.append(case("expand", [draw((4, 1))], {"shape": [2, -1, 3]}))
    c.append(case("cat", [draw((2, 1, 3)), draw((2, 2, 3))], {"dim": 1}))
    c.append(case("cat", [draw((2, 3)), draw((2, 1))], {"dim": -1}))
    c.append(case("stack", [draw((2, 3)), draw((2, 3)), draw((2, 3))], {"dim": -1}))
    c.append(case("stack", [draw((2, 3)), draw((2, 3))], {"dim": 0}))
    c.append(case("split", [draw((4, 5))], {"size": 2, "dim": 1, "piece": 2}))
    c.append(case("split", [draw((2, 4))], {"size": [1, 3], "dim": -1, "piece": 1}))
    c.append(case("chunk", [draw((5, 2))], {"chunks": 2, "dim": 0, "piece": 1}))
    c.append(case("index_select_dim", [draw((2, 4, 2))], {"dim": 1, "index": [3, 0, 3]}))
    c.append(case("index_select_dim", [draw((3, 2))], {"dim": 0, "index": [2, 2]}))
    c.append(case("index_add", [draw((2, 4)), draw((2, 3))], {"dim": 1, "index": [2, 0, 2]}))
    c.append(case("gather", [draw((2, 3))], {"dim": 1, "index": [[0, 2, 2], [1, 1, 0]]}))
    c.append(case("gather", [draw((3, 2, 2))], {"dim": 0, "index": [[[2, 0]], [[1, 1]]]}))
    c.append(case("scatter_add", [draw((2, 3)), draw((2, 2))], {"dim": 1, "index": [[0, 2], [2, 1]]}))
    c.append(case("scatter_add", [draw((2, 3)), draw((1, 3))], {"dim": 0, "index": [[1, 0, 1]]}))
    c.append(case("tril", [draw((2, 3, 4))], {"k": 0}))
    c.append(case("tril", [draw((4, 3))], {"k": -1}))
    c.append(case("triu", [draw((3, 4))], {"k": 1}))
    c.append(case("pad", [draw((2, 2, 3))], {"pads": [1, 2, 0, 1], "mode": "constant", "value": 0.5}))
    c.append(case("pad", [draw((2, 3))], {"pads": [-1, 1], "mode": "constant", "value": 0.0}))
    c.append(case("pad", [draw((1, 2, 5))], {"pads": [2, 3], "mode": "reflect", "value": 0.0}))
    c.append(case("pad", [draw((1, 2, 3, 4))], {"pads": [2, 1, 1, 2], "mode": "reflect", "value": 0.0}))
    rng = saved
    return c


def clamp_tensor(x, a):
    """torch.clamp with tensor bounds: the inputs are x, then min if a["min"], then max if a["max"]."""
    rest = list(x[1:])
    lo = rest.pop(0) if a["min"] else None
    hi = rest.pop(0) if a["max"] else None
    return torch.clamp(x[0], min=lo, max=hi)


OPS2 = {
    "where": lambda x, a: torch.where(x[0] != 0, x[1], x[2]),
    "masked_fill": lambda x, a: x[0].masked_fill(x[1] != 0, a["value"]),
    "clamp_tensor": clamp_tensor,
    "matmul": lambda x, a: torch.matmul(x[0], x[1]),
    "bmm": lambda x, a: torch.bmm(x[0], x[1]),
    "einsum": lambda x, a: torch.einsum(a["equation"], *x),
}
OPS.update(OPS2)


def ops2_cases():
    """where, masked_fill, clamp with tensor bounds, broadcasting matmul, bmm and einsum, from their own generator."""
    global rng
    saved, rng = rng, np.random.RandomState(SEED + 23)
    c = []
    cond = lambda shape: rng.choice([0.0, 1.0, -2.5], size=shape)  # any non-zero value counts as true
    c.append(case("where", [cond((3, 1)), draw((3, 4)), draw((4,))], constant=(0,)))
    c.append(case("where", [cond((2, 3)), draw((2, 3)), draw(())], constant=(0,)))
    c.append(case("masked_fill", [draw((3, 4)), cond((1, 4))], {"value": -2.0}, constant=(1,)))
    c.append(case("masked_fill", [draw((2, 2, 3)), cond((2, 1, 3))], {"value": 0.5}, constant=(1,)))
    bounds = (-0.3, -0.25, -0.2, 0.2, 0.25, 0.3)
    c.append(case("clamp_tensor", [draw((3, 4), kinks=bounds), draw((4,), -0.3, -0.2), draw((3, 1), 0.2, 0.3)],
                  {"min": True, "max": True}))
    c.append(case("clamp_tensor", [draw((2, 3), kinks=bounds), draw((3,), -0.3, -0.2)], {"min": True, "max": False}))
    c.append(case("clamp_tensor", [draw((2, 3), kinks=bounds), draw((2, 1), 0.2, 0.3)], {"min": False, "max": True}))
    c.append(case("clamp_tensor", [draw((2, 3)), draw((3,), 0.5, 0.7), draw((), -0.2, 0.0)],
                  {"min": True, "max": True}))
    for sa, sb in (((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 4), (4, 2)), ((3, 4), (2, 4, 2)), ((4,), (4,)), ((4,), (4, 3)),
                   ((3, 4), (4,)), ((4,), (2, 4, 3)), ((2, 1, 3, 4), (4,)), ((3, 4), (4, 2))):
        c.append(case("matmul", [draw(sa), draw(sb)]))
    c.append(case("bmm", [draw((2, 3, 4)), draw((2, 4, 2))]))
    for eq, shapes in (("bij,bjk->bik", ((2, 3, 4), (2, 4, 2))),
                       ("bhqd,bhkd->bhqk", ((2, 2, 3, 4), (2, 2, 2, 4))),
                       ("bhqk,bhkd->bhqd", ((2, 2, 3, 2), (2, 2, 2, 4))),
                       ("bi,ij,bj->b", ((3, 4), (4, 2), (3, 2))),
                       ("ij->ji", ((2, 3),)),
                       ("ij->i", ((3, 4),)),
                       ("...ij,...jk->...ik", ((2, 1, 3, 4), (3, 4, 2))),
                       ("ij,jk", ((3, 4), (4, 2))),
                       ("i,j->ij", ((3,), (2,))),
                       ("i,i->", ((3,), (3,))),
                       ("bqd,kd->bkq", ((2, 3, 4), (2, 4)))):
        c.append(case("einsum", [draw(s) for s in shapes], {"equation": eq}))
    rng = saved
    return c


EMBEDDING_OPS = {
    "embedding": lambda x, a: F.embedding(torch.tensor(a["indices"]), x[0], padding_idx=a["padding_idx"]),
}
OPS.update(EMBEDDING_OPS)


def embedding_cases():
    """embedding, with and without padding_idx (its row gets no gradient), from their own generator."""
    global rng
    saved, rng = rng, np.random.RandomState(SEED + 24)
    c = []
    c.append(case("embedding", [draw((5, 3))], {"indices": [[2, 0, 4], [4, 4, 1]], "padding_idx": None}))
    c.append(case("embedding", [draw((4, 2))], {"indices": [1, 3, 1, 0], "padding_idx": 1}))
    c.append(case("embedding", [draw((4, 3))], {"indices": [[[3], [0]], [[2], [3]]], "padding_idx": -1}))
    rng = saved
    return c


def mlp_case():
    """A 4-5-3 sigmoid network with a cross-entropy cost on 8 examples: the delta rule end to end."""
    x = torch.tensor(rng.standard_normal((8, 4)))
    labels = rng.randint(0, 3, size=8)
    params = [torch.tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in ((5, 4), (5,), (3, 5), (3,))]
    direction = [torch.tensor(rng.standard_normal(tuple(p.shape))) for p in params]
    initial = [encode(p) for p in params]

    def loss_of(p):
        h = torch.sigmoid(F.linear(x, p[0], p[1]))
        logits = F.linear(h, p[2], p[3])
        return logits, F.cross_entropy(logits, torch.tensor(labels))

    logits, loss = loss_of(params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gv = sum((g * d).sum() for g, d in zip(grads, direction))
    hvp = torch.autograd.grad(gv, params)
    lr, curve = 0.5, []
    with torch.no_grad():
        p = [q.detach().clone() for q in params]
    for _ in range(5):
        for q in p:
            q.requires_grad_(True)
        _, l = loss_of(p)
        g = torch.autograd.grad(l, p)
        curve.append(float(l))
        with torch.no_grad():
            p = [q - lr * gq for q, gq in zip(p, g)]
    return {
        "x": encode(x),
        "labels": [int(v) for v in labels],
        "params": initial,
        "direction": [encode(d) for d in direction],
        "logits": encode(logits),
        "loss": float(loss),
        "grads": [encode(g) for g in grads],
        "hvp": [encode(h) for h in hvp],
        "learning_rate": lr,
        "loss_curve": curve,
    }


def checkpoint_case():
    """Second derivatives through a checkpointed segment tanh(W2 tanh(W1 h + b1) + b2) whose weights are captured
    by the checkpointed function, after a plain layer h = tanh(W0 x); the segment's output is used twice. PyTorch's
    non-reentrant checkpoint must agree with the same function called plainly."""
    from torch.utils.checkpoint import checkpoint

    x = torch.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    shapes = ((4, 4), (5, 4), (5,), (4, 5), (4,))
    params = [torch.tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in shapes]
    wrt = [x] + params
    direction = [torch.tensor(rng.standard_normal(tuple(t.shape))) for t in wrt]

    def segment(h):
        return torch.tanh(F.linear(torch.tanh(F.linear(h, params[1], params[2])), params[3], params[4]))

    def loss_of(use_checkpoint):
        h = torch.tanh(F.linear(x, params[0]))
        y = checkpoint(segment, h, use_reentrant=False) if use_checkpoint else segment(h)
        return (y * y).sum() + torch.exp(y).mean()

    results = []
    for use_checkpoint in (True, False):
        loss = loss_of(use_checkpoint)
        grads = torch.autograd.grad(loss, wrt, create_graph=True)
        gv = sum((g * d).sum() for g, d in zip(grads, direction))
        hvp = torch.autograd.grad(gv, wrt)
        results.append((loss, grads, hvp))
    (loss, grads, hvp), (_, plain_grads, plain_hvp) = results
    for a, b in zip(list(grads) + list(hvp), list(plain_grads) + list(plain_hvp)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12), "PyTorch's checkpoint disagrees with the plain function"
    return {
        "x": encode(x),
        "params": [encode(p) for p in params],
        "direction": [encode(d) for d in direction],
        "loss": float(loss),
        "grads": [encode(g) for g in grads],
        "hvp": [encode(h) for h in hvp],
    }


CONV_OPS = {
    "conv2d": lambda x, a: F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, a["stride"], a["padding"],
                                    a["dilation"], a["groups"]),
    "conv1d": lambda x, a: F.conv1d(x[0], x[1], x[2] if len(x) > 2 else None, a["stride"], a["padding"],
                                    a["dilation"], a["groups"]),
    "conv_transpose2d": lambda x, a: F.conv_transpose2d(x[0], x[1], x[2] if len(x) > 2 else None, a["stride"],
                                                        a["padding"], a["output_padding"], a["groups"],
                                                        a["dilation"]),
    "max_pool2d": lambda x, a: F.max_pool2d(x[0], a["kernel"], a["stride"], a["padding"], a["dilation"],
                                            a["ceil_mode"]),
    "avg_pool2d": lambda x, a: F.avg_pool2d(x[0], a["kernel"], a["stride"], a["padding"], a["ceil_mode"],
                                            a["count_include_pad"]),
    "adaptive_avg_pool2d": lambda x, a: F.adaptive_avg_pool2d(x[0], a["output_size"]),
}
OPS.update(CONV_OPS)


def conv_cases():
    """Convolution and pooling with every option, from their own generator so earlier cases keep their values."""
    global rng
    saved, rng = rng, np.random.RandomState(SEED + 16)
    c = []

    def conv(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        ins = [draw(x), draw(w)] + ([draw(b)] if b else [])
        return case("conv2d", ins, {"stride": list(stride), "padding": padding if isinstance(padding, str)
                                    else list(padding), "dilation": list(dilation), "groups": groups})

    c.append(conv((2, 3, 5, 5), (4, 3, 3, 3), (4,)))
    c.append(conv((1, 2, 6, 5), (3, 2, 3, 2), (3,), stride=(2, 1), padding=(1, 2)))
    c.append(conv((1, 2, 7, 7), (2, 2, 3, 3), dilation=(2, 2), padding=(2, 1)))
    c.append(conv((2, 4, 5, 4), (6, 2, 3, 3), (6,), groups=2, stride=(2, 2), padding=(1, 1)))
    c.append(conv((1, 3, 5, 5), (3, 1, 3, 3), (3,), groups=3, padding=(1, 1)))  # depthwise
    c.append(conv((1, 2, 5, 6), (3, 2, 4, 3), (3,), padding="same"))  # even kernel: extra pad at the end
    c.append(conv((2, 3, 4, 4), (2, 3, 1, 1), (2,)))  # pointwise
    c.append(case("conv1d", [draw((2, 3, 7)), draw((4, 3, 3)), draw((4,))],
                  {"stride": 2, "padding": 1, "dilation": 1, "groups": 1}))
    c.append(case("conv1d", [draw((1, 4, 6)), draw((4, 2, 2))],
                  {"stride": 1, "padding": "same", "dilation": 2, "groups": 2}))
    c.append(case("conv_transpose2d", [draw((2, 3, 3, 3)), draw((3, 2, 3, 3)), draw((2,))],
                  {"stride": [2, 2], "padding": [1, 1], "output_padding": [1, 0], "groups": 1, "dilation": [1, 1]}))
    c.append(case("conv_transpose2d", [draw((1, 4, 3, 2)), draw((4, 1, 2, 3))],
                  {"stride": [1, 2], "padding": [0, 1], "output_padding": [0, 1], "groups": 2, "dilation": [2, 1]}))
    pool = {"stride": [2, 2], "padding": [0, 0], "dilation": [1, 1], "ceil_mode": False}
    c.append(case("max_pool2d", [draw((2, 2, 4, 4))], dict(pool, kernel=[2, 2])))
    c.append(case("max_pool2d", [draw((1, 2, 5, 5))], dict(pool, kernel=[3, 3], padding=[1, 1], ceil_mode=True)))
    c.append(case("max_pool2d", [draw((1, 1, 7, 6))], dict(pool, kernel=[2, 3], stride=[1, 2], dilation=[2, 1])))
    avg = {"stride": [2, 2], "padding": [0, 0], "ceil_mode": False, "count_include_pad": True}
    c.append(case("avg_pool2d", [draw((2, 2, 4, 4))], dict(avg, kernel=[2, 2])))
    c.append(case("avg_pool2d", [draw((1, 2, 5, 5))], dict(avg, kernel=[3, 3], padding=[1, 1], ceil_mode=True)))
    c.append(case("avg_pool2d", [draw((1, 1, 5, 6))], dict(avg, kernel=[3, 2], stride=[1, 2], padding=[1, 1],
                                                           count_include_pad=False)))
    c.append(case("adaptive_avg_pool2d", [draw((2, 2, 5, 7))], {"output_size": [3, 2]}))
    c.append(case("adaptive_avg_pool2d", [draw((1, 3, 4, 4))], {"output_size": [1, 1]}))
    rng = saved
    return c


def main():
    golden = {
        "about": "Reference values from PyTorch for golden_test.cpp; regenerate with tests/golden/make_golden.py",
        "torch_version": torch.__version__,
        "seed": SEED,
        "cases": op_cases(),
        "mlp": mlp_case(),
        "checkpoint": checkpoint_case(),
    }
    golden["cases"] += shape_cases()
    golden["cases"] += conv_cases()
    golden["cases"] += ops2_cases()
    golden["cases"] += embedding_cases()
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_golden.json")
    with open(path, "w") as f:
        json.dump(golden, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(golden['cases'])} op cases, the network case and the checkpoint case to {path}")


if __name__ == "__main__":
    main()
