"""The convolution, pooling, normalisation, embedding and attention layers of backprop.nn (and the functional
ops under them) against PyTorch's, in float64: outputs and the gradients of the input and of every parameter
for several option combinations, with the same parameters copied into both."""
import gc

import numpy as np
import pytest

import backprop as bp

try:
    import torch
except ImportError:  # a missing reference fails the suite, as in the C++ tests (docs/testing.md)
    pytest.fail("PyTorch is missing: install python3-torch (scripts/install-deps)", pytrace=False)

tnn = torch.nn
F = torch.nn.functional
ATOL = 1e-10


def filled(shape, seed, scale=1.0):
    """Distinct, deterministic values (no ties for max pooling)."""
    n = int(np.prod(shape))
    return scale * np.sin(0.37 * (np.arange(n) + 1) + seed).reshape(shape) + 1e-3 * np.arange(n).reshape(shape) / n


def same_parameters(ours, theirs):
    """Gives both modules the same parameter values (PyTorch's names must be ours)."""
    tparams = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tparams)
    with torch.no_grad(), bp.no_grad():
        for j, (name, p) in enumerate(ours.named_parameters()):
            value = filled(tuple(p.shape), 10.0 + j, 0.5)
            p.copy_(value)
            tparams[name].copy_(torch.from_numpy(value))


def assert_close(ours, theirs, what):
    assert ours is not None and theirs is not None, what
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=0, atol=ATOL, err_msg=what)


def check(ours, theirs, x_shape, copy=True):
    """Forward and backward of one input through both; compares output, input gradient, parameter gradients."""
    theirs = theirs.double()
    if copy:
        same_parameters(ours, theirs)
    x = bp.tensor(filled(x_shape, 1.0), dtype=bp.float64, requires_grad=True)
    tx = torch.from_numpy(filled(x_shape, 1.0)).requires_grad_()
    y, ty = ours(x), theirs(tx)
    assert tuple(y.shape) == tuple(ty.shape)
    weights = filled(tuple(ty.shape), 2.0)
    (y * weights).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert_close(y, ty, "output")
    assert_close(x.grad, tx.grad, "input gradient")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"gradient of {name}")
    return y


F64 = {"dtype": bp.float64}


@pytest.mark.parametrize("args, kwargs, x_shape", [
    ((3, 4, 3), {}, (2, 3, 7, 6)),
    ((4, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}, (2, 4, 9, 8)),
    ((2, 3, 4), {"padding": "same", "dilation": 2, "bias": False}, (1, 2, 9, 7)),
    ((2, 2, 3), {"padding": "valid", "stride": 2}, (3, 2, 8, 8)),
])
def test_conv2d_matches_torch(args, kwargs, x_shape):
    check(bp.nn.Conv2d(*args, **kwargs, **F64), tnn.Conv2d(*args, **kwargs), x_shape)


@pytest.mark.parametrize("args, kwargs, x_shape", [
    ((3, 4, 3), {"padding": 1}, (2, 3, 10)),
    ((4, 4, (5,)), {"stride": 2, "groups": 4, "padding": "valid"}, (2, 4, 13)),
    ((2, 3, 4), {"padding": "same", "dilation": (2,), "bias": False}, (3, 2, 11)),
])
def test_conv1d_matches_torch(args, kwargs, x_shape):
    check(bp.nn.Conv1d(*args, **kwargs, **F64), tnn.Conv1d(*args, **kwargs), x_shape)


@pytest.mark.parametrize("args, kwargs, x_shape", [
    ((4, 2, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 4, 5, 4)),
    ((4, 6, (2, 3)), {"groups": 2, "dilation": 2}, (1, 4, 3, 5)),
    ((3, 2, 2), {"stride": (2, 1), "bias": False}, (2, 3, 4, 4)),
])
def test_conv_transpose2d_matches_torch(args, kwargs, x_shape):
    check(bp.nn.ConvTranspose2d(*args, **kwargs, **F64), tnn.ConvTranspose2d(*args, **kwargs), x_shape)


