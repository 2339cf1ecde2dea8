// backprop.Tensor with NumPy interchange, the ops and operators, and autograd (grad, no_grad).
#include <bit>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"

namespace pybp {

namespace {

bool native_order(const py::dtype& dt) {
  const char order = dt.byteorder();
  return order == '=' || order == '|' || (order == '<' && std::endian::native == std::endian::little);
}

// Gives the storage back to the allocator's bookkeeping shape and releases the NumPy array it borrowed.
struct BorrowedArray {
  void* own_data;
  std::size_t own_nbytes;
  PyObject* array;
  void operator()(bp::Storage* s) const {
    s->data = own_data;
    s->nbytes = own_nbytes;
    delete s;
    if (Py_IsInitialized() != 0) {
      py::gil_scoped_acquire gil;
      Py_DECREF(array);
    }
  }
};

std::string dtype_name(const py::dtype& dt) {
  return py::str(dt.attr("name"));
}

bp::Shape shape_of(const py::array& a) {
  return bp::Shape(a.shape(), a.shape() + a.ndim());
}

template <class T>
bp::Tensor copy_into(const py::array& a, bp::DType dtype) {
  auto c = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!c) throw py::error_already_set();
  bp::Tensor t(shape_of(a), dtype);
  std::copy(c.data(), c.data() + c.size(), t.data<T>());
  return t;
}

bp::Dims to_dims(const py::handle& dim) {
  if (py::isinstance<py::int_>(dim)) return {dim.cast<std::int64_t>()};
  return dim.cast<bp::Dims>();
}

// x[key] for ints and slices (step > 0), one per leading dim, as in NumPy; `...` and None are not supported.
bp::Tensor getitem(const bp::Tensor& t, const py::object& key) {
  py::tuple keys =
      py::isinstance<py::tuple>(key) ? py::reinterpret_borrow<py::tuple>(key) : py::make_tuple(key);
  BP_CHECK(static_cast<std::int64_t>(keys.size()) <= t.dim(), IndexError, "Tensor[...]: ", keys.size(),
           " indices for a tensor of shape ", t.shape());
  bp::Tensor x = t;
  std::int64_t dim = 0;
  for (const py::handle k : keys) {
    const std::int64_t size = x.size(dim);
    if (py::isinstance<py::int_>(k)) {
      std::int64_t i = k.cast<std::int64_t>();
      BP_CHECK(i >= -size && i < size, IndexError, "Tensor[...]: index ", i, " is out of range for dim ", dim,
               " of size ", size, " (shape ", x.shape(), ")");
      if (i < 0) i += size;
      x = bp::squeeze(bp::narrow(x, dim, i, 1), dim);
    } else if (py::isinstance<py::slice>(k)) {
      std::size_t start = 0, stop = 0, step = 0, length = 0;
      if (!py::reinterpret_borrow<py::slice>(k).compute(static_cast<std::size_t>(size), &start, &stop, &step,
                                                        &length))
        throw py::error_already_set();
      const auto s = static_cast<std::int64_t>(step);
      BP_CHECK(s > 0, ValueError, "Tensor[...]: slice steps must be positive, got ", s);
      x = bp::slice(x, dim, static_cast<std::int64_t>(start),
                    static_cast<std::int64_t>(start) + static_cast<std::int64_t>(length) * s, s);
      ++dim;
    } else {
      throw bp::IndexError("Tensor[...]: indices are ints and slices, got " +
                           std::string(py::str(py::type::of(k).attr("__name__"))));
    }
  }
  return x;
}

bp::Tensors to_tensors(const py::handle& obj, const char* what) {
  if (py::isinstance<bp::Tensor>(obj)) return {obj.cast<bp::Tensor>()};
  bp::Tensors out;
  for (const py::handle h : obj) out.push_back(to_tensor(h, what));
  return out;
}

// obj as a NumPy array: itself, or np.asarray(obj) (lists, numbers).
py::array as_array(const py::handle& obj, const char* what) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return py::module_::import("numpy").attr("asarray")(obj);
  } catch (py::error_already_set&) {
    throw bp::ValueError(std::string(what) + ": expected a Tensor, a NumPy array or a list of numbers, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
}

}  // namespace

