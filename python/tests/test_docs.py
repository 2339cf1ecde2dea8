"""docs/python.md runs: its ```python blocks, in order, in one namespace, in a scratch directory."""
import os
import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"


def test_walk_through_runs(cli, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace = {"BACKPROP": cli}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), namespace)
    assert os.path.getsize("curves.png") > 10000
    assert namespace["result"].accuracy > 0.8
    history = namespace["history"]
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert "expected inputs of shape [N, 784]" in capsys.readouterr().out