@pytest.mark.parametrize("kwargs, x_shape", [
    ({"kernel_size": 2}, (2, 3, 8, 6)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 2, 8, 7)),
    ({"kernel_size": (2, 3), "stride": (1, 2), "dilation": 2}, (1, 2, 9, 9)),
])
def test_max_pool2d_matches_torch(kwargs, x_shape):
    check(bp.nn.MaxPool2d(**kwargs), tnn.MaxPool2d(**kwargs), x_shape)
    x = filled(x_shape, 3.0)
    values, indices = bp.max_pool2d(bp.tensor(x, dtype=bp.float64), **kwargs, return_indices=True)
    tvalues, tindices = F.max_pool2d(torch.from_numpy(x), **kwargs, return_indices=True)
    assert indices.dtype == bp.int64
    np.testing.assert_array_equal(np.asarray(indices), tindices.numpy())
    np.testing.assert_array_equal(np.asarray(values), tvalues.numpy())


@pytest.mark.parametrize("kwargs, x_shape", [
    ({"kernel_size": 2}, (2, 3, 8, 6)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}, (2, 2, 8, 7)),
    ({"kernel_size": (2, 3), "stride": 1, "padding": (1, 1)}, (1, 2, 5, 6)),
])
def test_avg_pool2d_matches_torch(kwargs, x_shape):
    check(bp.nn.AvgPool2d(**kwargs), tnn.AvgPool2d(**kwargs), x_shape)


@pytest.mark.parametrize("size, x_shape", [(1, (2, 3, 7, 5)), ((3, 2), (2, 2, 7, 5)), (4, (1, 2, 8, 8))])
def test_adaptive_avg_pool2d_matches_torch(size, x_shape):
    check(bp.nn.AdaptiveAvgPool2d(size), tnn.AdaptiveAvgPool2d(size), x_shape)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_matches_torch_in_training_and_eval(affine):
    ours = bp.nn.BatchNorm2d(3, momentum=0.2, affine=affine, **F64)
    theirs = tnn.BatchNorm2d(3, momentum=0.2, affine=affine)
    for _ in range(2):  # two steps move the running statistics
        check(ours, theirs, (4, 3, 5, 6))
    assert ours.num_batches_tracked == theirs.num_batches_tracked.item() == 2
    np.testing.assert_allclose(np.asarray(ours.running_mean), theirs.running_mean.numpy(), rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.asarray(ours.running_var), theirs.running_var.numpy(), rtol=0, atol=ATOL)
    ours.eval()
    theirs.eval()
    check(ours, theirs, (2, 3, 4, 4), copy=False)


def test_embedding_matches_torch_with_int64_indices():
    ours = bp.nn.Embedding(10, 4, padding_idx=2, **F64)
    theirs = tnn.Embedding(10, 4, padding_idx=2).double()
    same_parameters(ours, theirs)
    ids = np.array([[1, 2, 9, 1], [0, 2, 5, 7]], dtype=np.int64)
    y, ty = ours(ids), theirs(torch.from_numpy(ids))
    weights = filled((2, 4, 4), 2.0)
    (y * weights).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert_close(y, ty, "output")
    assert_close(ours.weight.grad, theirs.weight.grad, "weight gradient")  # row 2 gets none
    assert not np.asarray(ours.weight.grad)[2].any()
    # The same rows through the functional op, from an int64 Tensor and from float whole numbers.
    np.testing.assert_array_equal(np.asarray(bp.embedding(bp.tensor(ids, dtype=bp.int64), ours.weight)),
                                  np.asarray(y))
    np.testing.assert_array_equal(np.asarray(bp.embedding(ids.astype(np.float32), ours.weight)), np.asarray(y))


def test_embedding_reads_large_int64_ids_exactly():
    # 2^24 + 1 has no float32 form: through float32 it would read row 2^24.
    emb = bp.nn.Embedding(2**24 + 2, 1)
    rows = np.asarray(emb.weight)[-2:, 0]
    assert rows[0] != rows[1]
    assert np.asarray(emb(np.array([2**24 + 1]))).ravel().tolist() == [rows[1]]
    with pytest.raises(IndexError, match="out of range"):
        emb(np.array([[0, 2**24 + 2]]))


@pytest.mark.parametrize("dim, keepdim", [(1, False), (-1, True), (0, False)])
def test_mean_matches_torch(dim, keepdim):
    class TorchMean(tnn.Module):
        def forward(self, x):
            return x.mean(dim, keepdim=keepdim)

    check(bp.nn.Mean(dim, keepdim=keepdim), TorchMean(), (3, 4, 5))


