"""Tensor operations and operators against NumPy, and autograd: backward, .grad, grad(create_graph=True)."""
import numpy as np
import pytest

import backprop as bp


def arr(t):
    return np.asarray(t)


def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a, b = bp.from_numpy(a_np), bp.from_numpy(b_np)
    np.testing.assert_allclose(arr(a + b), a_np + b_np)
    np.testing.assert_allclose(arr(a - b), a_np - b_np)
    np.testing.assert_allclose(arr(a * b), a_np * b_np)
    np.testing.assert_allclose(arr(a / b), a_np / b_np)
    np.testing.assert_allclose(arr(a @ b.T), a_np @ b_np.T)
    np.testing.assert_allclose(arr(2.0 - a), 2.0 - a_np)
    np.testing.assert_allclose(arr(1.0 / b), 1.0 / b_np)
    np.testing.assert_allclose(arr(-a * 3), -a_np * 3)
    np.testing.assert_allclose(arr(a**2), a_np**2)
    np.testing.assert_allclose(arr(a + b_np[0]), a_np + b_np[0])  # broadcasting


def test_reductions_and_functions_match_numpy():
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((5, 3))
    x = bp.from_numpy(x_np)
    assert x.sum().item() == pytest.approx(x_np.sum())
    np.testing.assert_allclose(arr(x.mean(dim=0)), x_np.mean(axis=0))
    np.testing.assert_allclose(arr(bp.sum(x, dim=1, keepdim=True)), x_np.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(arr(bp.amax(x, dim=1)), x_np.max(axis=1))
    np.testing.assert_allclose(arr(bp.relu(x)), np.maximum(x_np, 0))
    np.testing.assert_allclose(arr(bp.exp(x)), np.exp(x_np))
    np.testing.assert_allclose(arr(bp.tanh(x)), np.tanh(x_np))
    sm = np.exp(x_np) / np.exp(x_np).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(arr(bp.softmax(x, dim=1)), sm)
    np.testing.assert_allclose(arr(bp.var(x, dim=0)), x_np.var(axis=0, ddof=1))
    np.testing.assert_allclose(arr(x.reshape(3, 5)), x_np.reshape(3, 5))
    np.testing.assert_allclose(arr(bp.transpose(x, 0, 1)), x_np.T)
    np.testing.assert_allclose(arr(bp.cat([x, x], dim=1)), np.concatenate([x_np, x_np], axis=1))
    np.testing.assert_allclose(arr(x[1:4:2, 2]), x_np[1:4:2, 2])
    np.testing.assert_array_equal(arr(bp.argmax(x, 1)), x_np.argmax(axis=1))


def test_backward_fills_grad():
    w_np = np.array([[1.0, -2.0], [0.5, 3.0]])
    x_np = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    w = bp.tensor(w_np, requires_grad=True)
    assert w.grad is None and w.is_leaf
    loss = (bp.from_numpy(x_np) @ w).sum()
    loss.backward()
    # d/dW sum(X W) = X^T 1
    np.testing.assert_allclose(arr(w.grad), x_np.T @ np.ones((3, 2)))
    w.grad = None
    assert w.grad is None


def test_grad_with_create_graph_gives_the_analytic_second_derivative():
    # f(x) = x^3 sin-free polynomial plus exp: f'(x) = 3x^2 + e^x, f''(x) = 6x + e^x.
    x_np = np.array([0.5, -1.0, 2.0])
    x = bp.tensor(x_np, requires_grad=True)
    y = (x**3 + bp.exp(x)).sum()
    (dy,) = bp.grad(y, x, create_graph=True)
    np.testing.assert_allclose(arr(dy), 3 * x_np**2 + np.exp(x_np), rtol=1e-12)
    assert dy.requires_grad
    (d2y,) = bp.grad(dy.sum(), [x])
    np.testing.assert_allclose(arr(d2y), 6 * x_np + np.exp(x_np), rtol=1e-12)


def test_no_grad_records_nothing():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    with bp.no_grad():
        y = x * 2
    assert not y.requires_grad and bp.is_grad_enabled()
    assert (x * 2).grad_fn is not None


def test_grad_of_an_unused_input():
    x, z = bp.tensor([1.0], requires_grad=True), bp.tensor([1.0], requires_grad=True)
    y = (x * 3).sum()
    assert bp.grad(y, [x, z], allow_unused=True)[1] is None
