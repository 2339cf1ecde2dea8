"""backprop: tensors, autograd, layers and training of the backprop C++ library, with NumPy.

    import backprop as bp
    model = bp.load_model("model.safetensors")           # written by `backprop train`
    probs = model.predict_proba(images)                   # raw pixels [N, 784], a NumPy array

See docs/python.md for a walk-through.
"""
from ._backprop import *  # noqa: F401,F403
from ._backprop import (  # the submodules and the exceptions, which `import *` leaves out
    Error, ShapeError, DTypeError, IndexError, ValueError, AutogradError, FileError, ConfigError,
    DivergedError, OutOfMemoryError, __version__, callbacks, loss, nn, optim,
)

from . import _backprop

# `from backprop import *` leaves out backprop.IndexError and backprop.ValueError: they would shadow the
# builtins they subclass.
__all__ = [n for n in dir(_backprop) if not n.startswith("_") and n not in ("IndexError", "ValueError")]
