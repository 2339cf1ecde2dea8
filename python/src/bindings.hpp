// The pieces shared by the files of the extension module backprop._backprop (python/src/*.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <backprop/backprop.hpp>

namespace py = pybind11;
namespace bp = backprop;

namespace pybp {

/// A C-contiguous, aligned, writeable float32/float64 array in native byte order becomes a Tensor sharing its
/// memory (the tensor keeps the array alive); any other array of numbers (other strides, integers, booleans,
/// float16) is copied into a new float32 tensor (float64 stays float64). Throws bp::ValueError naming the dtype
/// for anything else (strings, objects, complex numbers) or a rank above 8.
bp::Tensor from_numpy(const py::array& a);
/// Tensor as is; a NumPy array through from_numpy; a Python number or (nested) list through NumPy, copied.
bp::Tensor to_tensor(const py::handle& obj, const char* what);
/// Indices (token ids, positions): a Tensor as is; a NumPy array or list of integers or booleans copied into an
/// int64 tensor, exactly; anything else as to_tensor (floats holding whole numbers).
bp::Tensor to_indices(const py::handle& obj, const char* what);
/// A mask: None gives an undefined tensor; a Tensor as is; a NumPy array or list of booleans copied into a
/// bool tensor; anything else as to_tensor.
bp::Tensor to_mask(const py::handle& obj, const char* what);
/// The tensor, or None when it is undefined (an absent bias, a gradient not yet computed).
py::object maybe(const bp::Tensor& t);
/// A NumPy array viewing t's elements (no copy); it keeps t's storage alive.
py::array to_numpy(const bp::Tensor& t);
/// The generator layers and random factories draw from when none is given (backprop.manual_seed sets it).
bp::Generator& default_generator();
/// A dtype argument: backprop.float32 / float64, a NumPy dtype or its name ("float32", "f64", ...).
bp::DType to_dtype(const py::handle& obj);

void bind_errors(py::module_& m);
void bind_tensor(py::module_& m);
void bind_nn(py::module_& m);
void bind_layers(py::module_& m);
void bind_train(py::module_& m);

}  // namespace pybp
