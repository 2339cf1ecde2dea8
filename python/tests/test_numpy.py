"""Tensors to and from NumPy: views without copies where the layout allows, copies otherwise."""
import gc

import numpy as np
import pytest

import backprop as bp


@pytest.mark.parametrize("dtype, bp_dtype", [(np.float32, bp.float32), (np.float64, bp.float64)])
def test_from_numpy_shares_a_contiguous_array(dtype, bp_dtype):
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    t = bp.from_numpy(a)
    assert t.dtype == bp_dtype and t.shape == (3, 4)
    back = np.asarray(t)
    assert np.shares_memory(back, a)
    a[1, 2] = 100.0  # a write through the array is seen by the tensor
    assert t[1, 2].item() == 100.0
    t.fill_(7.0)  # and one through the tensor by the array
    assert (a == 7.0).all()


def test_asarray_views_the_tensor_and_keeps_it_alive():
    t = bp.ones([1000, 10])
    view = np.asarray(t)
    assert view.dtype == np.float32 and view.shape == (1000, 10)
    assert np.shares_memory(view, t.numpy())
    del t
    gc.collect()
    assert view.sum() == 10000.0  # the storage outlives the last Tensor handle
    y = bp.matmul(bp.from_numpy(np.eye(3, dtype=np.float32)), bp.full([3, 2], 2.0))
    assert np.asarray(y).tolist() == [[2.0, 2.0]] * 3


def test_array_stays_alive_while_a_tensor_uses_it():
    t = bp.from_numpy(np.full((4, 4), 3.0))
    gc.collect()
    assert bp.sum(t).item() == 48.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(12, dtype=np.float32).reshape(3, 4).T,  # not C-contiguous
        lambda: np.arange(12, dtype=np.float32)[::2],  # strided
        lambda: np.arange(12, dtype=np.int64),  # integers
        lambda: np.arange(12, dtype=">f4"),  # other byte order
    ],
)
def test_other_layouts_are_copied_not_misread(make):
    a = make()
    t = bp.from_numpy(a)
    assert not np.shares_memory(np.asarray(t), a)
    np.testing.assert_array_equal(np.asarray(t), a.astype(np.float32))


def test_read_only_arrays_are_copied():
    a = np.ones(5, dtype=np.float32)
    a.setflags(write=False)
    t = bp.from_numpy(a)
    assert not np.shares_memory(np.asarray(t), a)


def test_unsupported_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="from_numpy: expected an array of numbers.*complex128"):
        bp.from_numpy(np.ones(3, dtype=np.complex128))


def test_operators_take_numpy_arrays():
    t = bp.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = t + np.ones((2, 2), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(y), [[2, 3], [4, 5]])
