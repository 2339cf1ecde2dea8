"""
backprop: tensors, autograd, layers and training of the backprop C++ library, with NumPy.
"""
from __future__ import annotations
from backprop import AutogradError
from backprop import ConfigError
from backprop import DTypeError
from backprop import DivergedError
from backprop import Error
from backprop import FileError
from backprop import IndexError
from backprop import OutOfMemoryError
from backprop import ShapeError
from backprop import ValueError
import numpy
import typing
from . import nn
from . import loss
from . import optim
from . import callbacks
__all__: list[str] = ['AutogradError', 'ConfigError', 'DType', 'DTypeError', 'DivergedError', 'EpochMetrics', 'Error', 'Evaluation', 'FASHION_MNIST_CLASSES', 'FileError', 'Generator', 'History', 'IndexError', 'Model', 'OutOfMemoryError', 'ShapeError', 'StepInfo', 'Tensor', 'ValueError', 'abs', 'adaptive_avg_pool2d', 'add', 'allclose', 'amax', 'amin', 'arange', 'argmax', 'argmin', 'avg_pool2d', 'callbacks', 'cat', 'chunk', 'clamp', 'conv1d', 'conv2d', 'conv_transpose2d', 'div', 'embedding', 'evaluate', 'exp', 'explain', 'explain_repeated', 'export_onnx', 'fit', 'flatten', 'float32', 'float64', 'from_numpy', 'full', 'grad', 'int64', 'is_grad_enabled', 'leaky_relu', 'linear', 'load_fashion_mnist', 'load_model', 'load_module', 'log', 'log_softmax', 'logsumexp', 'loss', 'manual_seed', 'matmul', 'max_pool2d', 'maximum', 'mean', 'mul', 'narrow', 'neg', 'nn', 'no_grad', 'norm', 'one_hot', 'ones', 'optim', 'permute', 'pow', 'predict', 'rand', 'randn', 'read_idx', 'relu', 'reshape', 'save_model', 'set_grad_enabled', 'sigmoid', 'sign', 'softmax', 'split', 'sqrt', 'squeeze', 'stack', 'std', 'sub', 'sum', 'tanh', 'tensor', 'transpose', 'unsqueeze', 'var', 'zeros']
class DType:
    """
    Element type of a tensor: float32 (the default), float64, int64 (indices, labels) or bool (masks).
    
    Members:
    
      float32
    
      float64
    
      int64
    
      bool
    """
    __members__: typing.ClassVar[dict[str, DType]]
    bool: typing.ClassVar[DType]
    float32: typing.ClassVar[DType]
    float64: typing.ClassVar[DType]
    int64: typing.ClassVar[DType]
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: int) -> None:
        ...
    def __int__(self) -> int:
        ...
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: int) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class Generator:
    """
    A seeded random stream (layers' initialisation, randn, dropout).
    """
    def __init__(self, seed: int = 0) -> None:
        ...
    def manual_seed(self, seed: int) -> None:
        """
        Restarts the stream as if new with `seed`.
        """
    def seed(self) -> int:
        """
        The seed the stream started from.
        """
