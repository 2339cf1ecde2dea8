// Flatten and Unflatten: shape arithmetic, then one reshape (whose backward reshapes the gradient back).
#include <backprop/nn/reshape.hpp>
#include <backprop/ops.hpp>
#include <utility>

namespace backprop::nn {

Tensor Flatten::forward(const Tensor& x) {
  const auto rank = static_cast<std::int64_t>(x.dim());
  const std::int64_t s = start_ < 0 ? start_ + rank : start_;
  const std::int64_t e = end_ < 0 ? end_ + rank : end_;
  BP_CHECK(s >= 0 && s < rank && e >= 0 && e < rank && s <= e, ShapeError, repr(),
           ": start_dim and end_dim must name dimensions of the input, start_dim first, got input ",
           x.shape());
  Shape out(x.shape().begin(), x.shape().begin() + s);
  std::int64_t merged = 1;
  for (std::int64_t d = s; d <= e; ++d) merged *= x.size(d);
  out.push_back(merged);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out);
}

std::string Flatten::repr() const {
  return detail::cat("Flatten(start_dim=", start_, ", end_dim=", end_, ")");
}

Unflatten::Unflatten(std::int64_t dim, Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {
  BP_CHECK(!sizes_.empty(), ValueError, "Unflatten: sizes must not be empty");
  int inferred = 0;
  for (std::int64_t v : sizes_) {
    BP_CHECK(v >= 1 || v == -1, ValueError, "Unflatten: sizes must be positive (or one -1), got ", sizes_);
    inferred += v == -1;
  }
  BP_CHECK(inferred <= 1, ValueError, "Unflatten: at most one size may be -1, got ", sizes_);
}

Tensor Unflatten::forward(const Tensor& x) {
  const auto rank = static_cast<std::int64_t>(x.dim());
  const std::int64_t d = dim_ < 0 ? dim_ + rank : dim_;
  BP_CHECK(d >= 0 && d < rank, ShapeError, repr(), ": dim is out of range for input ", x.shape());
  Shape sizes = sizes_;
  std::int64_t known = 1;
  for (std::int64_t v : sizes)
    if (v != -1) known *= v;
  const std::int64_t n = x.size(d);
  for (auto& v : sizes)
    if (v == -1) v = n % known == 0 ? n / known : 0;
  std::int64_t product = 1;
  for (std::int64_t v : sizes) product *= v;
  BP_CHECK(product == n, ShapeError, repr(), ": sizes ", sizes_, " do not multiply to ", n,
           ", the size of dimension ", d, " of input ", x.shape());
  Shape out(x.shape().begin(), x.shape().begin() + d);
  out.insert(out.end(), sizes.begin(), sizes.end());
  out.insert(out.end(), x.shape().begin() + d + 1, x.shape().end());
  return reshape(x, out);
}

std::string Unflatten::repr() const {
  return detail::cat("Unflatten(dim=", dim_, ", sizes=", sizes_, ")");
}

}  // namespace backprop::nn
