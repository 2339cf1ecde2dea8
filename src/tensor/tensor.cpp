#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/memory.hpp>
#include <backprop/ops.hpp>
#include <backprop/tensor.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <sstream>

#include "kernels/device_kernels.hpp"
#include "kernels/kernels.hpp"

namespace backprop {

Storage::Storage(std::size_t n, Device dev)
    : data(dev.is_cpu() ? detail::allocate(n) : kernels::device_kernels(dev).allocate(n, dev.index())),
      nbytes(n),
      device(dev) {}
Storage::~Storage() {
  if (device.is_cpu())
    detail::deallocate(data, nbytes);
  else
    kernels::device_kernels(device).deallocate(data, nbytes, device.index());
}

namespace {
void set_row_major(TensorImpl& impl) {
  std::int64_t s = 1;
  for (std::size_t d = impl.shape.size(); d-- > 0;) {
    impl.strides[d] = s;
    s *= impl.shape[d];
  }
  impl.contiguous = true;
}

bool row_major(const Shape& shape, std::span<const std::int64_t> strides, std::int64_t numel) {
  if (numel == 0) return true;
  std::int64_t expect = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}
}  // namespace

Tensor::Tensor(const Shape& shape, DType dtype, Device device) : impl_(std::make_shared<TensorImpl>()) {
  impl_->numel = backprop::numel(shape);
  impl_->shape = shape;
  impl_->dtype = dtype;
  try {
    impl_->storage =
        std::make_shared<Storage>(static_cast<std::size_t>(impl_->numel) * dtype_size(dtype), device);
  } catch (const OutOfMemoryError& e) {  // the allocator knows the bytes; add what they were for
    throw OutOfMemoryError(detail::cat(e.what(), "; the tensor is ", shape, " ", dtype), e.bytes());
  }
  set_row_major(*impl_);
}

Tensor::Tensor(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype, std::int64_t offset)
    : impl_(std::make_shared<TensorImpl>()) {
  impl_->numel = backprop::numel(shape);
  BP_CHECK(storage && offset >= 0 &&
               storage->nbytes >= static_cast<std::size_t>(offset + impl_->numel) * dtype_size(dtype),
           ShapeError, "storage of ", storage ? storage->nbytes : 0, " bytes is too small for ", shape, " ",
           dtype, " at element offset ", offset);
  impl_->shape = shape;
  impl_->dtype = dtype;
  impl_->offset = offset;
  impl_->storage = std::move(storage);
  set_row_major(*impl_);
}

Tensor::Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
               std::int64_t offset, DType dtype)
    : impl_(std::make_shared<TensorImpl>()) {
  impl_->numel = backprop::numel(shape);
  BP_CHECK(strides.size() == shape.size(), ShapeError, "strides ", strides, " do not match shape ", shape);
  std::int64_t last = offset;  // the furthest element reached
  for (std::size_t d = 0; d < shape.size(); ++d) {
    BP_CHECK(strides[d] >= 0, ShapeError, "negative stride ", strides[d], " in ", strides, " for shape ",
             shape);
    if (shape[d] > 0) last += (shape[d] - 1) * strides[d];
  }
  BP_CHECK(
      storage && offset >= 0 &&
          (impl_->numel == 0 || storage->nbytes >= static_cast<std::size_t>(last + 1) * dtype_size(dtype)),
      ShapeError, "storage of ", storage ? storage->nbytes : 0, " bytes is too small for ", shape, " ", dtype,
      " with strides ", strides, " at element offset ", offset);
  impl_->shape = shape;
  impl_->dtype = dtype;
  impl_->offset = offset;
  impl_->storage = std::move(storage);
  std::copy(strides.begin(), strides.end(), impl_->strides.begin());
  impl_->contiguous = row_major(shape, strides, impl_->numel);
}

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  BP_CHECK(impl != nullptr, ValueError, "operation on an undefined tensor");
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const {
  return checked(impl_).shape;
}
std::int64_t Tensor::numel() const {
  return checked(impl_).numel;
}
DType Tensor::dtype() const {
  return checked(impl_).dtype;
}
Device Tensor::device() const {
  return checked(impl_).storage->device;
}
void* Tensor::raw_data() const {
  const TensorImpl& t = checked(impl_);
  BP_CHECK(t.storage->device.is_cpu(), DeviceError, "host access to a tensor ", t.shape, " ", t.dtype, " on ",
           t.storage->device, ": this operation has no ", t.storage->device,
           " kernel yet; move the tensor with .to(bp::Device::cpu()) first");
  return device_data();
}
void* Tensor::device_data() const {
  const TensorImpl& t = checked(impl_);
  BP_CHECK(t.contiguous, ValueError, "data access to a non-contiguous tensor of shape ", t.shape,
           " with strides ", strides(), ": kernels read row-major memory; call contiguous() first");
  return static_cast<char*>(t.storage->data) + static_cast<std::size_t>(t.offset) * dtype_size(t.dtype);
}
Shape Tensor::strides() const {
  const TensorImpl& t = checked(impl_);
  return Shape(t.strides.begin(), t.strides.begin() + static_cast<std::ptrdiff_t>(t.shape.size()));
}
std::int64_t Tensor::stride(std::int64_t d) const {
  return checked(impl_).strides[static_cast<std::size_t>(normalize_axis(d, dim(), "stride"))];
}
std::int64_t Tensor::storage_offset() const {
  return checked(impl_).offset;
}
bool Tensor::is_contiguous() const {
  return checked(impl_).contiguous;
}
const std::shared_ptr<Storage>& Tensor::storage() const {
  return checked(impl_).storage;
}

