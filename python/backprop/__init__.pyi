"""
backprop: tensors, autograd, layers and training of the backprop C++ library, with NumPy.

    import backprop as bp
    model = bp.load_model("model.safetensors")           # written by `backprop train`
    probs = model.predict_proba(images)                   # raw pixels [N, 784], a NumPy array

See docs/python.md for a walk-through.
"""
from __future__ import annotations
from backprop._backprop import DType
from backprop._backprop import EpochMetrics
from backprop._backprop import Evaluation
from backprop._backprop import Generator
from backprop._backprop import History
from backprop._backprop import Model
from backprop._backprop import StepInfo
from backprop._backprop import Tensor
from backprop._backprop import abs
from backprop._backprop import adaptive_avg_pool2d
from backprop._backprop import add
from backprop._backprop import allclose
from backprop._backprop import amax
from backprop._backprop import amin
from backprop._backprop import arange
from backprop._backprop import argmax
from backprop._backprop import argmin
from backprop._backprop import avg_pool2d
from backprop._backprop import callbacks
from backprop._backprop import cat
from backprop._backprop import chunk
from backprop._backprop import clamp
from backprop._backprop import conv1d
from backprop._backprop import conv2d
from backprop._backprop import conv_transpose2d
from backprop._backprop import div
from backprop._backprop import embedding
from backprop._backprop import evaluate
from backprop._backprop import exp
from backprop._backprop import explain
from backprop._backprop import explain_repeated
from backprop._backprop import export_onnx
from backprop._backprop import fit
from backprop._backprop import flatten
from backprop._backprop import from_numpy
from backprop._backprop import full
from backprop._backprop import grad
from backprop._backprop import is_grad_enabled
from backprop._backprop import leaky_relu
from backprop._backprop import linear
from backprop._backprop import load_fashion_mnist
from backprop._backprop import load_model
from backprop._backprop import load_module
from backprop._backprop import log
from backprop._backprop import log_softmax
from backprop._backprop import logsumexp
from backprop._backprop import loss
from backprop._backprop import manual_seed
from backprop._backprop import matmul
from backprop._backprop import max_pool2d
from backprop._backprop import maximum
from backprop._backprop import mean
from backprop._backprop import mul
from backprop._backprop import narrow
from backprop._backprop import neg
from backprop._backprop import nn
from backprop._backprop import no_grad
from backprop._backprop import norm
from backprop._backprop import one_hot
from backprop._backprop import ones
from backprop._backprop import optim
from backprop._backprop import permute
from backprop._backprop import pow
from backprop._backprop import predict
from backprop._backprop import rand
from backprop._backprop import randn
from backprop._backprop import read_idx
from backprop._backprop import relu
from backprop._backprop import reshape
from backprop._backprop import save_model
from backprop._backprop import set_grad_enabled
from backprop._backprop import sigmoid
from backprop._backprop import sign
from backprop._backprop import softmax
from backprop._backprop import split
from backprop._backprop import sqrt
from backprop._backprop import squeeze
from backprop._backprop import stack
from backprop._backprop import std
from backprop._backprop import sub
from backprop._backprop import sum
from backprop._backprop import tanh
from backprop._backprop import tensor
from backprop._backprop import transpose
from backprop._backprop import unsqueeze
from backprop._backprop import var
from backprop._backprop import zeros
from . import _backprop
__all__: list = ['AutogradError', 'ConfigError', 'DType', 'DTypeError', 'DivergedError', 'EpochMetrics', 'Error', 'Evaluation', 'FASHION_MNIST_CLASSES', 'FileError', 'Generator', 'History', 'Model', 'OutOfMemoryError', 'ShapeError', 'StepInfo', 'Tensor', 'abs', 'adaptive_avg_pool2d', 'add', 'allclose', 'amax', 'amin', 'arange', 'argmax', 'argmin', 'avg_pool2d', 'callbacks', 'cat', 'chunk', 'clamp', 'conv1d', 'conv2d', 'conv_transpose2d', 'div', 'embedding', 'evaluate', 'exp', 'explain', 'explain_repeated', 'export_onnx', 'fit', 'flatten', 'float32', 'float64', 'from_numpy', 'full', 'grad', 'int64', 'is_grad_enabled', 'leaky_relu', 'linear', 'load_fashion_mnist', 'load_model', 'load_module', 'log', 'log_softmax', 'logsumexp', 'loss', 'manual_seed', 'matmul', 'max_pool2d', 'maximum', 'mean', 'mul', 'narrow', 'neg', 'nn', 'no_grad', 'norm', 'one_hot', 'ones', 'optim', 'permute', 'pow', 'predict', 'rand', 'randn', 'read_idx', 'relu', 'reshape', 'save_model', 'set_grad_enabled', 'sigmoid', 'sign', 'softmax', 'split', 'sqrt', 'squeeze', 'stack', 'std', 'sub', 'sum', 'tanh', 'tensor', 'transpose', 'unsqueeze', 'var', 'zeros']
class Error(RuntimeError):
    """
    Base of every error the library raises (a RuntimeError).
    """
class DTypeError(Error, TypeError):
    """
    Mixed or unsupported dtypes (also a TypeError).
    """
class AutogradError(Error):
    """
    Misuse of the autograd engine (a RuntimeError).
    """
class FileError(Error):
    """
    A file that cannot be read or written, or whose content is not as expected.
    """
class DivergedError(Error):
    """
    Training whose loss or gradients became NaN or infinite.
    """
class OutOfMemoryError(Error, MemoryError):
    """
    Memory the system would not give (also a MemoryError).
    """
class ShapeError(Error, ValueError):
    """
    Shapes that do not fit together (also a ValueError).
    """
class IndexError(Error, IndexError):
    """
    An index or axis out of range (also the builtin IndexError).
    """
class ValueError(Error, ValueError):
    """
    A value out of its allowed range (also the builtin ValueError).
    """
class ConfigError(Error, ValueError):
    """
    A configuration value that is missing, unknown or out of range (also a ValueError).
    """
FASHION_MNIST_CLASSES: list = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
__version__: str = '0.1.0'
float32: _backprop.DType
float64: _backprop.DType
int64: _backprop.DType
