"""
Layers and networks (backprop/nn.hpp).
"""
from __future__ import annotations
import backprop._backprop
import typing
__all__: list[str] = ['AdaptiveAvgPool2d', 'AvgPool2d', 'BatchNorm1d', 'BatchNorm2d', 'Conv1d', 'Conv2d', 'ConvTranspose2d', 'DropConnect', 'Dropout', 'Dropout2d', 'Embedding', 'Flatten', 'Identity', 'LayerNorm', 'LeakyReLU', 'Linear', 'LogSoftmax', 'MaxPool2d', 'Mean', 'Module', 'ModuleDict', 'ModuleList', 'MultiheadAttention', 'ReLU', 'Residual', 'Sequential', 'Sigmoid', 'Softmax', 'Tanh', 'Unflatten']
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
class Conv2d(Module):
    """
    2-D convolution of [N, in_channels, H, W] images (torch.nn.Conv2d): weight [out, in / groups, kh, kw], bias
    [out]. Sizes are an int or (h, w); padding also "same" (stride 1) or "valid". Initialised as PyTorch does.
    """
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def dilation(self) -> tuple:
        ...
    @property
    def groups(self) -> int:
        ...
    @property
    def in_channels(self) -> int:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def out_channels(self) -> int:
        ...
    @property
    def stride(self) -> tuple:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class Conv1d(Module):
    """
    1-D convolution of [N, in_channels, L] sequences (torch.nn.Conv1d): weight [out, in / groups, k], bias [out].
    Sizes are an int or a 1-tuple; padding also "same" (stride 1) or "valid".
    """
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int], stride: int | tuple[int] = 1, padding: int | tuple[int] | str = 0, dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def in_channels(self) -> int:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def out_channels(self) -> int:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class ConvTranspose2d(Module):
    """
    Transposed 2-D convolution (torch.nn.ConvTranspose2d), the adjoint of Conv2d: weight [in, out / groups, kh,
    kw], bias [out]; output size (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.
    """
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, output_padding: int | tuple[int, int] = 0, groups: int = 1, bias: bool = True, dilation: int | tuple[int, int] = 1, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def in_channels(self) -> int:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
    @property
    def out_channels(self) -> int:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class MaxPool2d(Module):
    """
    Largest value of each window (torch.nn.MaxPool2d; stride None: the kernel size).
    """
    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, ceil_mode: bool = False) -> None:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
class AvgPool2d(Module):
    """
    Mean of each window (torch.nn.AvgPool2d; stride None: the kernel size). The divisor counts the zero padding
    unless count_include_pad is False.
    """
    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        ...
    @property
    def kernel_size(self) -> tuple:
        ...
class AdaptiveAvgPool2d(Module):
    """
    Mean over output_size windows (torch.nn.AdaptiveAvgPool2d); 1 is the global average.
    """
    def __init__(self, output_size: int | tuple[int, int]) -> None:
        ...
    @property
    def output_size(self) -> tuple:
        ...
class BatchNorm2d(Module):
    """
    Batch normalisation of [N, C, H, W] images (torch.nn.BatchNorm2d): each channel's statistics over N, H and W;
    running_mean and running_var in eval mode.
    """
    def __init__(self, num_features: int, eps: float = 1e-05, momentum: float = 0.1, affine: bool = True, dtype: typing.Any = backprop._backprop.DType.float32) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def num_batches_tracked(self) -> int:
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
class Dropout2d(Module):
    """
    Zeroes whole channels of [N, C, H, W] with probability p in training (torch.nn.Dropout2d).
    """
    def __init__(self, p: float = 0.5, generator: backprop._backprop.Generator = None) -> None:
        ...
    @property
    def p(self) -> float:
        ...
class Embedding(Module):
    """
    A table of num_embeddings learned vectors of embedding_dim features (torch.nn.Embedding), drawn from N(0, 1):
    indices of any shape -> indices.shape + (embedding_dim,). Indices are an int64 Tensor, a NumPy integer array
    (read exactly) or whole numbers. The row padding_idx starts at zero and gets no gradient.
    """
    def __call__(self, input: typing.Any) -> backprop._backprop.Tensor:
        ...
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    def forward(self, input: typing.Any) -> backprop._backprop.Tensor:
        ...
    @property
    def embedding_dim(self) -> int:
        ...
    @property
    def num_embeddings(self) -> int:
        ...
    @property
    def padding_idx(self) -> int | None:
        ...
    @property
    def weight(self) -> backprop._backprop.Tensor:
        ...