std::int64_t Tensor::size(std::int64_t d) const {
  return shape()[static_cast<std::size_t>(normalize_axis(d, dim(), "size"))];
}

void Tensor::check_dtype_(DType dt) const {
  BP_CHECK(dtype() == dt, DTypeError, "tensor of dtype ", dtype(), " ", shape(), " accessed as ", dt);
}

double Tensor::item() const {
  BP_CHECK(numel() == 1, ValueError, "item: expected a tensor with one element, got shape ", shape());
  return flat(0);
}

namespace {
/// Storage index (elements) of the element at row-major position i.
std::int64_t storage_index(const TensorImpl& t, std::int64_t i) {
  if (t.contiguous) return t.offset + i;
  std::int64_t off = t.offset;
  for (std::size_t d = t.shape.size(); d-- > 0;) {
    off += (i % t.shape[d]) * t.strides[d];
    i /= t.shape[d];
  }
  return off;
}

template <class T>
T* element(const TensorImpl& t, std::int64_t storage_idx) {
  return static_cast<T*>(t.storage->data) + storage_idx;
}

/// t itself on the CPU, else a CPU copy outside the graph (for reading elements).
Tensor host(const Tensor& t) {
  return t.device().is_cpu() ? t : t.detach().to(Device::cpu());
}
}  // namespace

double Tensor::flat(std::int64_t i) const {
  BP_CHECK(i >= 0 && i < numel(), IndexError, "flat index ", i, " is out of range for shape ", shape());
  if (!device().is_cpu()) return host(*this).flat(i);
  const std::int64_t at = storage_index(*impl_, i);
  return dispatch_all(dtype(),
                      [&](auto tag) { return static_cast<double>(*element<decltype(tag)>(*impl_, at)); });
}

namespace {
std::int64_t storage_index(const Tensor& t, std::span<const std::int64_t> index) {
  BP_CHECK(static_cast<std::int64_t>(index.size()) == t.dim(), IndexError, "index with ", index.size(),
           " entries for a tensor of shape ", t.shape());
  std::int64_t off = t.storage_offset();
  for (std::size_t d = 0; d < index.size(); ++d) {
    const std::int64_t n = t.shape()[d];
    std::int64_t i = index[d];
    BP_CHECK(i >= -n && i < n, IndexError, "index ", i, " is out of range for dimension ", d, " of size ", n,
             " (shape ", t.shape(), ")");
    if (i < 0) i += n;
    off += i * t.impl()->strides[d];
  }
  return off;
}
}  // namespace

