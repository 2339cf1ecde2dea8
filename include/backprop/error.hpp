// backprop/error.hpp — the one exception hierarchy of backprop.
//
// Every error that user input can cause is thrown as a backprop::Error (or a subclass), with a message that
// names what was wrong and what was expected: shapes, dtypes, file and byte offset, config key.
//
// Example:
//   try { bp::matmul(a, b); }
//   catch (const bp::ShapeError& e) { std::cerr << e.what() << "\n"; }
//   // matmul: cannot multiply [64, 1568] by [6272, 10] (1568 != 6272)
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>

namespace backprop {

/// Base of every exception backprop throws on bad input or misuse.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Shapes that do not fit together (matmul, broadcasting, reshape, ...).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// Mixed or unsupported dtypes.
class DTypeError : public Error {
 public:
  using Error::Error;
};

/// An index or axis out of range.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// A value out of its allowed range (a negative probability, a zero batch size, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// Misuse of the autograd engine: backward through a released graph, a modified saved tensor, ...
class AutogradError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read or written, or whose content is not what was expected.
class FileError : public Error {
 public:
  using Error::Error;
};

/// A configuration key or command-line value that is missing, unknown or out of range.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A training run whose loss or gradients became NaN or infinite.
class DivergedError : public Error {
 public:
  using Error::Error;
};

/// A device that cannot be used: a build without CUDA, no GPU or driver, a GPU index out of range, a failed
/// CUDA call (the message names the call and CUDA's error string), or tensors of one op on different devices.
class DeviceError : public Error {
 public:
  using Error::Error;
};

/// Memory the system would not give: thrown by the tensor allocator (and so by every op) when a tensor's storage
/// cannot be allocated. The message names the bytes asked for and, when a Tensor was being built, its shape
/// and dtype; bytes() gives the number. Not a subclass of the input errors: no retry with the same request
/// can succeed.
class OutOfMemoryError : public Error {
 public:
  OutOfMemoryError(const std::string& what, std::size_t bytes) : Error(what), bytes_(bytes) {}
  /// The size of the allocation that failed.
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
};

namespace detail {
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace backprop

/// Throws `Type` with the streamed message when `cond` is false:
///   BP_CHECK(a.dim() == 2, ShapeError, "matmul: expected a 2-D tensor, got ", a.shape());
#define BP_CHECK(cond, Type, ...)                                              \
  do {                                                                         \
    if (!(cond)) throw ::backprop::Type(::backprop::detail::cat(__VA_ARGS__)); \
  } while (false)