class Mean(Module):
    """
    The average over dimension `dim` as a layer: Mean(1) turns token vectors [N, L, D] from an Embedding into one
    vector per document [N, D]. keepdim keeps the dimension, of size 1.
    """
    def __init__(self, dim: int, keepdim: bool = False) -> None:
        ...
    @property
    def dim(self) -> int:
        ...
    @property
    def keepdim(self) -> bool:
        ...
class MultiheadAttention(Module):
    """
    Multi-head scaled dot-product attention (torch.nn.MultiheadAttention): parameters in_proj_weight [3E, E],
    in_proj_bias [3E] and out_proj (a Linear E -> E), named and laid out as PyTorch's, so its state dict loads
    unchanged. Inputs are [L, N, E] unless batch_first (PyTorch's default, False).
    """
    @typing.overload
    def __call__(self, x: backprop._backprop.Tensor) -> backprop._backprop.Tensor:
        ...
    @typing.overload
    def __call__(self, query: backprop._backprop.Tensor, key: backprop._backprop.Tensor, value: backprop._backprop.Tensor, key_padding_mask: typing.Any = None, need_weights: bool = True, attn_mask: typing.Any = None) -> tuple:
        """
        (output, weights) as torch.nn.MultiheadAttention returns them: query [N, L, E], key and value [N, S, E]
        (batch_first; else [L, N, E] and [S, N, E]) -> output of query's shape and weights [N, L, S] averaged over the
        heads (None unless need_weights). Masks: bool (True blocks a position) or float (added to the scores);
        key_padding_mask [N, S], attn_mask [L, S] or [N * num_heads, L, S]. Called with one tensor: self-attention,
        the output alone.
        """
    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, batch_first: bool = False, dtype: typing.Any = backprop._backprop.DType.float32, generator: backprop._backprop.Generator = None) -> None:
        ...
    @typing.overload
    def forward(self, x: backprop._backprop.Tensor) -> backprop._backprop.Tensor:
        ...
    @typing.overload
    def forward(self, query: backprop._backprop.Tensor, key: backprop._backprop.Tensor, value: backprop._backprop.Tensor, key_padding_mask: typing.Any = None, need_weights: bool = True, attn_mask: typing.Any = None) -> tuple:
        """
        (output, weights) as torch.nn.MultiheadAttention returns them: query [N, L, E], key and value [N, S, E]
        (batch_first; else [L, N, E] and [S, N, E]) -> output of query's shape and weights [N, L, S] averaged over the
        heads (None unless need_weights). Masks: bool (True blocks a position) or float (added to the scores);
        key_padding_mask [N, S], attn_mask [L, S] or [N * num_heads, L, S]. Called with one tensor: self-attention,
        the output alone.
        """
    @property
    def batch_first(self) -> bool:
        ...
    @property
    def embed_dim(self) -> int:
        ...
    @property
    def in_proj_bias(self) -> typing.Any:
        ...
    @property
    def in_proj_weight(self) -> backprop._backprop.Tensor:
        ...
    @property
    def num_heads(self) -> int:
        ...
    @property
    def out_proj(self) -> Linear:
        ...
class ModuleList(Module):
    """
    Modules under the names "0", "1", ... (torch.nn.ModuleList): a custom Module registers the list and calls its
    entries in its own forward; the list has no forward of its own.
    """
    def __getitem__(self, index: int) -> Module:
        ...
    def __init__(self, modules: typing.Iterable | None = None) -> None:
        ...
    def __iter__(self) -> typing.Iterator:
        ...
    def __len__(self) -> int:
        ...
    def append(self, module: typing.Any) -> None:
        ...
    def extend(self, modules: typing.Iterable) -> None:
        ...
class ModuleDict(Module):
    """
    Modules under string keys, in insertion order (torch.nn.ModuleDict): parameters are named "key.weight". A key
    is added once (no dots, not empty); the dict has no forward of its own.
    """
    def __contains__(self, key: str) -> bool:
        ...
    def __getitem__(self, key: str) -> Module:
        ...
    def __init__(self, modules: dict | None = None) -> None:
        ...
    def __iter__(self) -> typing.Iterator:
        ...
    def __len__(self) -> int:
        ...
    def __setitem__(self, key: str, module: typing.Any) -> None:
        ...
    def items(self) -> list[tuple[str, Module]]:
        ...
    def keys(self) -> list[str]:
        ...
    def values(self) -> list[Module]:
        ...