double Tensor::at(std::span<const std::int64_t> index) const {
  if (!device().is_cpu()) return host(*this).at(index);
  const std::int64_t off = storage_index(*this, index);
  return dispatch_all(dtype(),
                      [&](auto tag) { return static_cast<double>(*element<decltype(tag)>(*impl_, off)); });
}

void Tensor::set(std::span<const std::int64_t> index, double value) {
  const std::int64_t off = storage_index(*this, index);
  BP_CHECK(device().is_cpu(), DeviceError, "set: element writes need a CPU tensor; this one ", shape(),
           " is on ", device());
  check_inplace_("set");
  // Through convert_value, so set() stores what to(dtype) would make of the double.
  dispatch_all(dtype(),
               [&](auto tag) { *element<decltype(tag)>(*impl_, off) = convert_value<decltype(tag)>(value); });
}

std::vector<double> Tensor::to_vector() const {
  const Tensor dense = kernels::dense(host(*this));
  std::vector<double> v(static_cast<std::size_t>(numel()));
  dispatch_all(dtype(), [&](auto tag) {
    const auto* p = dense.data<decltype(tag)>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(p[i]);
  });
  return v;
}

Tensor Tensor::reshape(const Shape& shape) const {
  return backprop::reshape(*this, shape);
}
Tensor Tensor::view(const Shape& shape) const {
  return backprop::view(*this, shape);
}
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return record("contiguous", kernels::dense(*this), {*this}, [](const Tensor& dy) { return Tensors{dy}; },
                {.saves_inputs = false});
}
Tensor Tensor::to(DType dt) const {
  return backprop::to_dtype(*this, dt);
}
Tensor Tensor::to(Device device) const {
  const Device from = this->device();
  if (device == from) return *this;
  const Tensor src = kernels::dense(*this);
  Tensor y(shape(), dtype(), device);
  kernels::copy_between_devices(y.device_data(), device, src.device_data(), from, nbytes());
  return record("to_device", y, {*this}, [from](const Tensor& dy) { return Tensors{dy.to(from)}; },
                {.saves_inputs = false});
}
Tensor Tensor::t() const {
  return backprop::transpose(*this);
}
Tensor Tensor::sum() const {
  return backprop::sum(*this);
}
Tensor Tensor::mean() const {
  return backprop::mean(*this);
}

Tensor Tensor::clone() const {
  if (!device().is_cpu())
    return record("clone", to(Device::cpu()).detach().to(device()), {*this},
                  [](const Tensor& dy) { return Tensors{dy}; }, {.saves_inputs = false});
  Tensor copy = is_contiguous() ? Tensor(shape(), dtype()) : kernels::dense(*this);
  if (is_contiguous()) std::memcpy(copy.raw_data(), raw_data(), nbytes());
  return record("clone", copy, {*this}, [](const Tensor& dy) { return Tensors{dy}; },
                {.saves_inputs = false});
}

bool Tensor::requires_grad() const {
  return impl_ && (impl_->requires_grad || impl_->grad_fn);
}

Tensor& Tensor::requires_grad_(bool required) {
  BP_CHECK(!required || is_floating(dtype()), AutogradError, "requires_grad_: a ", dtype(), " tensor ",
           shape(), " cannot require gradients; only f32 and f64 tensors can (convert it with .to(bp::f32))");
  BP_CHECK(is_leaf(), AutogradError,
           "requires_grad_: only leaf tensors can be marked; this tensor was produced by '",
           impl_->grad_fn->name(), "' (use detach() to make a leaf)");
  checked(impl_);
  impl_->requires_grad = required;
  return *this;
}

