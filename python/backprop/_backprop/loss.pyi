"""
Costs (backprop/loss.hpp): loss(output, target) -> 0-d tensor.
"""
from __future__ import annotations
import backprop._backprop
__all__: list[str] = ['BCEWithLogits', 'CrossEntropy', 'Loss', 'MSE', 'NLL', 'Quadratic', 'SoftmaxMSE']
class Loss:
    def __call__(self, output: backprop._backprop.Tensor, target: backprop._backprop.Tensor) -> backprop._backprop.Tensor:
        ...
    def __repr__(self) -> str:
        ...
class CrossEntropy(Loss):
    """
    Softmax cross-entropy from logits [N, C] and class indices [N].
    """
    def __init__(self, label_smoothing: float = 0.0, reduction: str = 'mean') -> None:
        ...
class MSE(Loss):
    """
    Mean (or sum) of squared differences.
    """
    def __init__(self, reduction: str = 'mean') -> None:
        ...
class SoftmaxMSE(Loss):
    def __init__(self, reduction: str = 'mean') -> None:
        ...
class Quadratic(Loss):
    def __init__(self, reduction: str = 'mean') -> None:
        ...
class NLL(Loss):
    def __init__(self, reduction: str = 'mean') -> None:
        ...
class BCEWithLogits(Loss):
    def __init__(self, reduction: str = 'mean') -> None:
        ...
