"""
Training callbacks (backprop/train/callbacks.hpp).
"""
from __future__ import annotations
import backprop._backprop
import backprop._backprop.nn
import typing
__all__: list[str] = ['Callback', 'MetricsLog', 'ModelCheckpoint', 'ProgressBar']
class Callback:
    """
    Hooks into fit(): subclass and override on_train_begin(epochs, batches_per_epoch), on_epoch_begin(epoch),
    on_batch_end(step_info), on_epoch_end(metrics) (return True to stop after that epoch) or
    on_train_end(history).
    """
    def __init__(self) -> None:
        ...
    def on_batch_end(self, info: backprop._backprop.StepInfo) -> None:
        ...
    def on_epoch_begin(self, epoch: int) -> None:
        ...
    def on_epoch_end(self, metrics: backprop._backprop.EpochMetrics) -> bool:
        ...
    def on_train_begin(self, epochs: int, batches_per_epoch: int) -> None:
        ...
    def on_train_end(self, history: backprop._backprop.History) -> None:
        ...
class ProgressBar(Callback):
    """
    A progress bar on stderr (one line per epoch when not a terminal).
    """
    def __init__(self, tty: bool | None = None) -> None:
        ...
class MetricsLog(Callback):
    """
    Appends epoch records to a metrics log (JSON lines, docs/files.md).
    """
    def __init__(self, path: str) -> None:
        ...
class ModelCheckpoint(Callback):
    """
    Writes checkpoints DIR/epoch-NNNN.safetensors every `every` epochs and after the last, keeping `keep`
    (0 = all); best_model also saves a model file at each new best validation loss.
    """
    def __init__(self, dir: str, model: backprop._backprop.nn.Module, every: int = 1, keep: int = 3, best_model: str = '') -> None:
        ...
    @property
    def last_path(self) -> str:
        ...
    @property
    def written(self) -> int:
        ...