bool Tensor::is_leaf() const {
  return checked(impl_).grad_fn == nullptr;
}
const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return checked(impl_).grad_fn;
}
Tensor Tensor::grad() const {
  return checked(impl_).grad;
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    BP_CHECK(g.shape() == shape() && g.dtype() == dtype(), ShapeError, "set_grad: gradient ", g.shape(), " ",
             g.dtype(), " does not match tensor ", shape(), " ", dtype());
  checked(impl_);
  impl_->grad = g;
}

void Tensor::zero_grad() {
  checked(impl_);
  impl_->grad = Tensor();
}

void Tensor::retain_grad() {
  checked(impl_);
  if (impl_->grad_fn) impl_->grad_fn->retained_ = impl_;
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked(impl_);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage;
  impl->shape = t.shape;
  impl->numel = t.numel;
  impl->dtype = t.dtype;
  impl->offset = t.offset;
  impl->strides = t.strides;
  impl->contiguous = t.contiguous;
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& g, bool retain_graph, bool create_graph) const {
  backprop::backward({*this}, {g},
                     {.retain_graph = retain_graph || create_graph, .create_graph = create_graph});
}

void Tensor::check_inplace_(const char* op) const {
  BP_CHECK(!(GradMode::is_enabled() && requires_grad()), AutogradError, op,
           ": in-place change of a tensor that requires grad (shape ", shape(),
           ") would corrupt the graph; do it under NoGradGuard or on a detach()ed tensor");
  for (std::size_t d = 0; d < shape().size(); ++d)
    BP_CHECK(impl_->strides[d] != 0 || shape()[d] <= 1, ValueError, op,
             ": in-place write to an expanded tensor (shape ", shape(), ", strides ", strides(),
             ") where several elements share one memory location; write to a "
             "contiguous() copy instead");
  ++storage()->version;
}

Tensor& Tensor::fill_(double value) {
  check_inplace_("fill_");
  kernels::fill(*this, value);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace_("add_");
  BP_CHECK(other.shape() == shape(), ShapeError, "add_: shape ", other.shape(), " does not match ", shape());
  kernels::axpy(*this, other, alpha);
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  check_inplace_("mul_");
  kernels::scale(*this, factor);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& other) {
  check_inplace_("copy_");
  BP_CHECK(other.shape() == shape(), ShapeError, "copy_: shape ", other.shape(), " does not match ", shape());
  if (!device().is_cpu() || !other.device().is_cpu()) {  // across devices: convert where other is, then copy
    BP_CHECK(is_contiguous(), DeviceError, "copy_: writing into a non-contiguous ", device(), " tensor ",
             shape(), " is not supported yet");
    const Tensor src = kernels::dense(other.detach().to(dtype()));
    kernels::copy_between_devices(device_data(), device(), src.device_data(), src.device(), nbytes());
    return *this;
  }
  kernels::copy(*this, other);
  return *this;
}

// ---- factories --------------------------------------------------------------------------------------------

