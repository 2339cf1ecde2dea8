// backprop/tensor.hpp — the one Tensor type.
//
// A Tensor is a cheap, value-semantic *handle*: copying a Tensor copies a pointer, and both copies see the
// same elements (like std::shared_ptr). Use clone() for a deep copy. Storage is 64-byte aligned; a tensor reads it
// at a storage offset through one stride per dim (in elements), so permute, transpose, expand, narrow, slice,
// squeeze, unsqueeze and (where the strides allow) reshape are views that share storage. Kernels need
// contiguous row-major memory: data<T>() throws on a non-contiguous tensor, contiguous() makes one. dtype is f32
// (default), f64, i64 (indices, class labels) or bool_ (masks); only f32/f64 tensors do arithmetic and take
// gradients. A tensor that requires_grad records the operations that produce it so that backward() can
// compute gradients (see backprop/autograd.hpp). Every tensor lives on one device (backprop/device.hpp): the CPU
// by default; to(device) copies it to a GPU and back. Element access (data, item, at, to_vector, printing)
// works on CPU tensors; item, at, flat, to_vector and printing copy a GPU tensor to the CPU first.
//
// Example:
//   bp::Generator gen(42);
//   bp::Tensor x = bp::randn({2, 3}, gen);                  // f32
//   bp::Tensor w = bp::ones({3, 1}, bp::f64).requires_grad_();
//   bp::Tensor y = bp::matmul(x.to(bp::f64), w).sum();
//   y.backward();                                            // w.grad() == column sums of x
//   std::cout << w.grad() << "\n";
//   bp::Tensor xt = x.t();                                   // a view: strides {1, 3}, same storage
//   bp::Tensor dense = xt.contiguous();                      // a row-major copy: strides {2, 1}
//   bp::Tensor labels = bp::tensor({2, 0}, bp::i64);         // class labels of x's two rows
//   bp::Tensor hit = bp::eq(bp::argmax(x, 1), labels);       // bool_ [2]: argmax is i64
#pragma once

#include <array>
#include <backprop/device.hpp>
#include <backprop/dtype.hpp>
#include <backprop/error.hpp>
#include <backprop/generator.hpp>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <span>
#include <vector>

namespace backprop {

class Node;
class Tensor;
using Tensors = std::vector<Tensor>;

/// A block of 64-byte aligned memory shared by tensors that view it, on one device (for a GPU, `data` is a
/// device address that the host must not dereference). `version` counts in-place writes, so the autograd engine
/// can tell when a tensor it saved for backward was changed afterwards.
struct Storage {
  void* data = nullptr;
  std::size_t nbytes = 0;
  std::uint64_t version = 0;
  Device device;

  /// Allocates `nbytes` on `device`. Throws OutOfMemoryError, or DeviceError when the device cannot be used.
  explicit Storage(std::size_t nbytes, Device device = Device::cpu());
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl;

class Tensor {
 public:
  /// An undefined tensor (no storage); defined() is false.
  Tensor() = default;
  /// An uninitialised tensor of the given shape (contents are unspecified; prefer zeros()).
  Tensor(const Shape& shape, DType dtype, Device device = Device::cpu());
  /// Wraps existing storage, row-major from element `offset` (used by views and the engine).
  Tensor(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype, std::int64_t offset = 0);
  /// Wraps existing storage with explicit strides (elements, one per dim; 0 repeats an element). Throws
  /// ShapeError when an element it reaches lies outside the storage or a stride is negative.
  Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides, std::int64_t offset,
         DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  /// Size of dimension d (negative d counts from the end). Throws IndexError.
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const;
  DType dtype() const;
  /// Where the elements live (the storage's device).
  Device device() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }
  /// Elements to step in storage per index of each dim (row-major tensors: {C*H*W, H*W, W, 1}).
  Shape strides() const;
  /// Stride of dimension d (negative d counts from the end).
  std::int64_t stride(std::int64_t d) const;
  /// Index in the storage (in elements) of the first element.
  std::int64_t storage_offset() const;
  /// True when the elements lie row-major and without gaps (size-1 dims may have any stride).
  bool is_contiguous() const;

