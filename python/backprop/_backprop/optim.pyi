"""
Optimisers (backprop/optim.hpp); `params` is a list of tensors or a Module.
"""
from __future__ import annotations
import backprop._backprop
import typing
__all__: list[str] = ['Adam', 'AdamW', 'Optimizer', 'RMSprop', 'SGD', 'clip_grad_norm']
class Optimizer:
    lr: float
    def __repr__(self) -> str:
        ...
    def step(self) -> None:
        """
        One update from the current gradients.
        """
    def zero_grad(self) -> None:
        ...
    @property
    def steps(self) -> int:
        ...
class SGD(Optimizer):
    def __init__(self, params: typing.Any, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        ...
class Adam(Optimizer):
    def __init__(self, params: typing.Any, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.0) -> None:
        ...
class AdamW(Adam):
    def __init__(self, params: typing.Any, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08, weight_decay: float = 0.01) -> None:
        ...
class RMSprop(Optimizer):
    def __init__(self, params: typing.Any, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-08, momentum: float = 0.0, weight_decay: float = 0.0, centered: bool = False) -> None:
        ...
def clip_grad_norm(params: list[backprop._backprop.Tensor], max_norm: float) -> float:
    """
    Scales the gradients so their total 2-norm is at most max_norm; returns the norm before.
    """