Tensor empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(shape, dtype, device);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t(shape, dtype, device);
  kernels::fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.dtype(), t.device());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.dtype(), t.device());
}
Tensor scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  if (!device.is_cpu()) return arange(start, end, step, dtype).to(device);
  BP_CHECK(step != 0.0, ValueError, "arange: step must be non-zero");
  const double count = std::ceil((end - start) / step);
  const auto n = static_cast<std::int64_t>(count > 0 ? count : 0);
  Tensor t({n}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    auto* p = t.data<decltype(tag)>();
    for (std::int64_t i = 0; i < n; ++i)
      p[i] = convert_value<decltype(tag)>(start + static_cast<double>(i) * step);
  });
  return t;
}
Tensor arange(std::int64_t end, DType dtype, Device device) {
  return arange(0.0, static_cast<double>(end), 1.0, dtype, device);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  if (!device.is_cpu()) return from_vector(values, shape, dtype).to(device);
  const Shape s = shape.empty() ? Shape{static_cast<std::int64_t>(values.size())} : shape;
  BP_CHECK(numel(s) == static_cast<std::int64_t>(values.size()), ShapeError, "from_vector: ", values.size(),
           " values do not fill shape ", s, " (", numel(s), " elements)");
  Tensor t(s, dtype);
  dispatch_all(dtype, [&](auto tag) {
    auto* p = t.data<decltype(tag)>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = convert_value<decltype(tag)>(values[i]);
  });
  return t;
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  if (!device.is_cpu()) return from_vector(values, shape).to(device);
  const Shape s = shape.empty() ? Shape{static_cast<std::int64_t>(values.size())} : shape;
  BP_CHECK(numel(s) == static_cast<std::int64_t>(values.size()), ShapeError, "from_vector: ", values.size(),
           " values do not fill shape ", s, " (", numel(s), " elements)");
  Tensor t(s, f32);
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor tensor(std::initializer_list<double> values, DType dtype, Device device) {
  return from_vector(std::vector<double>(values), {}, dtype, device);
}

Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, DType dtype, Device device) {
  const auto r = static_cast<std::int64_t>(rows.size());
  const auto c = r == 0 ? 0 : static_cast<std::int64_t>(rows.begin()->size());
  std::vector<double> v;
  for (const auto& row : rows) {
    BP_CHECK(static_cast<std::int64_t>(row.size()) == c, ShapeError, "tensor: ragged rows (", row.size(),
             " vs ", c, " values)");
    v.insert(v.end(), row.begin(), row.end());
  }
  return from_vector(v, {r, c}, dtype, device);
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double lo, double hi, Device device) {
  if (!device.is_cpu()) return rand(shape, gen, dtype, lo, hi).to(device);
  Tensor t(shape, dtype);
  dispatch(dtype, "rand", [&](auto tag) {
    auto* p = t.data<decltype(tag)>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<decltype(tag)>(gen.uniform(lo, hi));
  });
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double stddev, Device device) {
  if (!device.is_cpu()) return randn(shape, gen, dtype, mean, stddev).to(device);
  Tensor t(shape, dtype);
  dispatch(dtype, "randn", [&](auto tag) {
    auto* p = t.data<decltype(tag)>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      p[i] = static_cast<decltype(tag)>(mean + stddev * gen.normal());
  });
  return t;
}

bool allclose(const Tensor& a_in, const Tensor& b_in, double rtol, double atol) {
  BP_CHECK(a_in.shape() == b_in.shape(), ShapeError, "allclose: shapes ", a_in.shape(), " and ", b_in.shape(),
           " differ");
  const Tensor a = host(a_in), b = host(b_in);               // compares values wherever they live
  if (!is_floating(a.dtype()) && !is_floating(b.dtype())) {  // exact, without a trip through double
    const Tensor x = a.to(i64), y = b.to(i64);
    return std::equal(x.data<std::int64_t>(), x.data<std::int64_t>() + x.numel(), y.data<std::int64_t>());
  }
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.flat(i), y = b.flat(i);
    if (!(std::abs(x - y) <= atol + rtol * std::abs(y))) return false;
  }
  return true;
}

void check_floating(const Tensor& t, const char* op, const char* arg) {
  BP_CHECK(is_floating(t.dtype()), DTypeError, op, ": ", arg, " is a ", t.dtype(), " tensor ", t.shape(),
           "; this operation needs f32 or f64 (convert it with .to(bp::f32))");
}

double max_abs_diff(const Tensor& a_in, const Tensor& b_in) {
  BP_CHECK(a_in.shape() == b_in.shape(), ShapeError, "max_abs_diff: shapes ", a_in.shape(), " and ",
           b_in.shape(), " differ");
  const Tensor a = host(a_in), b = host(b_in);
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.flat(i) - b.flat(i)));
  return m;
}