@pytest.mark.parametrize("batch_first, bias, masks", [(True, True, False), (False, True, True), (True, False, True)])
def test_multihead_attention_matches_torch(batch_first, bias, masks):
    E, H, N, L, S = 8, 2, 3, 4, 5
    ours = bp.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first, **F64)
    theirs = tnn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first).double()
    same_parameters(ours, theirs)
    q_shape, kv_shape = ((N, L, E), (N, S, E)) if batch_first else ((L, N, E), (S, N, E))
    inputs = [filled(q_shape, 1.0), filled(kv_shape, 2.0), filled(kv_shape, 3.0)]
    q, k, v = (bp.tensor(a, dtype=bp.float64, requires_grad=True) for a in inputs)
    tq, tk, tv = (torch.from_numpy(a).requires_grad_() for a in inputs)
    kwargs, tkwargs = {}, {}
    if masks:
        padding = np.zeros((N, S), dtype=bool)
        padding[1, -2:] = True  # bool: True blocks that key
        attn = filled((L, S), 4.0)  # float: added to the scores
        kwargs = {"key_padding_mask": padding, "attn_mask": attn}
        tkwargs = {"key_padding_mask": torch.from_numpy(padding), "attn_mask": torch.from_numpy(attn)}
    y, w = ours(q, k, v, **kwargs)
    ty, tw = theirs(tq, tk, tv, **tkwargs)
    weights = filled(tuple(ty.shape), 5.0)
    (y * weights).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert_close(y, ty, "output")
    assert_close(w, tw, "attention weights")
    for ours_x, theirs_x, name in [(q, tq, "query"), (k, tk, "key"), (v, tv, "value")]:
        assert_close(ours_x.grad, theirs_x.grad, f"{name} gradient")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"gradient of {name}")
    # need_weights=False leaves the weights out; one input is self-attention, the output alone.
    assert ours(q, k, v, need_weights=False, **kwargs)[1] is None
    self_out = ours(q)
    np.testing.assert_allclose(np.asarray(self_out), np.asarray(ours(q, q, q)[0]), rtol=0, atol=ATOL)


def test_dropout2d_drops_whole_channels():
    x = bp.tensor(filled((8, 16, 3, 3), 1.0) + 3.0, dtype=bp.float64, requires_grad=True)
    drop = bp.nn.Dropout2d(0.25, generator=bp.Generator(3))
    y = drop(x)
    y.sum().backward()
    ratio = np.asarray(y) / np.asarray(x.detach())
    per_channel = ratio.reshape(8, 16, 9)
    assert np.all(np.ptp(per_channel, axis=2) < 1e-12)  # one draw per (sample, channel)
    kept = per_channel[:, :, 0]
    assert set(np.round(np.unique(kept), 12)) <= {0.0, round(1 / 0.75, 12)}
    assert 0.1 < (kept == 0).mean() < 0.4
    np.testing.assert_allclose(np.asarray(x.grad).reshape(8, 16, 9)[:, :, 0], kept, rtol=0, atol=1e-12)
    drop.eval()
    np.testing.assert_array_equal(np.asarray(drop(x)), np.asarray(x.detach()))


def test_functional_convolutions_match_torch():
    x, w, b = filled((2, 4, 7, 6), 1.0), filled((6, 2, 3, 3), 2.0), filled((6,), 3.0)
    ours = bp.conv2d(bp.tensor(x, dtype=bp.float64), bp.tensor(w, dtype=bp.float64),
                     bp.tensor(b, dtype=bp.float64), stride=(2, 1), padding=1, groups=2)
    theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1), padding=1,
                      groups=2)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=ATOL)
    wt = filled((4, 3, 2, 2), 4.0)
    ours = bp.conv_transpose2d(bp.tensor(x, dtype=bp.float64), bp.tensor(wt, dtype=bp.float64), stride=2)
    theirs = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), stride=2)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=ATOL)
    x1, w1 = filled((2, 3, 9), 5.0), filled((4, 3, 3), 6.0)
    ours = bp.conv1d(bp.tensor(x1, dtype=bp.float64), bp.tensor(w1, dtype=bp.float64), padding="same")
    theirs = F.conv1d(torch.from_numpy(x1), torch.from_numpy(w1), padding="same")
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=ATOL)
    ours = bp.avg_pool2d(bp.tensor(x, dtype=bp.float64), 3, stride=2, padding=1, count_include_pad=False)
    theirs = F.avg_pool2d(torch.from_numpy(x), 3, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=ATOL)
    ours = bp.adaptive_avg_pool2d(bp.tensor(x, dtype=bp.float64), (2, 3))
    np.testing.assert_allclose(np.asarray(ours), F.adaptive_avg_pool2d(torch.from_numpy(x), (2, 3)).numpy(),
                               rtol=0, atol=ATOL)