  /// Typed pointer to the first element; throws DTypeError if T does not match dtype(), ValueError if the
  /// tensor is not contiguous (a kernel would read the wrong elements: call contiguous() first) and
  /// DeviceError if it is not on the CPU (the host cannot read GPU memory: call to(Device::cpu()) first).
  template <class T>
  T* data() {
    check_dtype_(dtype_of<T>);
    return static_cast<T*>(raw_data());
  }
  template <class T>
  const T* data() const {
    check_dtype_(dtype_of<T>);
    return static_cast<const T*>(raw_data());
  }
  /// The first element's address; same checks as data<T>().
  void* raw_data() const;
  /// The first element's address on the tensor's own device (a GPU address for a GPU tensor), for that
  /// device's kernels; throws ValueError if the tensor is not contiguous.
  void* device_data() const;
  const std::shared_ptr<Storage>& storage() const;

  /// The value of a one-element tensor, as double (bool_: 0 or 1). Throws ValueError otherwise.
  double item() const;
  /// Element at a full index (one entry per dimension, negatives count from the end). Throws IndexError.
  double at(std::span<const std::int64_t> index) const;
  double at(std::initializer_list<std::int64_t> index) const {
    return at(std::span(index.begin(), index.size()));
  }
  /// Writes one element (an in-place change: not recorded by autograd).
  void set(std::span<const std::int64_t> index, double value);
  void set(std::initializer_list<std::int64_t> index, double value) {
    set(std::span(index.begin(), index.size()), value);
  }
  /// Element i of the flattened tensor.
  double flat(std::int64_t i) const;
  /// Copies all elements out, converted to double.
  std::vector<double> to_vector() const;

  // ---- differentiable views and conversions (recorded by autograd) ----------------------------------------
  /// Same elements, new shape (one entry may be -1). A view when the strides allow it, else a contiguous copy.
  /// Throws ShapeError on a size mismatch.
  Tensor reshape(const Shape& shape) const;
  /// Like reshape, but always a view: throws ShapeError when the strides do not allow one.
  Tensor view(const Shape& shape) const;
  Tensor flatten() const { return reshape({numel()}); }
  /// *this when contiguous, else a row-major copy (recorded by autograd).
  Tensor contiguous() const;
  /// Converts to another dtype (returns *this if it already has it). Float to i64 truncates toward zero (NaN,
  /// +-inf and values outside i64 give INT64_MIN, as PyTorch on x86); anything to bool_ is x != 0 (NaN is
  /// true); i64 to f32/f64 rounds to nearest.
  Tensor to(DType dtype) const;
  /// Copies to another device (returns *this if it is already there, as PyTorch does). Recorded by autograd:
  /// the gradient is copied back to this tensor's device. Throws DeviceError when the device cannot be used.
  Tensor to(Device device) const;
  /// A deep copy, recorded by autograd (its gradient flows back to this tensor).
  Tensor clone() const;
  /// Transpose of a 2-D tensor (a view).
  Tensor t() const;
  Tensor sum() const;
  Tensor mean() const;

  // ---- autograd -------------------------------------------------------------------------------------------
  /// True for leaves that requested gradients and for every tensor computed from them while grad mode was on.
  bool requires_grad() const;
  /// Marks a leaf tensor as a variable to differentiate with respect to. Throws AutogradError on a non-leaf
  /// and on an i64 or bool_ tensor (only floating tensors have gradients).
  Tensor& requires_grad_(bool required = true);
  /// A leaf has no grad_fn: it was created by the user, not by a recorded op.
  bool is_leaf() const;
  /// The recorded op that produced this tensor (null for leaves).
  const std::shared_ptr<Node>& grad_fn() const;
  /// Accumulated gradient (undefined until a backward reaches this tensor).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  /// Drops the accumulated gradient (grad() becomes undefined).
  void zero_grad();
  /// Asks backward() to store the gradient of this non-leaf tensor in grad().
  void retain_grad();
  /// A tensor sharing this one's storage but cut from the graph (requires_grad false, no grad_fn).
  Tensor detach() const;
  /// Backpropagates from this tensor. A non-scalar needs an explicit `grad` of the same shape.
  /// See backprop::backward() for the options.
  void backward(const Tensor& grad = {}, bool retain_graph = false, bool create_graph = false) const;