namespace {
/// Walks the elements that are shown (all of them, or the first and last kEdge of each long dimension of a
/// big tensor) and writes them, nested in brackets, through `emit`. Run twice: once to measure, once to
/// print.
class Printer {
 public:
  Printer(const Tensor& t, std::ostream& out) : t_(t), out_(out) {
    summarise_ = t.numel() > kSummariseAbove;
    // Whole numbers print as integers; everything else with 5 significant digits, aligned to the widest.
    integral_ = true;
    walk(0, 0, 0, nullptr);
    walk(0, 0, 0, [this](std::int64_t i) { width_ = std::max(width_, format(i).size()); });
  }
  void print() {
    printing_ = true;
    walk(0, 0, 0, [this](std::int64_t i) {
      const std::string s = format(i);
      out_ << std::string(width_ - s.size(), ' ') << s;
    });
  }

 private:
  static constexpr std::int64_t kEdge = 3;
  static constexpr std::int64_t kSummariseAbove = 1000;

  // Element i of the flattened tensor: i64 exactly, bool as true/false, floats as decided by the scan.
  std::string format(std::int64_t i) const {
    if (t_.dtype() == i64) return std::to_string(t_.data<std::int64_t>()[i]);
    if (t_.dtype() == bool_) return t_.data<bool>()[i] ? "true" : "false";
    const double v = t_.flat(i);
    std::ostringstream s;
    if (integral_)
      s << std::fixed << std::setprecision(0) << v;
    else
      s << std::setprecision(5) << v;
    return s.str();
  }

  // emit == nullptr: the scan that decides the number format (no output).
  void walk(std::size_t d, std::int64_t off, int indent, const std::function<void(std::int64_t)>& emit) {
    const Shape& shape = t_.shape();
    const std::int64_t n = shape[d];
    std::int64_t stride = 1;
    for (std::size_t k = d + 1; k < shape.size(); ++k) stride *= shape[k];
    const bool last_dim = d + 1 == shape.size();
    const bool skip = summarise_ && n > 2 * kEdge + 1;
    if (printing_) out_ << "[";
    for (std::int64_t i = 0; i < n; ++i) {
      if (skip && i == kEdge) {
        if (printing_)
          out_ << (last_dim ? "..., " : "...,\n" + std::string(static_cast<std::size_t>(indent + 1), ' '));
        i = n - kEdge - 1;
        continue;
      }
      if (last_dim) {
        if (!emit) {
          const double v = t_.flat(off + i);
          integral_ = integral_ && std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15;
        } else {
          emit(off + i);
        }
      } else {
        walk(d + 1, off + i * stride, indent + 1, emit);
      }
      if (printing_ && i + 1 < n)
        out_ << (last_dim ? ", " : ",\n" + std::string(static_cast<std::size_t>(indent + 1), ' '));
    }
    if (printing_) out_ << "]";
  }

  const Tensor& t_;
  std::ostream& out_;
  bool summarise_ = false;
  bool integral_ = true;
  bool printing_ = false;
  std::size_t width_ = 0;
};
}  // namespace

std::ostream& operator<<(std::ostream& out, const Tensor& t_in) {
  if (!t_in.defined()) return out << "Tensor(undefined)";
  out << "Tensor(shape=" << t_in.shape() << ", dtype=" << t_in.dtype();
  if (!t_in.device().is_cpu()) out << ", device=" << t_in.device();
  if (t_in.requires_grad()) out << ", requires_grad";
  const Tensor t = host(t_in);
  out << ")\n";
  if (t.numel() == 0) return out << "[]";
  if (t.dim() == 0 && is_floating(t.dtype())) {
    std::ostringstream s;
    s << std::setprecision(5) << t.item();
    return out << s.str();
  }
  if (t.dim() == 0)
    return out << (t.dtype() == i64 ? std::to_string(t.data<std::int64_t>()[0])
                                    : std::string(t.data<bool>()[0] ? "true" : "false"));
  Printer(t, out).print();
  return out;
}

}  // namespace backprop
