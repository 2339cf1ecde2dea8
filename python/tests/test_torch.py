"""PyTorch equality through the package: LayerNorm's values and gradients and a residual MLP's SGD steps in
float64, the same computations tests/nn/torch_layers.py runs for the C++ tests, here in one process."""
import numpy as np
import pytest

import backprop as bp

try:
    import torch
except ImportError:  # a missing reference fails the suite, as in the C++ tests (docs/testing.md)
    pytest.fail("PyTorch is missing: install python3-torch (scripts/install-deps)", pytrace=False)


def filled(shape, seed, scale=1.0):
    n = int(np.prod(shape))
    return scale * np.sin(0.37 * (np.arange(n) + 1) + seed).reshape(shape)


@pytest.mark.parametrize("shape, normalized", [((5, 4), (4,)), ((3, 2, 4), (2, 4))])
def test_layernorm_matches_torch(shape, normalized):
    ln = bp.nn.LayerNorm(list(normalized), dtype=bp.float64)
    with bp.no_grad():
        ln.weight.copy_(filled(normalized, 1.0))
        ln.bias.copy_(filled(normalized, 2.0))
    x = bp.tensor(filled(shape, 3.0), requires_grad=True)
    y = ln(x)
    (y * filled(shape, 4.0)).sum().backward()

    tln = torch.nn.LayerNorm(normalized, eps=1e-5).double()
    with torch.no_grad():
        tln.weight.copy_(torch.from_numpy(filled(normalized, 1.0)))
        tln.bias.copy_(torch.from_numpy(filled(normalized, 2.0)))
    tx = torch.from_numpy(filled(shape, 3.0)).requires_grad_()
    ty = tln(tx)
    (ty * torch.from_numpy(filled(shape, 4.0))).sum().backward()

    for ours, theirs in [(y, ty), (x.grad, tx.grad), (ln.weight.grad, tln.weight.grad), (ln.bias.grad, tln.bias.grad)]:
        np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=0, atol=1e-10)


def test_residual_mlp_sgd_matches_torch():
    def ours():
        net = bp.nn.Sequential(
            bp.nn.Linear(4, 6, dtype=bp.float64),
            bp.nn.Residual(bp.nn.Sequential(bp.nn.LayerNorm(6, dtype=bp.float64), bp.nn.Linear(6, 6, dtype=bp.float64),
                                            bp.nn.Tanh())),
            bp.nn.LayerNorm(6, dtype=bp.float64), bp.nn.Linear(6, 2, dtype=bp.float64))
        return net, [n for n, _ in net.named_parameters()]

    class Residual(torch.nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return x + self.block(x)

    nn = torch.nn
    tnet = nn.Sequential(nn.Linear(4, 6), Residual(nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 6), nn.Tanh())),
                         nn.LayerNorm(6), nn.Linear(6, 2)).double()
    net, names = ours()
    assert names == [n for n, _ in tnet.named_parameters()]
    with torch.no_grad(), bp.no_grad():
        for j, ((_, p), (_, tp)) in enumerate(zip(net.named_parameters(), tnet.named_parameters())):
            p.copy_(filled(tuple(p.shape), float(j), 0.5))
            tp.copy_(torch.from_numpy(filled(tuple(tp.shape), float(j), 0.5)))
    x, target = filled((8, 4), 10.0), filled((8, 2), 20.0)
    opt, topt = bp.optim.SGD(net, lr=0.1), torch.optim.SGD(tnet.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        loss = ((net(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = ((tnet(torch.from_numpy(x)) - torch.from_numpy(target)) ** 2).mean()
        tloss.backward()
        topt.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=0, abs=1e-10)
    for p, tp in zip(net.parameters(), tnet.parameters()):
        np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), rtol=0, atol=1e-10)