py::object maybe(const bp::Tensor& t) {
  return t.defined() ? py::cast(t) : py::none();
}

bp::Tensor to_indices(const py::handle& obj, const char* what) {
  if (py::isinstance<bp::Tensor>(obj)) return obj.cast<bp::Tensor>();
  const py::array a = as_array(obj, what);
  const char kind = a.dtype().kind();
  if (kind == 'i' || kind == 'u' || kind == 'b') return copy_into<std::int64_t>(a, bp::i64);
  return to_tensor(obj, what);
}

bp::Tensor to_mask(const py::handle& obj, const char* what) {
  if (obj.is_none()) return {};
  if (py::isinstance<bp::Tensor>(obj)) return obj.cast<bp::Tensor>();
  const py::array a = as_array(obj, what);
  if (a.dtype().kind() == 'b') return copy_into<bool>(a, bp::bool_);
  return to_tensor(obj, what);
}

bp::Tensor from_numpy(const py::array& a) {
  BP_CHECK(a.ndim() <= static_cast<py::ssize_t>(bp::kMaxRank), ValueError, "from_numpy: an array of rank ",
           a.ndim(), "; tensors have at most ", bp::kMaxRank, " dimensions");
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const bool f32 = kind == 'f' && dt.itemsize() == 4, f64 = kind == 'f' && dt.itemsize() == 8;
  const int flags = a.flags();
  const bool shareable = (f32 || f64) && native_order(dt) && (flags & py::array::c_style) != 0 &&
                         (flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0 && a.writeable();
  if (shareable) {
    auto* s = new bp::Storage(0);
    BorrowedArray owner{s->data, s->nbytes, a.ptr()};
    s->data = const_cast<void*>(a.data());
    s->nbytes = static_cast<std::size_t>(a.nbytes());
    Py_INCREF(a.ptr());
    return bp::Tensor(std::shared_ptr<bp::Storage>(s, owner), shape_of(a), f32 ? bp::f32 : bp::f64);
  }
  if (f64) return copy_into<double>(a, bp::f64);
  BP_CHECK(kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b', ValueError,
           "from_numpy: expected an array of numbers (float32 or float64; integers, booleans and float16 are "
           "converted to float32), got dtype ",
           dtype_name(dt));
  return copy_into<float>(a, bp::f32);
}

bp::Tensor to_tensor(const py::handle& obj, const char* what) {
  if (py::isinstance<bp::Tensor>(obj)) return obj.cast<bp::Tensor>();
  if (py::isinstance<py::array>(obj)) return from_numpy(py::reinterpret_borrow<py::array>(obj));
  const py::array a = as_array(obj, what);
  // Python floats arrive as float64; a plain list becomes float32, the library's default.
  if (a.dtype().kind() == 'f' && !py::isinstance<py::array>(obj)) return copy_into<float>(a, bp::f32);
  return from_numpy(a);
}

// The tensor's layout in NumPy's terms: its first element, and shape and strides in bytes (a view's too).
struct Layout {
  void* data;
  std::vector<py::ssize_t> shape, strides;
  py::dtype dtype;
  std::string format;
};

Layout layout_of(const bp::Tensor& t) {
  const auto item = static_cast<py::ssize_t>(bp::dtype_size(t.dtype()));
  Layout l{static_cast<char*>(t.storage()->data) + t.storage_offset() * item,
           {},
           {},
           py::dtype::of<float>(),
           py::format_descriptor<float>::format()};
  for (std::int64_t d = 0; d < t.dim(); ++d) {
    l.shape.push_back(static_cast<py::ssize_t>(t.size(d)));
    l.strides.push_back(static_cast<py::ssize_t>(t.stride(d)) * item);
  }
  switch (t.dtype()) {
    case bp::DType::f32:
      break;
    case bp::DType::f64:
      l.dtype = py::dtype::of<double>(), l.format = py::format_descriptor<double>::format();
      break;
    case bp::DType::i64:
      l.dtype = py::dtype::of<std::int64_t>(), l.format = py::format_descriptor<std::int64_t>::format();
      break;
    case bp::DType::bool_:
      l.dtype = py::dtype::of<bool>(), l.format = py::format_descriptor<bool>::format();
      break;
  }
  return l;
}

py::array to_numpy(const bp::Tensor& t) {
  BP_CHECK(t.defined(), ValueError, "numpy(): the tensor is undefined");
  const Layout l = layout_of(t);
  return py::array(l.dtype, l.shape, l.strides, l.data, py::cast(t));
}

bp::DType to_dtype(const py::handle& obj) {
  if (py::isinstance<bp::DType>(obj)) return obj.cast<bp::DType>();
  const py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  if (dt.kind() == 'f' && dt.itemsize() == 4) return bp::f32;
  if (dt.kind() == 'f' && dt.itemsize() == 8) return bp::f64;
  if (dt.kind() == 'i' && dt.itemsize() == 8) return bp::i64;
  if (dt.kind() == 'b') return bp::bool_;
  throw bp::DTypeError("dtype: tensors hold float32, float64, int64 or bool, got " + dtype_name(dt));
}

void bind_tensor(py::module_& m) {
  py::enum_<bp::DType>(m, "DType",
                       "Element type of a tensor: float32 (the default), float64, int64 (indices, labels) or "
                       "bool (masks).")
      .value("float32", bp::f32)
      .value("float64", bp::f64)
      .value("int64", bp::i64)
      .value("bool", bp::bool_);
  m.attr("float32") = bp::f32;
  m.attr("float64") = bp::f64;
  m.attr("int64") = bp::i64;

  py::class_<bp::Generator>(m, "Generator",
                            "A seeded random stream (layers' initialisation, randn, dropout).")
      .def(py::init<std::uint64_t>(), py::arg("seed") = 0)
      .def("manual_seed", &bp::Generator::seed_, py::arg("seed"),
           "Restarts the stream as if new with `seed`.")
      .def("seed", &bp::Generator::seed, "The seed the stream started from.");
  m.def(
      "manual_seed", [](std::uint64_t seed) { default_generator().seed_(seed); }, py::arg("seed"),
      "Reseeds the default generator (used when a layer or factory is given none).");

  py::class_<bp::Tensor> t(m, "Tensor", py::buffer_protocol(), R"doc(
An n-dimensional array of float32 or float64 that records operations for autograd.

A Tensor is a handle: copies share the elements. NumPy views its memory without a copy (np.asarray(t)
or t.numpy(); the array keeps the tensor's storage alive), and Tensor(array) / backprop.from_numpy(array)
shares a C-contiguous float32/float64 array's memory (other arrays are copied).)doc");
  t.def(py::init([](const py::object& data, bool requires_grad) {
          bp::Tensor x = to_tensor(data, "Tensor");
          if (requires_grad) x.requires_grad_();
          return x;
        }),
        py::arg("data"), py::arg("requires_grad") = false,
        "A tensor of `data` (a NumPy array, shared as from_numpy does, or a number or list, copied to "
        "float32).")
      .def_buffer([](bp::Tensor& x) {
        BP_CHECK(x.defined(), ValueError, "buffer: the tensor is undefined");
        const Layout l = layout_of(x);
        return py::buffer_info(l.data, static_cast<py::ssize_t>(bp::dtype_size(x.dtype())), l.format,
                               static_cast<py::ssize_t>(l.shape.size()), l.shape, l.strides);
      })
      .def("numpy", &to_numpy, "A NumPy array viewing this tensor's elements (no copy).")
      .def_property_readonly("shape", [](const bp::Tensor& x) { return py::tuple(py::cast(x.shape())); })
      .def_property_readonly("dtype", &bp::Tensor::dtype)
      .def_property_readonly("ndim", &bp::Tensor::dim)
      .def("dim", &bp::Tensor::dim)
      .def("size", &bp::Tensor::size, py::arg("dim"),
           "Size of dimension `dim` (negative counts from the end).")
      .def("numel", &bp::Tensor::numel)
      .def("item", &bp::Tensor::item, "The value of a one-element tensor.")
      .def("tolist", [](const bp::Tensor& x) { return to_numpy(x).attr("tolist")(); })
      .def("__len__",
           [](const bp::Tensor& x) {
             BP_CHECK(x.dim() > 0, ValueError, "len(): a 0-d tensor has no length");
             return x.size(0);
           })
      .def("__float__", &bp::Tensor::item)
      .def("__getitem__", &getitem, py::arg("key"))
      .def("__repr__",
           [](const bp::Tensor& x) {
             std::ostringstream out;
             out << x;
             return out.str();
           })
      .def("reshape",
           [](const bp::Tensor& x, py::args shape) {
             if (shape.size() == 1 && !py::isinstance<py::int_>(shape[0]))
               return x.reshape(shape[0].cast<bp::Shape>());
             return x.reshape(shape.cast<bp::Shape>());
           })
      .def("view",
           [](const bp::Tensor& x, py::args shape) {
             if (shape.size() == 1 && !py::isinstance<py::int_>(shape[0]))
               return x.reshape(shape[0].cast<bp::Shape>());
             return x.reshape(shape.cast<bp::Shape>());
           })
      .def("flatten", py::overload_cast<const bp::Tensor&, std::int64_t, std::int64_t>(&bp::flatten),
           py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def(
          "to", [](const bp::Tensor& x, const py::object& dtype) { return x.to(to_dtype(dtype)); },
          py::arg("dtype"))
      .def("clone", &bp::Tensor::clone)
      .def("detach", &bp::Tensor::detach)
      .def("t", &bp::Tensor::t)
      .def_property_readonly("T", &bp::Tensor::t)
      .def(
          "sum",
          [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
            return dim.is_none() ? bp::sum(x) : bp::sum(x, to_dims(dim), keepdim);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "mean",
          [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
            return dim.is_none() ? bp::mean(x) : bp::mean(x, to_dims(dim), keepdim);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def("exp", [](const bp::Tensor& x) { return bp::exp(x); })
      .def("log", [](const bp::Tensor& x) { return bp::log(x); })
      .def("relu", [](const bp::Tensor& x) { return bp::relu(x); })
      .def("sigmoid", [](const bp::Tensor& x) { return bp::sigmoid(x); })
      .def("tanh", [](const bp::Tensor& x) { return bp::tanh(x); })
      .def("abs", [](const bp::Tensor& x) { return bp::abs(x); })
      .def("sqrt", [](const bp::Tensor& x) { return bp::sqrt(x); })
      .def(
          "argmax",
          [](const bp::Tensor& x, std::int64_t dim, bool keepdim) { return bp::argmax(x, dim, keepdim); },
          py::arg("dim") = -1, py::arg("keepdim") = false)
      // autograd
      .def_property("requires_grad", &bp::Tensor::requires_grad,
                    [](bp::Tensor& x, bool on) { x.requires_grad_(on); })
      .def(
          "requires_grad_", [](bp::Tensor& x, bool on) -> bp::Tensor& { return x.requires_grad_(on); },
          py::arg("requires_grad") = true, py::return_value_policy::reference_internal)
      .def_property_readonly("is_leaf", &bp::Tensor::is_leaf)
      .def_property(
          "grad", [](const bp::Tensor& x) { return maybe(x.grad()); },
          [](bp::Tensor& x, const py::object& g) {
            if (g.is_none())
              x.zero_grad();
            else
              x.set_grad(to_tensor(g, "grad"));
          },
          "The accumulated gradient (None until a backward reaches this tensor).")
      .def_property_readonly(
          "grad_fn",
          [](const bp::Tensor& x) -> py::object {
            return x.grad_fn() ? py::object(py::str(x.grad_fn()->name())) : py::object(py::none());
          },
          "The name of the recorded op that produced this tensor (None for leaves).")
      .def("zero_grad", &bp::Tensor::zero_grad)
      .def("retain_grad", &bp::Tensor::retain_grad)
      .def(
          "backward",
          [](const bp::Tensor& x, const py::object& grad, bool retain_graph, bool create_graph) {
            x.backward(grad.is_none() ? bp::Tensor() : to_tensor(grad, "backward"), retain_graph,
                       create_graph);
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = false, py::arg("create_graph") = false,
          "Backpropagates from this tensor, accumulating into the leaves' .grad.")
      // in place
      .def(
          "fill_", [](bp::Tensor& x, double v) -> bp::Tensor& { return x.fill_(v); }, py::arg("value"),
          py::return_value_policy::reference_internal)
      .def(
          "zero_", [](bp::Tensor& x) -> bp::Tensor& { return x.zero_(); },
          py::return_value_policy::reference_internal)
      .def(
          "copy_",
          [](bp::Tensor& x, const py::object& src) -> bp::Tensor& {
            return x.copy_(to_tensor(src, "copy_"));
          },
          py::arg("src"), py::return_value_policy::reference_internal)
      // operators: Tensor (or NumPy array) and Python numbers on either side
      .def(
          "__add__", [](const bp::Tensor& a, const bp::Tensor& b) { return a + b; }, py::is_operator())
      .def(
          "__add__", [](const bp::Tensor& a, double b) { return a + b; }, py::is_operator())
      .def(
          "__radd__", [](const bp::Tensor& a, double b) { return b + a; }, py::is_operator())
      .def(
          "__sub__", [](const bp::Tensor& a, const bp::Tensor& b) { return a - b; }, py::is_operator())
      .def(
          "__sub__", [](const bp::Tensor& a, double b) { return a - b; }, py::is_operator())
      .def(
          "__rsub__", [](const bp::Tensor& a, double b) { return b - a; }, py::is_operator())
      .def(
          "__mul__", [](const bp::Tensor& a, const bp::Tensor& b) { return a * b; }, py::is_operator())
      .def(
          "__mul__", [](const bp::Tensor& a, double b) { return a * b; }, py::is_operator())
      .def(
          "__rmul__", [](const bp::Tensor& a, double b) { return b * a; }, py::is_operator())
      .def(
          "__truediv__", [](const bp::Tensor& a, const bp::Tensor& b) { return a / b; }, py::is_operator())
      .def(
          "__truediv__", [](const bp::Tensor& a, double b) { return a / b; }, py::is_operator())
      .def(
          "__rtruediv__", [](const bp::Tensor& a, double b) { return b / a; }, py::is_operator())
      .def(
          "__matmul__", [](const bp::Tensor& a, const bp::Tensor& b) { return bp::matmul(a, b); },
          py::is_operator())
      .def(
          "__pow__", [](const bp::Tensor& a, double p) { return bp::pow(a, p); }, py::is_operator())
      .def("__neg__", [](const bp::Tensor& a) { return -a; });
  py::implicitly_convertible<py::array, bp::Tensor>();

  m.def("from_numpy", &from_numpy, py::arg("array"), R"doc(
A Tensor for a NumPy array. Shares the array's memory (no copy) when it is C-contiguous, aligned,
writeable, in native byte order and of dtype float32 or float64: writes through either are seen by both,
and the tensor keeps the array alive. Any other array of numbers (a transposed or sliced view, integers,
booleans, float16) is copied into a new float32 tensor (float64 stays float64). Raises ValueError for other
dtypes.)doc");
  m.def(
      "tensor",
      [](const py::object& data, const py::object& dtype, bool requires_grad) {
        const std::optional<bp::DType> d =
            dtype.is_none() ? std::nullopt : std::optional<bp::DType>(to_dtype(dtype));
        // Integers become int64 exactly (through float32 they would round above 2^24).
        bp::Tensor x = d == bp::i64 ? to_indices(data, "tensor") : to_tensor(data, "tensor");
        x = d ? x.to(*d).clone() : x.clone();
        if (requires_grad) x.requires_grad_();
        return x;
      },
      py::arg("data"), py::arg("dtype") = py::none(), py::arg("requires_grad") = false,
      "A new tensor holding a copy of `data` (numbers, lists or arrays; float32 unless `dtype` or a float64 "
      "array "
      "says otherwise).");

  // ---- factories ----
  auto dtype_arg = py::arg("dtype") = bp::f32;
  m.def(
      "zeros", [](const bp::Shape& s, const py::object& d) { return bp::zeros(s, to_dtype(d)); },
      py::arg("shape"), dtype_arg);
  m.def(
      "ones", [](const bp::Shape& s, const py::object& d) { return bp::ones(s, to_dtype(d)); },
      py::arg("shape"), dtype_arg);
  m.def(
      "full", [](const bp::Shape& s, double v, const py::object& d) { return bp::full(s, v, to_dtype(d)); },
      py::arg("shape"), py::arg("value"), dtype_arg);
  m.def(
      "arange",
      [](double start, const py::object& end, double step, const py::object& d) {
        if (end.is_none()) return bp::arange(0.0, start, step, to_dtype(d));
        return bp::arange(start, end.cast<double>(), step, to_dtype(d));
      },
      py::arg("start"), py::arg("end") = py::none(), py::arg("step") = 1.0, dtype_arg);
  m.def(
      "randn",
      [](const bp::Shape& s, const py::object& d, bp::Generator* gen) {
        return bp::randn(s, gen ? *gen : default_generator(), to_dtype(d));
      },
      py::arg("shape"), dtype_arg, py::arg("generator") = nullptr, "Standard normal values.");
  m.def(
      "rand",
      [](const bp::Shape& s, const py::object& d, bp::Generator* gen) {
        return bp::rand(s, gen ? *gen : default_generator(), to_dtype(d));
      },
      py::arg("shape"), dtype_arg, py::arg("generator") = nullptr, "Uniform values in [0, 1).");

  // ---- ops ----
  m.def("add", py::overload_cast<const bp::Tensor&, const bp::Tensor&>(&bp::add));
  m.def("sub", py::overload_cast<const bp::Tensor&, const bp::Tensor&>(&bp::sub));
  m.def("mul", py::overload_cast<const bp::Tensor&, const bp::Tensor&>(&bp::mul));
  m.def("div", py::overload_cast<const bp::Tensor&, const bp::Tensor&>(&bp::div));
  m.def("maximum", &bp::maximum);
  m.def("matmul", &bp::matmul, "Matrix product [M, K] @ [K, N] (3-D operands are batched).");
  m.def(
      "linear",
      [](const bp::Tensor& x, const bp::Tensor& w, const std::optional<bp::Tensor>& b) {
        return bp::linear(x, w, b.value_or(bp::Tensor()));
      },
      py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), "x @ weight.T + bias.");
  m.def("neg", &bp::neg);
  m.def("exp", &bp::exp);
  m.def("log", &bp::log);
  m.def("sqrt", &bp::sqrt);
  m.def("abs", &bp::abs);
  m.def("sign", &bp::sign);
  m.def("pow", &bp::pow, py::arg("x"), py::arg("exponent"));
  m.def("clamp", py::overload_cast<const bp::Tensor&, double, double>(&bp::clamp), py::arg("x"),
        py::arg("min"), py::arg("max"));
  m.def("sigmoid", &bp::sigmoid);
  m.def("tanh", &bp::tanh);
  m.def("relu", &bp::relu);
  m.def("leaky_relu", &bp::leaky_relu, py::arg("x"), py::arg("slope") = 0.01);
  m.def("softmax", &bp::softmax, py::arg("x"), py::arg("dim") = -1);
  m.def("log_softmax", &bp::log_softmax, py::arg("x"), py::arg("dim") = -1);
  m.def(
      "sum",
      [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
        return dim.is_none() ? bp::sum(x) : bp::sum(x, to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "mean",
      [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
        return dim.is_none() ? bp::mean(x) : bp::mean(x, to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "amax",
      [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
        return bp::amax(x, dim.is_none() ? bp::Dims{} : to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "amin",
      [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
        return bp::amin(x, dim.is_none() ? bp::Dims{} : to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "logsumexp",
      [](const bp::Tensor& x, const py::object& dim, bool keepdim) {
        return bp::logsumexp(x, dim.is_none() ? bp::Dims{} : to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "var",
      [](const bp::Tensor& x, const py::object& dim, double correction, bool keepdim) {
        return bp::var(x, dim.is_none() ? bp::Dims{} : to_dims(dim), correction, keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("correction") = 1.0, py::arg("keepdim") = false);
  m.def(
      "std",
      [](const bp::Tensor& x, const py::object& dim, double correction, bool keepdim) {
        return bp::std(x, dim.is_none() ? bp::Dims{} : to_dims(dim), correction, keepdim);
      },
      py::arg("x"), py::arg("dim") = py::none(), py::arg("correction") = 1.0, py::arg("keepdim") = false);
  m.def(
      "norm",
      [](const bp::Tensor& x, double p, const py::object& dim, bool keepdim) {
        return bp::norm(x, p, dim.is_none() ? bp::Dims{} : to_dims(dim), keepdim);
      },
      py::arg("x"), py::arg("p") = 2.0, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("argmax", &bp::argmax, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false);
  m.def("argmin", &bp::argmin, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false);
  m.def("reshape", &bp::reshape, py::arg("x"), py::arg("shape"));
  m.def("transpose", py::overload_cast<const bp::Tensor&, std::int64_t, std::int64_t>(&bp::transpose),
        py::arg("x"), py::arg("dim0"), py::arg("dim1"));
  m.def("permute", &bp::permute, py::arg("x"), py::arg("dims"));
  m.def(
      "squeeze",
      [](const bp::Tensor& x, const py::object& dim) {
        return dim.is_none() ? bp::squeeze(x) : bp::squeeze(x, dim.cast<std::int64_t>());
      },
      py::arg("x"), py::arg("dim") = py::none());
  m.def("unsqueeze", &bp::unsqueeze, py::arg("x"), py::arg("dim"));
  m.def("flatten", py::overload_cast<const bp::Tensor&, std::int64_t, std::int64_t>(&bp::flatten),
        py::arg("x"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("narrow", py::overload_cast<const bp::Tensor&, std::int64_t, std::int64_t, std::int64_t>(&bp::narrow),
        py::arg("x"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.def("cat", &bp::cat, py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", &bp::stack, py::arg("tensors"), py::arg("dim") = 0);
  m.def("split", py::overload_cast<const bp::Tensor&, std::int64_t, std::int64_t>(&bp::split), py::arg("x"),
        py::arg("split_size"), py::arg("dim") = 0);
  m.def("chunk", &bp::chunk, py::arg("x"), py::arg("chunks"), py::arg("dim") = 0);
  m.def(
      "one_hot",
      [](const bp::Tensor& labels, std::int64_t classes, const py::object& d) {
        return bp::one_hot(labels, classes, to_dtype(d));
      },
      py::arg("labels"), py::arg("num_classes"), dtype_arg);
  m.def("allclose", &bp::allclose, py::arg("a"), py::arg("b"), py::arg("rtol") = 1e-5,
        py::arg("atol") = 1e-8);

  // ---- autograd ----
  m.def(
      "grad",
      [](const py::object& outputs, const py::object& inputs, const py::object& grad_outputs,
         std::optional<bool> retain_graph, bool create_graph, bool allow_unused) {
        bp::GradOptions o{
            .retain_graph = retain_graph, .create_graph = create_graph, .allow_unused = allow_unused};
        if (!grad_outputs.is_none()) o.grad_outputs = to_tensors(grad_outputs, "grad_outputs");
        const bp::Tensors gs = bp::grad(to_tensors(outputs, "outputs"), to_tensors(inputs, "inputs"), o);
        py::list out;
        for (const bp::Tensor& g : gs) out.append(maybe(g));
        return py::tuple(out);
      },
      py::arg("outputs"), py::arg("inputs"), py::arg("grad_outputs") = py::none(),
      py::arg("retain_graph") = py::none(), py::arg("create_graph") = false, py::arg("allow_unused") = false,
      R"doc(
The gradients of sum_i <grad_outputs[i], outputs[i]> with respect to each input, as a tuple (None for an
unused input with allow_unused). With create_graph=True the gradients are themselves differentiable.)doc");
  m.def("is_grad_enabled", &bp::GradMode::is_enabled);
  m.def("set_grad_enabled", &bp::GradMode::set_enabled, py::arg("enabled"));
  struct NoGrad {
    bool previous = true;
  };
  py::class_<NoGrad>(m, "no_grad",
                     "Context manager: nothing is recorded for autograd inside `with no_grad():`.")
      .def(py::init<>())
      .def("__enter__",
           [](NoGrad& g) {
             g.previous = bp::GradMode::is_enabled();
             bp::GradMode::set_enabled(false);
           })
      .def("__exit__", [](NoGrad& g, const py::args&) {
        bp::GradMode::set_enabled(g.previous);
        return false;
      });
}

}  // namespace pybp
