// backprop._backprop: the extension module behind the Python package `backprop` (python/backprop/__init__.py
// re-exports it). This file: the module itself and the exceptions; tensor.cpp, nn.cpp, layers.cpp and
// train.cpp bind the rest.
#include <Python.h>

#include "bindings.hpp"

namespace pybp {

bp::Generator& default_generator() {
  static bp::Generator gen(0);
  return gen;
}

namespace {

// A Python exception class `backprop.<name>` deriving from `bases` (a tuple), added to the module.
py::object new_exception(py::module_& m, const char* name, const py::tuple& bases, const char* doc) {
  const std::string qualified = std::string("backprop.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  py::object cls = py::reinterpret_steal<py::object>(type);
  m.attr(name) = cls;
  return cls;
}

}  // namespace

void bind_errors(py::module_& m) {
  // Each of the library's error types becomes a subclass of backprop.Error and of the builtin exception a
  // Python user catches for it, so `except ValueError` works as well as `except backprop.ShapeError`.
  static py::object error, shape, dtype, index, value, autograd, file, config, diverged, oom;
  py::handle builtins_value = PyExc_ValueError, builtins_type = PyExc_TypeError,
             builtins_index = PyExc_IndexError, builtins_memory = PyExc_MemoryError;
  error = new_exception(m, "Error", py::make_tuple(py::handle(PyExc_RuntimeError)),
                        "Base of every error the library raises (a RuntimeError).");
  shape = new_exception(m, "ShapeError", py::make_tuple(error, builtins_value),
                        "Shapes that do not fit together (also a ValueError).");
  dtype = new_exception(m, "DTypeError", py::make_tuple(error, builtins_type),
                        "Mixed or unsupported dtypes (also a TypeError).");
  index = new_exception(m, "IndexError", py::make_tuple(error, builtins_index),
                        "An index or axis out of range (also the builtin IndexError).");
  value = new_exception(m, "ValueError", py::make_tuple(error, builtins_value),
                        "A value out of its allowed range (also the builtin ValueError).");
  autograd = new_exception(m, "AutogradError", py::make_tuple(error),
                           "Misuse of the autograd engine (a RuntimeError).");
  file = new_exception(m, "FileError", py::make_tuple(error),
                       "A file that cannot be read or written, or whose content is not as expected.");
  config =
      new_exception(m, "ConfigError", py::make_tuple(error, builtins_value),
                    "A configuration value that is missing, unknown or out of range (also a ValueError).");
  diverged = new_exception(m, "DivergedError", py::make_tuple(error),
                           "Training whose loss or gradients became NaN or infinite.");
  oom = new_exception(m, "OutOfMemoryError", py::make_tuple(error, builtins_memory),
                      "Memory the system would not give (also a MemoryError).");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const bp::ShapeError& e) {
      PyErr_SetString(shape.ptr(), e.what());
    } catch (const bp::DTypeError& e) {
      PyErr_SetString(dtype.ptr(), e.what());
    } catch (const bp::IndexError& e) {
      PyErr_SetString(index.ptr(), e.what());
    } catch (const bp::ValueError& e) {
      PyErr_SetString(value.ptr(), e.what());
    } catch (const bp::AutogradError& e) {
      PyErr_SetString(autograd.ptr(), e.what());
    } catch (const bp::FileError& e) {
      PyErr_SetString(file.ptr(), e.what());
    } catch (const bp::ConfigError& e) {
      PyErr_SetString(config.ptr(), e.what());
    } catch (const bp::DivergedError& e) {
      PyErr_SetString(diverged.ptr(), e.what());
    } catch (const bp::OutOfMemoryError& e) {
      PyErr_SetString(oom.ptr(), e.what());
    } catch (const bp::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });
}

}  // namespace pybp

PYBIND11_MODULE(_backprop, m) {
  m.doc() = "backprop: tensors, autograd, layers and training of the backprop C++ library, with NumPy.";
  m.attr("__version__") = bp::version;
  pybp::bind_errors(m);
  pybp::bind_tensor(m);
  pybp::bind_nn(m);
  pybp::bind_layers(m);
  pybp::bind_train(m);
}
