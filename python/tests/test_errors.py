"""The library's errors arrive as Python exceptions with its message, as subclasses of the builtins."""
import numpy as np
import pytest

import backprop as bp


def test_shape_error_is_a_value_error_with_the_message():
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \[2, 3\] by \[2, 3\]") as info:
        bp.matmul(bp.ones([2, 3]), bp.ones([2, 3]))
    assert isinstance(info.value, bp.ShapeError) and isinstance(info.value, bp.Error)


def test_dtype_error_is_a_type_error():
    with pytest.raises(TypeError, match="f32.*f64|f64.*f32") as info:
        bp.ones([2]) + bp.ones([2], dtype=bp.float64)
    assert isinstance(info.value, bp.DTypeError)


def test_index_error():
    with pytest.raises(IndexError, match="index 5 is out of range for dim 0 of size 2"):
        bp.ones([2, 2])[5]
    with pytest.raises(bp.IndexError):
        bp.softmax(bp.ones([2]), dim=3)


def test_autograd_error_is_a_runtime_error():
    x = bp.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError) as info:
        y.requires_grad_(False)
    assert isinstance(info.value, bp.AutogradError)


def test_bad_option_is_a_value_error():
    with pytest.raises(ValueError, match="Dropout"):
        bp.nn.Dropout(1.5)
    with pytest.raises(ValueError, match="reduction: unknown value 'avg'"):
        bp.loss.MSE(reduction="avg")


def test_file_error(tmp_path):
    with pytest.raises(bp.FileError, match="nothing.safetensors"):
        bp.load_model(str(tmp_path / "nothing.safetensors"))


def test_wrong_input_shape_names_the_expected_shape(tmp_path):
    net = bp.nn.Sequential(bp.nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"Linear.*\[3, 5\]"):
        net(np.ones((3, 5), dtype=np.float32))