class Tensor:
    """
    An n-dimensional array of float32 or float64 that records operations for autograd.
    
    A Tensor is a handle: copies share the elements. NumPy views its memory without a copy (np.asarray(t)
    or t.numpy(); the array keeps the tensor's storage alive), and Tensor(array) / backprop.from_numpy(array)
    shares a C-contiguous float32/float64 array's memory (other arrays are copied).
    """
    requires_grad: bool
    @typing.overload
    def __add__(self, arg0: Tensor) -> Tensor:
        ...
    @typing.overload
    def __add__(self, arg0: float) -> Tensor:
        ...
    def __float__(self) -> float:
        ...
    def __getitem__(self, key: typing.Any) -> Tensor:
        ...
    def __init__(self, data: typing.Any, requires_grad: bool = False) -> None:
        """
        A tensor of `data` (a NumPy array, shared as from_numpy does, or a number or list, copied to float32).
        """
    def __len__(self) -> int:
        ...
    def __matmul__(self, arg0: Tensor) -> Tensor:
        ...
    @typing.overload
    def __mul__(self, arg0: Tensor) -> Tensor:
        ...
    @typing.overload
    def __mul__(self, arg0: float) -> Tensor:
        ...
    def __neg__(self) -> Tensor:
        ...
    def __pow__(self, arg0: float) -> Tensor:
        ...
    def __radd__(self, arg0: float) -> Tensor:
        ...
    def __repr__(self) -> str:
        ...
    def __rmul__(self, arg0: float) -> Tensor:
        ...
    def __rsub__(self, arg0: float) -> Tensor:
        ...
    def __rtruediv__(self, arg0: float) -> Tensor:
        ...
    @typing.overload
    def __sub__(self, arg0: Tensor) -> Tensor:
        ...
    @typing.overload
    def __sub__(self, arg0: float) -> Tensor:
        ...
    @typing.overload
    def __truediv__(self, arg0: Tensor) -> Tensor:
        ...
    @typing.overload
    def __truediv__(self, arg0: float) -> Tensor:
        ...
    def abs(self) -> Tensor:
        ...
    def argmax(self, dim: int = -1, keepdim: bool = False) -> Tensor:
        ...
    def backward(self, gradient: typing.Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """
        Backpropagates from this tensor, accumulating into the leaves' .grad.
        """
    def clone(self) -> Tensor:
        ...
    def copy_(self, src: typing.Any) -> Tensor:
        ...
    def detach(self) -> Tensor:
        ...
    def dim(self) -> int:
        ...
    def exp(self) -> Tensor:
        ...
    def fill_(self, value: float) -> Tensor:
        ...
    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        ...
    def item(self) -> float:
        """
        The value of a one-element tensor.
        """
    def log(self) -> Tensor:
        ...
    def mean(self, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
        ...
    def numel(self) -> int:
        ...
    def numpy(self) -> numpy.ndarray:
        """
        A NumPy array viewing this tensor's elements (no copy).
        """
    def relu(self) -> Tensor:
        ...
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        ...
    def reshape(self, *args) -> Tensor:
        ...
    def retain_grad(self) -> None:
        ...
    def sigmoid(self) -> Tensor:
        ...
    def size(self, dim: int) -> int:
        """
        Size of dimension `dim` (negative counts from the end).
        """
    def sqrt(self) -> Tensor:
        ...
    def sum(self, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
        ...
    def t(self) -> Tensor:
        ...
    def tanh(self) -> Tensor:
        ...
    def to(self, dtype: typing.Any) -> Tensor:
        ...
    def tolist(self) -> typing.Any:
        ...
    def view(self, *args) -> Tensor:
        ...
    def zero_(self) -> Tensor:
        ...
    def zero_grad(self) -> None:
        ...
    @property
    def T(self) -> Tensor:
        ...
    @property
    def dtype(self) -> DType:
        ...
    @property
    def grad(self) -> typing.Any:
        """
        The accumulated gradient (None until a backward reaches this tensor).
        """
    @grad.setter
    def grad(self, arg1: typing.Any) -> None:
        ...
    @property
    def grad_fn(self) -> typing.Any:
        """
        The name of the recorded op that produced this tensor (None for leaves).
        """
    @property
    def is_leaf(self) -> bool:
        ...
    @property
    def ndim(self) -> int:
        ...
    @property
    def shape(self) -> tuple:
        ...
class no_grad:
    """
    Context manager: nothing is recorded for autograd inside `with no_grad():`.
    """
    def __enter__(self) -> None:
        ...
    def __exit__(self, *args) -> bool:
        ...
    def __init__(self) -> None:
        ...
class EpochMetrics:
    """
    One epoch's figures (NaN where not measured).
    """
    def __repr__(self) -> str:
        ...
    @property
    def epoch(self) -> int:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def samples_per_second(self) -> float:
        ...
    @property
    def seconds(self) -> float:
        ...
    @property
    def train_accuracy(self) -> float:
        ...
    @property
    def train_loss(self) -> float:
        ...
    @property
    def updates(self) -> int:
        ...
    @property
    def val_accuracy(self) -> float:
        ...
    @property
    def val_loss(self) -> float:
        ...
class StepInfo:
    """
    What a callback's on_batch_end sees after each update.
    """
    @property
    def accuracy(self) -> float:
        ...
    @property
    def batch(self) -> int:
        ...
    @property
    def batch_size(self) -> int:
        ...
    @property
    def epoch(self) -> int:
        ...
    @property
    def loss(self) -> float:
        ...
    @property
    def num_batches(self) -> int:
        ...
    @property
    def step(self) -> int:
        ...
class History:
    """
    What fit() returns: the epochs trained and how training ended.
    """
    @property
    def best_epoch(self) -> int:
        ...
    @property
    def epochs(self) -> list[EpochMetrics]:
        ...
    @property
    def epochs_done(self) -> int:
        ...
    @property
    def interrupted(self) -> bool:
        ...
    @property
    def restored_best(self) -> bool:
        ...
    @property
    def stopped_early(self) -> bool:
        ...
    @property
    def total_updates(self) -> int:
        ...
class Evaluation:
    """
    Loss, accuracy and confusion matrix on a dataset.
    """
    @property
    def accuracy(self) -> float:
        ...
    @property
    def confusion(self) -> list[list[int]]:
        ...
    @property
    def examples(self) -> int:
        ...
    @property
    def loss(self) -> float:
        ...
    @property
    def per_class_accuracy(self) -> list[float]:
        ...
class Model:
    """
    A model file (backprop.load_model): the network with the preprocessing it was trained with. predict()
    takes the raw input `backprop predict` takes: pixel values 0..255 for an image model, feature columns for a
    table model.
    """
    def __repr__(self) -> str:
        ...
    def export_onnx(self, path: str, force: bool = False) -> None:
        """
        Writes the model as ONNX (opset 17), as `backprop export MODEL --onnx PATH` does.
        """
    def predict(self, x: numpy.ndarray, batch_size: int = 1000) -> numpy.ndarray:
        """
        The network's outputs (logits for a classifier, values for regression) for raw input x, as an array.
        """
    def predict_class(self, x: numpy.ndarray, batch_size: int = 1000) -> numpy.ndarray:
        """
        The index of the most probable class of each row (class_names gives its name).
        """
    def predict_proba(self, x: numpy.ndarray, batch_size: int = 1000) -> numpy.ndarray:
        """
        Class probabilities (softmax of the outputs).
        """
    def preprocess(self, x: numpy.ndarray) -> Tensor:
        """
        Raw input [N, D] (or images [N, rows, cols]) -> the tensor the network takes.
        """
    @property
    def class_names(self) -> list[str]:
        ...
    @property
    def config(self) -> str:
        """
        The run configuration (TOML text; empty when unknown).
        """
    @property
    def feature_names(self) -> list[str]:
        ...
    @property
    def input_kind(self) -> str:
        ...
    @property
    def input_shape(self) -> list[int]:
        ...
    @property
    def module(self) -> nn.Module:
        """
        The network (eval mode).
        """
    @property
    def path(self) -> str:
        ...
    @property
    def pixel_scale(self) -> float:
        ...
    @property
    def task(self) -> str:
        ...
    @property
    def training(self) -> typing.Any:
        """
        The training summary stored in the file, as a dict.
        """
def abs(arg0: Tensor) -> Tensor:
    ...
def adaptive_avg_pool2d(input: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """
    Mean over output_size windows; 1 gives the global average.
    """
def add(arg0: Tensor, arg1: Tensor) -> Tensor:
    ...
def allclose(a: Tensor, b: Tensor, rtol: float = 1e-05, atol: float = 1e-08) -> bool:
    ...
def amax(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def amin(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def arange(start: float, end: typing.Any = None, step: float = 1.0, dtype: typing.Any = DType.float32) -> Tensor:
    ...
def argmax(x: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    ...
def argmin(x: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    ...
def avg_pool2d(input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """
    Mean of each window (stride None: the kernel size; the divisor counts the padding unless count_include_pad is False).
    """
def cat(tensors: list[Tensor], dim: int = 0) -> Tensor:
    ...
def chunk(x: Tensor, chunks: int, dim: int = 0) -> list[Tensor]:
    ...
def clamp(x: Tensor, min: float, max: float) -> Tensor:
    ...
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int] = 1, padding: int | tuple[int] | str = 0, dilation: int | tuple[int] = 1, groups: int = 1) -> Tensor:
    """
    1-D cross-correlation: input [N, C, L], weight [O, C / groups, k] -> [N, O, OL].
    """
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """
    2-D cross-correlation (torch.nn.functional.conv2d): input [N, C, H, W], weight [O, C / groups, kh, kw],
    bias [O] -> [N, O, OH, OW]. Sizes are an int or (h, w); padding also "same" (stride 1) or "valid".
    """
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, output_padding: int | tuple[int, int] = 0, groups: int = 1, dilation: int | tuple[int, int] = 1) -> Tensor:
    """
    The transposed convolution (torch.nn.functional.conv_transpose2d): input [N, C, H, W], weight [C, O / groups, kh, kw].
    """
def div(arg0: Tensor, arg1: Tensor) -> Tensor:
    ...
def embedding(input: typing.Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """
    Rows of weight [V, D] at the indices `input` (any shape; an int64 Tensor, a NumPy integer array, or whole
    numbers) -> input.shape + (D,). The row padding_idx gets no gradient.
    """
def evaluate(model: nn.Module, loss: loss.Loss, x: typing.Any, y: typing.Any, batch_size: int = 1000, task: str = 'classification', num_classes: int = 0) -> Evaluation:
    """
    Loss, accuracy and confusion matrix in eval mode, without recording a graph.
    """
def exp(arg0: Tensor) -> Tensor:
    ...
def explain(sizes: list[int] = [2, 3, 2], lr: float = 0.5, seed: int = 1, x: list[float] = [], y: list[float] = []) -> str:
    """
    `backprop explain`'s text: one step of the delta rule by hand, every number, checked against autograd.
    """
def explain_repeated(n: int) -> str:
    """
    `backprop explain --repeated N`: backpropagation as dynamic programming, counted.
    """
def export_onnx(module: nn.Module, path: str, input_shape: list[int], metadata: dict[str, str] = {}, force: bool = False) -> None:
    """
    Writes the network's inference form as an ONNX model (opset 17, docs/export.md) for inputs of one example's
    shape `input_shape` (e.g. [784], [1, 28, 28], or [L] token ids for a network that starts with an Embedding,
    whose ONNX input is then int64); the batch dimension is left free. `metadata` adds metadata_props entries.
    Raises ValueError naming a module that has no ONNX form; nothing is written then.
    """
def fit(model: nn.Module, loss: loss.Loss, optimizer: optim.Optimizer, x: typing.Any, y: typing.Any, epochs: int = 10, batch_size: int = 64, validation: typing.Any = None, shuffle: bool = True, seed: int = 0, drop_last: bool = False, early_stopping_patience: int = 0, restore_best: bool = True, l1: float = 0.0, l2: float = 0.0, clip_grad_norm: float = 0.0, callbacks: list[callbacks.Callback] = [], task: str = 'classification', num_classes: int = 0) -> History:
    """
    Trains `model` on features x [N, D] and targets y with the library's training loop (backprop/train.hpp).
    Classification targets are class indices (any integer or float array; num_classes defaults to max + 1);
    task="regression" takes real-valued targets. validation=(x_val, y_val) adds validation loss and accuracy to
    every epoch. Returns a History. Runs without the GIL; Ctrl-C stops it after the current update.
    """
def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    ...
def from_numpy(array: numpy.ndarray) -> Tensor:
    """
    A Tensor for a NumPy array. Shares the array's memory (no copy) when it is C-contiguous, aligned,
    writeable, in native byte order and of dtype float32 or float64: writes through either are seen by both,
    and the tensor keeps the array alive. Any other array of numbers (a transposed or sliced view, integers,
    booleans, float16) is copied into a new float32 tensor (float64 stays float64). Raises ValueError for other
    dtypes.
    """
def full(shape: list[int], value: float, dtype: typing.Any = DType.float32) -> Tensor:
    ...
def grad(outputs: typing.Any, inputs: typing.Any, grad_outputs: typing.Any = None, retain_graph: bool | None = None, create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """
    The gradients of sum_i <grad_outputs[i], outputs[i]> with respect to each input, as a tuple (None for an
    unused input with allow_unused). With create_graph=True the gradients are themselves differentiable.
    """
def is_grad_enabled() -> bool:
    ...
def leaky_relu(x: Tensor, slope: float = 0.01) -> Tensor:
    ...
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """
    x @ weight.T + bias.
    """
def load_fashion_mnist(split: str = 'train', limit: int = 0, dir: str = '/usr/share/datasets/fashion-mnist') -> tuple:
    """
    (features float32 [N, 784] in [0, 1], labels int64 [N]) of Fashion-MNIST; limit > 0 reads the first rows.
    """
def load_model(path: str) -> Model:
    """
    Reads a model file (written by `backprop train` or save_model, or a checkpoint) with its preprocessing.
    """
def load_module(path: str) -> nn.Module:
    """
    The network of a model file alone, in eval mode.
    """
def log(arg0: Tensor) -> Tensor:
    ...
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    ...
def logsumexp(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def manual_seed(seed: int) -> None:
    """
    Reseeds the default generator (used when a layer or factory is given none).
    """
def matmul(arg0: Tensor, arg1: Tensor) -> Tensor:
    """
    Matrix product [M, K] @ [K, N] (3-D operands are batched).
    """
def max_pool2d(input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, ceil_mode: bool = False, return_indices: bool = False) -> typing.Any:
    """
    Largest value of each window (stride None: the kernel size). With return_indices, (values, indices): each
    maximum's flat position h * W + w in its input plane, int64, as PyTorch gives them.
    """
def maximum(arg0: Tensor, arg1: Tensor) -> Tensor:
    ...
def mean(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def mul(arg0: Tensor, arg1: Tensor) -> Tensor:
    ...
def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    ...
def neg(arg0: Tensor) -> Tensor:
    ...
def norm(x: Tensor, p: float = 2.0, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def one_hot(labels: Tensor, num_classes: int, dtype: typing.Any = DType.float32) -> Tensor:
    ...
def ones(shape: list[int], dtype: typing.Any = DType.float32) -> Tensor:
    ...
def permute(x: Tensor, dims: list[int]) -> Tensor:
    ...
def pow(x: Tensor, exponent: float) -> Tensor:
    ...
def predict(model: nn.Module, x: typing.Any, batch_size: int = 1000) -> Tensor:
    """
    The model's outputs for x [N, D], in eval mode, batch by batch, without recording a graph.
    """
def rand(shape: list[int], dtype: typing.Any = DType.float32, generator: Generator = None) -> Tensor:
    """
    Uniform values in [0, 1).
    """
def randn(shape: list[int], dtype: typing.Any = DType.float32, generator: Generator = None) -> Tensor:
    """
    Standard normal values.
    """
def read_idx(path: str, limit: int = 0) -> numpy.ndarray[numpy.uint8]:
    """
    An IDX file (raw or gzip) as a uint8 array of its dims.
    """
def relu(arg0: Tensor) -> Tensor:
    ...
def reshape(x: Tensor, shape: list[int]) -> Tensor:
    ...
def save_model(path: str, module: nn.Module, input_shape: list[int] = []) -> None:
    """
    Saves any network of built-in layers (its module tree and tensors) crash-safely; load_module reads it back.
    """
def set_grad_enabled(enabled: bool) -> None:
    ...
def sigmoid(arg0: Tensor) -> Tensor:
    ...
def sign(arg0: Tensor) -> Tensor:
    ...
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    ...
def split(x: Tensor, split_size: int, dim: int = 0) -> list[Tensor]:
    ...
def sqrt(arg0: Tensor) -> Tensor:
    ...
def squeeze(x: Tensor, dim: typing.Any = None) -> Tensor:
    ...
def stack(tensors: list[Tensor], dim: int = 0) -> Tensor:
    ...
def std(x: Tensor, dim: typing.Any = None, correction: float = 1.0, keepdim: bool = False) -> Tensor:
    ...
def sub(arg0: Tensor, arg1: Tensor) -> Tensor:
    ...
def sum(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    ...
def tanh(arg0: Tensor) -> Tensor:
    ...
def tensor(data: typing.Any, dtype: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    A new tensor holding a copy of `data` (numbers, lists or arrays; float32 unless `dtype` or a float64 array says otherwise).
    """
def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    ...
def unsqueeze(x: Tensor, dim: int) -> Tensor:
    ...
def var(x: Tensor, dim: typing.Any = None, correction: float = 1.0, keepdim: bool = False) -> Tensor:
    ...
def zeros(shape: list[int], dtype: typing.Any = DType.float32) -> Tensor:
    ...
FASHION_MNIST_CLASSES: list = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
__version__: str = '0.1.0'
float32: DType
float64: DType
int64: DType
