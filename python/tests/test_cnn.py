"""A CNN and an embedding classifier built in Python from the library's layers: trained with fit() on a slice
of Fashion-MNIST, saved and loaded back, and exported to ONNX and run in ONNX Runtime."""
import numpy as np
import pytest

import backprop as bp

from conftest import FASHION_MNIST

try:
    import onnx
    import onnxruntime
except ImportError:  # a missing reference fails the suite, as in the C++ tests (docs/testing.md)
    pytest.fail("onnx or onnxruntime is missing: install python3-onnx, and onnxruntime with /usr/bin/python3 -m pip "
                "install --break-system-packages --no-deps onnxruntime==1.16.3 (scripts/install-deps does both)",
                pytrace=False)


@pytest.fixture(scope="module")
def images():
    x, y = bp.load_fashion_mnist("train", limit=1024, dir=FASHION_MNIST)
    x_test, y_test = bp.load_fashion_mnist("test", limit=256, dir=FASHION_MNIST)
    return x.reshape(-1, 1, 28, 28), y, x_test.reshape(-1, 1, 28, 28), y_test


def cnn():
    return bp.nn.Sequential(
        bp.nn.Conv2d(1, 8, 3, padding=1), bp.nn.BatchNorm2d(8), bp.nn.ReLU(), bp.nn.MaxPool2d(2),
        bp.nn.Conv2d(8, 8, 3, padding="same"), bp.nn.ReLU(), bp.nn.MaxPool2d(2),
        bp.nn.Flatten(), bp.nn.Linear(8 * 7 * 7, 10),
    )


def tokens(x):
    """Each image a document of 784 pixel tokens: its grey level in 16 steps (0 = background)."""
    return np.rint(x.reshape(len(x), -1) * 15).astype(np.int64)


def embedding_classifier():
    return bp.nn.Sequential(bp.nn.Embedding(16, 12, padding_idx=0), bp.nn.Mean(1), bp.nn.Linear(12, 10))


def run_in_onnxruntime(path, x):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0], model


def test_fit_trains_a_cnn(images):
    x, y, x_test, y_test = images
    bp.manual_seed(0)
    net = cnn()
    loss = bp.loss.CrossEntropy()
    before = bp.evaluate(net, loss, x_test, y_test)
    history = bp.fit(net, loss, bp.optim.Adam(net, lr=3e-3), x, y, epochs=2, batch_size=64,
                     validation=(x_test, y_test))
    after = bp.evaluate(net, loss, x_test, y_test)
    losses = [e.train_loss for e in history.epochs]
    assert history.total_updates == 2 * 16
    assert losses[1] < losses[0] and after.loss < 0.7 * before.loss
    assert after.accuracy > 0.6 and before.accuracy < 0.3  # ten classes: chance is 0.1
    assert net[1].num_batches_tracked == 2 * 16


def test_fit_trains_an_embedding_classifier(images):
    x, y, x_test, y_test = images
    bp.manual_seed(1)
    net = embedding_classifier()
    loss = bp.loss.CrossEntropy()
    before = bp.evaluate(net, loss, tokens(x_test), y_test)
    history = bp.fit(net, loss, bp.optim.Adam(net, lr=5e-2), tokens(x), y, epochs=3, batch_size=64)
    after = bp.evaluate(net, loss, tokens(x_test), y_test)
    losses = [e.train_loss for e in history.epochs]
    assert losses[2] < losses[1] < losses[0]
    # A bag of grey levels is a weak feature, but far better than chance (0.1).
    assert after.loss < 0.9 * before.loss and after.accuracy > 0.2


@pytest.mark.parametrize("build, inputs", [(cnn, lambda x: x), (embedding_classifier, tokens)])
def test_save_load_and_onnx_export_agree(tmp_path, images, build, inputs):
    x, y, x_test, _ = images
    bp.manual_seed(2)
    net = build()
    bp.fit(net, bp.loss.CrossEntropy(), bp.optim.Adam(net, lr=1e-3), inputs(x[:256]), y[:256], epochs=1)
    net.eval()
    data = inputs(x_test)
    expected = np.asarray(bp.predict(net, data))
    shape = list(data.shape[1:])

    path = str(tmp_path / "net.safetensors")
    bp.save_model(path, net, input_shape=shape)
    back = bp.load_module(path)
    assert repr(back) == repr(net)
    np.testing.assert_array_equal(np.asarray(bp.predict(back, data)), expected)
    for (name, a), (name_back, b) in zip(net.state_dict().items(), back.state_dict().items()):
        assert name == name_back
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    onnx_path = str(tmp_path / "net.onnx")
    bp.export_onnx(net, onnx_path, shape, metadata={"source": "test_cnn"})
    got, model = run_in_onnxruntime(onnx_path, data)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert {p.key: p.value for p in model.metadata_props}["source"] == "test_cnn"
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert model.graph.input[0].type.tensor_type.elem_type == (
        onnx.TensorProto.INT64 if build is embedding_classifier else onnx.TensorProto.FLOAT)
    one, _ = run_in_onnxruntime(onnx_path, data[:1])  # the batch dimension is free
    np.testing.assert_allclose(one, expected[:1], rtol=0, atol=1e-5)

    # A model file exports as `backprop export` does, from the Model a file loads into.
    again = str(tmp_path / "again.onnx")
    bp.load_model(path).export_onnx(again)
    got_again, _ = run_in_onnxruntime(again, data)
    np.testing.assert_allclose(got_again, expected, rtol=0, atol=1e-5)


def test_export_refuses_what_has_no_onnx_form(tmp_path):
    class Twice(bp.nn.Module):
        def forward(self, x):
            return x * 2.0

    path = tmp_path / "net.onnx"
    with pytest.raises(ValueError, match="the module at '1'"):
        bp.export_onnx(bp.nn.Sequential(bp.nn.Linear(4, 4), Twice()), str(path), [4])
    with pytest.raises(ValueError, match="reads token ids"):
        bp.export_onnx(bp.nn.Sequential(bp.nn.Identity(), bp.nn.Embedding(5, 3)), str(path), [4])
    with pytest.raises(ValueError):
        bp.export_onnx(cnn(), str(path), [1, 27])
    assert not path.exists()
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(bp.Error, match="force"):  # an existing file of another kind is kept
        bp.export_onnx(bp.nn.Sequential(bp.nn.Linear(4, 2)), str(notes), [4])
    assert notes.read_text() == "keep me"
    bp.export_onnx(bp.nn.Sequential(bp.nn.Linear(4, 2)), str(notes), [4], force=True)
    assert onnx.load(str(notes)).graph.node[0].op_type == "Gemm"
