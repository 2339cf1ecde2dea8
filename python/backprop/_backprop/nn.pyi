"""
Layers and networks (backprop/nn.hpp).
"""
from __future__ import annotations
import backprop._backprop
import typing
__all__: list[str] = ['BatchNorm1d', 'DropConnect', 'Dropout', 'Flatten', 'Identity', 'LayerNorm', 'LeakyReLU', 'Linear', 'LogSoftmax', 'Module', 'ReLU', 'Residual', 'Sequential', 'Sigmoid', 'Softmax', 'Tanh', 'Unflatten']
class Module:
    """
    Base of every layer and network. Subclass it in Python to write a network: call super().__init__(),
    register parameters and children with register_parameter / register_module, and define forward(x).
    """
    def __call__(self, x: backprop._backprop.Tensor) -> backprop._backprop.Tensor:
        ...
    def __init__(self) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def children(self) -> list:
        ...
    def eval(self) -> None:
        ...
    def forward(self, x: backprop._backprop.Tensor) -> backprop._backprop.Tensor:
        ...
    def load_state_dict(self, state: dict) -> None:
        """
        Copies `state` (tensors or arrays by name) into the parameters and buffers (strict).
        """
    def named_buffers(self) -> list:
        ...
    def named_children(self) -> list[tuple[str, Module]]:
        ...
    def named_modules(self) -> list[tuple[str, Module]]:
        ...
    def named_parameters(self) -> list:
        ...
    def num_parameters(self) -> int:
        ...
    def parameters(self) -> list[backprop._backprop.Tensor]:
        """
        Every parameter, in the order named_parameters() gives.
        """
    def register_buffer(self, name: str, tensor: typing.Any) -> backprop._backprop.Tensor:
        ...
    def register_module(self, name: str, module: Module) -> Module:
        ...
    def register_parameter(self, name: str, tensor: typing.Any) -> backprop._backprop.Tensor:
        """
        Registers a trainable tensor (returned, now requiring grad).
        """
    def state_dict(self) -> dict[str, backprop._backprop.Tensor]:
        """
        Parameters and buffers by dotted name (the live tensors; clone them for a snapshot).
        """
    def train(self, mode: bool = True) -> None:
        ...
    def zero_grad(self) -> None:
        ...
    @property
    def training(self) -> bool:
        ...
class Sequential(Module):
    """
    Applies its modules in order.
    """
    def __getitem__(self, index: int) -> Module:
        ...
    def __init__(self, *args) -> None:
        ...
    def __len__(self) -> int:
        ...
    def append(self, module: Module) -> None:
        ...
    def forward_all(self, x: backprop._backprop.Tensor) -> list[backprop._backprop.Tensor]:
        """
        The output of every module, in order.
        """
class Linear(Module):
    """
    x @ weight.T + bias: [N, in_features] -> [N, out_features].
    """
    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = 'kaiming_uniform', nonlinearity: str = 'relu', dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def in_features(self) -> int:
        ...
    @property
    def out_features(self) -> int:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class ReLU(Module):
    def __init__(self) -> None:
        ...
class Sigmoid(Module):
    def __init__(self) -> None:
        ...
class Tanh(Module):
    def __init__(self) -> None:
        ...
class Identity(Module):
    def __init__(self) -> None:
        ...
class LeakyReLU(Module):
    def __init__(self, slope: float = 0.01) -> None:
        ...
class Softmax(Module):
    def __init__(self, dim: int = -1) -> None:
        ...
class LogSoftmax(Module):
    def __init__(self, dim: int = -1) -> None:
        ...
class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        ...
class Unflatten(Module):
    def __init__(self, dim: int, sizes: list[int]) -> None:
        ...
class Dropout(Module):
    """
    Zeroes each element with probability p in training (inverted dropout).
    """
    def __init__(self, p: float = 0.5, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def p(self) -> float:
        ...
class DropConnect(Module):
    """
    A dense layer whose weights are dropped with probability p in training.
    """
    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class BatchNorm1d(Module):
    """
    Batch normalisation of [N, C] features.
    """
    def __init__(self, num_features: int, eps: float = 1e-05, momentum: float = 0.1, affine: bool = True, dtype: typing.Any = backprop._backprop.DType.float32) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def running_mean(self) -> backprop._backprop.Tensor:
        ...
    @property
    def running_var(self) -> backprop._backprop.Tensor:
        ...
    @property
    def weight(self) -> typing.Any:
        ...
class LayerNorm(Module):
    """
    Normalises over the last len(normalized_shape) dimensions.
    """
    def __init__(self, normalized_shape: typing.Any, eps: float = 1e-05, elementwise_affine: bool = True, dtype: typing.Any = backprop._backprop.DType.float32) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def weight(self) -> typing.Any:
        ...
class Residual(Module):
    """
    x + block(x).
    """
    def __init__(self, block: Module) -> None:
        ...
    @property
    def block(self) -> Module:
        ...