def test_containers_name_parameters_as_torch():
    ours = bp.nn.ModuleList([bp.nn.Linear(3, 4), bp.nn.ReLU()])
    ours.append(bp.nn.Linear(4, 2))
    theirs = tnn.ModuleList([tnn.Linear(3, 4), tnn.ReLU(), tnn.Linear(4, 2)])
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert len(ours) == 3 and isinstance(ours[-1], bp.nn.Linear) and [type(m) for m in ours][1] is bp.nn.ReLU
    heads = bp.nn.ModuleDict({"cls": bp.nn.Linear(4, 3)})
    heads["box"] = bp.nn.Linear(4, 2)
    theirs = tnn.ModuleDict({"cls": tnn.Linear(4, 3), "box": tnn.Linear(4, 2)})
    assert [n for n, _ in heads.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(heads) == heads.keys() == ["cls", "box"] and "box" in heads and len(heads) == 2
    assert heads["box"].out_features == 2 and [k for k, _ in heads.items()] == ["cls", "box"]
    with pytest.raises(ValueError, match="box"):
        heads["box"] = bp.nn.Linear(4, 2)
    with pytest.raises(IndexError, match="nothing"):
        heads["nothing"]
    with pytest.raises(ValueError, match="forward"):
        ours(np.zeros((1, 3), dtype=np.float32))


def test_a_python_module_in_a_container_keeps_its_forward():
    class Double(bp.nn.Module):
        def forward(self, x):
            return x * 2.0

    class Net(bp.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = self.register_module("blocks", bp.nn.ModuleList())
            self.blocks.extend([Double() for _ in range(2)])  # no other reference to them

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    net = Net()
    given = [Double()]
    listed = bp.nn.ModuleList(given)
    named = bp.nn.ModuleDict({"double": Double()})
    named["again"] = Double()
    given.clear()  # the containers hold the only references now
    gc.collect()
    ones = np.ones((1, 2), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(net(ones)), [[4.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(listed[0](ones)), [[2.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(named["again"](named["double"](ones))), [[4.0, 4.0]])


def test_bad_arguments_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="same"):
        bp.nn.Conv2d(1, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="groups"):
        bp.nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="unknown|same|valid"):
        bp.nn.Conv2d(1, 2, 3, padding="full")
    with pytest.raises(TypeError):
        bp.nn.Conv2d(1, 2, (3, 3, 3))
    with pytest.raises(ValueError, match="Conv2d"):
        bp.nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="num_heads|divide"):
        bp.nn.MultiheadAttention(10, 3)
    with pytest.raises(IndexError, match="padding_idx"):
        bp.nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="whole"):
        bp.nn.Embedding(4, 2)(np.array([0.5]))


def test_a_torch_state_dict_loads_and_computes_the_same():
    torch.manual_seed(0)
    theirs = tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Flatten(), tnn.Linear(4 * 5 * 5, 3)).double()
    theirs(torch.from_numpy(filled((6, 1, 10, 10), 1.0)))  # training mode: moves the running statistics
    ours = bp.nn.Sequential(bp.nn.Conv2d(1, 4, 3, padding=1, **F64), bp.nn.BatchNorm2d(4, **F64), bp.nn.ReLU(),
                            bp.nn.MaxPool2d(2), bp.nn.Flatten(), bp.nn.Linear(4 * 5 * 5, 3, **F64))
    ours.load_state_dict({name: t.numpy() for name, t in theirs.state_dict().items()})  # num_batches_tracked: int64
    assert ours[1].num_batches_tracked == 1
    theirs.eval()
    ours.eval()
    x = filled((2, 1, 10, 10), 2.0)
    np.testing.assert_allclose(np.asarray(ours(x)), theirs(torch.from_numpy(x)).detach().numpy(), rtol=0, atol=ATOL)
