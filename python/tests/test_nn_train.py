"""Networks built from the library's layers, trained with fit() and its callbacks on NumPy data."""
import numpy as np
import pytest

import backprop as bp

from conftest import FASHION_MNIST


def test_layers_compose_and_name_their_parameters():
    bp.manual_seed(0)
    net = bp.nn.Sequential(
        bp.nn.Linear(6, 8), bp.nn.BatchNorm1d(8), bp.nn.ReLU(), bp.nn.Dropout(0.1),
        bp.nn.Residual(bp.nn.Sequential(bp.nn.LayerNorm(8), bp.nn.Linear(8, 8), bp.nn.Tanh())),
        bp.nn.Linear(8, 3),
    )
    names = [n for n, _ in net.named_parameters()]
    assert names[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert "4.block.0.weight" in names and names[-1] == "5.bias"
    assert net.num_parameters() == sum(p.numel() for p in net.parameters())
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    assert net(x).shape == (5, 3)
    net.eval()
    assert not net.training and not net[3].training
    assert isinstance(net[0], bp.nn.Linear) and net[0].weight.shape == (8, 6)


def test_a_python_module_trains_with_an_optimizer():
    class Affine(bp.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = self.register_parameter("w", bp.zeros([2, 1], dtype=bp.float64))

        def forward(self, x):
            return x @ self.w

    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 2))
    y = x @ np.array([[2.0], [-1.0]])
    model = Affine()
    opt = bp.optim.SGD(model, lr=0.1)
    mse = bp.loss.MSE()
    for _ in range(200):
        opt.zero_grad()
        loss = mse(model(x), bp.from_numpy(y))
        loss.backward()
        opt.step()
    np.testing.assert_allclose(np.asarray(model.w).ravel(), [2.0, -1.0], atol=1e-4)
    assert [n for n, _ in model.named_parameters()] == ["w"]


class Recorder(bp.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs = 0, []

    def on_batch_end(self, info):
        self.batches += 1

    def on_epoch_end(self, metrics):
        self.epochs.append(metrics.train_loss)


def test_fit_learns_a_fashion_mnist_slice(tmp_path):
    x, y = bp.load_fashion_mnist("train", limit=3000, dir=FASHION_MNIST)
    x_test, y_test = bp.load_fashion_mnist("test", limit=1000, dir=FASHION_MNIST)
    assert x.dtype == np.float32 and x.shape == (3000, 784) and y.dtype == np.int64
    bp.manual_seed(1)
    net = bp.nn.Sequential(bp.nn.Linear(784, 64), bp.nn.ReLU(), bp.nn.Linear(64, 10))
    loss = bp.loss.CrossEntropy()
    before = bp.evaluate(net, loss, x_test, y_test)
    recorder = Recorder()
    log = tmp_path / "metrics.jsonl"
    history = bp.fit(net, loss, bp.optim.Adam(net.parameters(), lr=1e-3), x, y, epochs=4, batch_size=64,
                     validation=(x_test, y_test), callbacks=[recorder, bp.callbacks.MetricsLog(str(log))])
    after = bp.evaluate(net, loss, x_test, y_test)
    assert len(history.epochs) == 4 and history.total_updates == 4 * 47
    assert recorder.batches == 4 * 47 and len(recorder.epochs) == 4
    losses = [e.train_loss for e in history.epochs]
    assert losses == recorder.epochs and losses[-1] < 0.6 * losses[0]
    assert after.accuracy > 0.75 and before.accuracy < 0.3  # ten classes: chance is 0.1
    assert history.epochs[-1].val_accuracy == pytest.approx(after.accuracy)
    assert len(log.read_text().splitlines()) >= 4
    predicted = np.asarray(bp.predict(net, x_test)).argmax(axis=1)
    assert (predicted == y_test).mean() == pytest.approx(after.accuracy)


def test_a_callback_stops_training():
    class StopAfterTwo(bp.callbacks.Callback):
        def on_epoch_end(self, metrics):
            return metrics.epoch == 2

    x = np.random.default_rng(3).standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = bp.nn.Sequential(bp.nn.Linear(3, 2))
    h = bp.fit(net, bp.loss.CrossEntropy(), bp.optim.SGD(net, lr=0.1), x, y, epochs=10, batch_size=8,
               callbacks=[StopAfterTwo()])
    assert len(h.epochs) == 2


def test_a_python_exception_in_a_callback_propagates():
    class Boom(bp.callbacks.Callback):
        def on_batch_end(self, info):
            raise KeyError("boom at %d" % info.step)

    x = np.zeros((8, 2), dtype=np.float32)
    net = bp.nn.Sequential(bp.nn.Linear(2, 2))
    with pytest.raises(KeyError, match="boom at 1"):
        bp.fit(net, bp.loss.CrossEntropy(), bp.optim.SGD(net), x, np.zeros(8), epochs=1, callbacks=[Boom()])


def test_save_and_load_a_network(tmp_path):
    bp.manual_seed(4)
    net = bp.nn.Sequential(bp.nn.Linear(3, 5), bp.nn.Sigmoid(), bp.nn.Linear(5, 2))
    path = str(tmp_path / "net.safetensors")
    bp.save_model(path, net, input_shape=[3])
    back = bp.load_module(path)
    x = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    net.eval()
    np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(net(x)))


def test_explain_gives_the_worked_example():
    text = bp.explain(sizes=[2, 3, 2], lr=0.5, seed=1)
    assert "delta" in text and "2-3-2" in text
    assert "agree" in text.lower()
    assert "naive" in bp.explain_repeated(4).lower()
