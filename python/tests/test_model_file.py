"""A model file written by `backprop train` loads in Python and predicts what `backprop predict` prints."""
import json
import subprocess

import numpy as np
import pytest

import backprop as bp

from conftest import FASHION_MNIST

IMAGES = FASHION_MNIST + "/t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def model_path(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    subprocess.run([cli, "train", "--quiet", "--data", "fashion-mnist", "--limit-train", "2000", "--limit-test",
                    "200", "--layers", "32", "--epochs", "2", "--out", str(out)], check=True)
    return str(out / "model.safetensors")


def test_load_and_predict_match_the_cli(cli, model_path):
    model = bp.load_model(model_path)
    assert model.task == "classification" and model.input_kind == "image"
    assert model.class_names[0] == "T-shirt/top" and len(model.class_names) == 10
    pixels = bp.read_idx(IMAGES, limit=100)
    assert pixels.dtype == np.uint8 and pixels.shape == (100, 28, 28)
    probs = model.predict_proba(pixels.reshape(100, -1))
    classes = model.predict_class(pixels)  # [N, 28, 28] images are flattened
    np.testing.assert_array_equal(classes, probs.argmax(axis=1))
    lines = subprocess.run([cli, "predict", "--json", "--model", model_path, "--input", IMAGES, "--limit", "100"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["index"] for r in rows] == classes.tolist()
    np.testing.assert_allclose([r["probability"] for r in rows], probs.max(axis=1), rtol=1e-5)
    assert isinstance(model.training, dict)


def test_predict_takes_the_preprocessing_into_account(model_path):
    model = bp.load_model(model_path)
    pixels = bp.read_idx(IMAGES, limit=10).reshape(10, -1)
    # `backprop predict` scales each byte in double precision, then rounds to float32
    direct = np.asarray(bp.predict(model.module, (pixels * model.pixel_scale).astype(np.float32)))
    np.testing.assert_array_equal(model.predict(pixels), direct)


def test_wrong_shape_names_the_expected_shape(model_path):
    model = bp.load_model(model_path)
    with pytest.raises(ValueError, match=r"expected inputs of shape \[N, 784\].*\[3, 783\]"):
        model.predict(np.zeros((3, 783)))
    with pytest.raises(ValueError, match="expected an array of numbers, got dtype <U1|str"):
        model.predict(np.array([["a"] * 784]))


def test_non_contiguous_input_is_read_correctly(model_path):
    model = bp.load_model(model_path)
    pixels = bp.read_idx(IMAGES, limit=6).reshape(6, -1)
    wide = np.zeros((6, 2 * 784), dtype=np.uint8)
    wide[:, ::2] = pixels
    np.testing.assert_array_equal(model.predict(wide[:, ::2]), model.predict(pixels))


def test_model_exports_as_the_cli_does(cli, model_path, tmp_path):
    ours, theirs = tmp_path / "python.onnx", tmp_path / "cli.onnx"
    bp.load_model(model_path).export_onnx(str(ours))
    subprocess.run([cli, "export", "--quiet", model_path, "--onnx", str(theirs)], check=True)
    assert ours.read_bytes() == theirs.read_bytes()  # the preprocessing and class names included
    with pytest.raises(bp.Error, match="--force|force"):
        bp.load_model(model_path).export_onnx(model_path)  # another kind of file is not replaced