  // ---- in-place updates (never recorded; throw AutogradError on a tensor that requires grad in grad mode) --
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  /// this += alpha * other (same shape and dtype).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double factor);
  /// Copies other's elements into this tensor (same shape; dtype converted). Through a view, this writes into
  /// the viewed storage.
  Tensor& copy_(const Tensor& other);

  /// True if both handles share the same TensorImpl.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  void check_dtype_(DType dt) const;
  void check_inplace_(const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

/// The shared state behind a Tensor handle.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  std::int64_t numel = 0;
  DType dtype = DType::f32;
  std::int64_t offset = 0;                       // first element, in elements from storage->data
  std::array<std::int64_t, kMaxRank> strides{};  // elements per index step, shape.size() of them used
  bool contiguous = true;                        // cached is_contiguous()
  bool requires_grad = false;  // set on leaves by requires_grad_(), on recorded outputs by the engine
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
};

// ---- factories --------------------------------------------------------------------------------------------
// Each factory makes its tensor on `device` (the CPU by default); the values are the same on every device
// (random ones are drawn on the CPU from `gen` and copied).
Tensor empty(const Shape& shape, DType dtype = f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = f32, Device device = Device::cpu());
/// Same shape, dtype and device as t.
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
/// 0-d tensor holding `value`.
Tensor scalar(double value, DType dtype = f32, Device device = Device::cpu());
/// [start, start + step, ...) up to but excluding `end`. arange(n, bp::i64) gives the indices 0..n-1.
Tensor arange(double start, double end, double step = 1.0, DType dtype = f32, Device device = Device::cpu());
Tensor arange(std::int64_t end, DType dtype = f32, Device device = Device::cpu());
/// Copies `values` into a tensor of the given shape (numel must match; empty shape means 1-D).
Tensor from_vector(const std::vector<double>& values, const Shape& shape = {}, DType dtype = f32,
                   Device device = Device::cpu());
Tensor from_vector(const std::vector<float>& values, const Shape& shape = {}, Device device = Device::cpu());
/// 1-D and 2-D literals: tensor({1, 2, 3}), tensor({{1, 2}, {3, 4}}, f64).
Tensor tensor(std::initializer_list<double> values, DType dtype = f32, Device device = Device::cpu());
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, DType dtype = f32,
              Device device = Device::cpu());
/// Uniform in [lo, hi).
Tensor rand(const Shape& shape, Generator& gen, DType dtype = f32, double lo = 0.0, double hi = 1.0,
            Device device = Device::cpu());
/// Normal with the given mean and standard deviation.
Tensor randn(const Shape& shape, Generator& gen, DType dtype = f32, double mean = 0.0, double stddev = 1.0,
             Device device = Device::cpu());

/// |a - b| <= atol + rtol * |b| elementwise, with broadcasting of equal shapes only. NaNs are never close.
/// Two i64 (or bool_) tensors compare exactly as integers, whatever rtol and atol.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
/// Largest |a - b| over all elements (shapes must match).
double max_abs_diff(const Tensor& a, const Tensor& b);

/// Throws DTypeError naming `op` and its argument `arg` unless t is f32 or f64 (t must be defined).
void check_floating(const Tensor& t, const char* op, const char* arg);

/// Prints shape, dtype and the values (large tensors are summarised with "...").
std::ostream& operator<<(std::ostream& out, const Tensor& t);

}  // namespace backprop
