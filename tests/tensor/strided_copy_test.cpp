// The strided copy behind contiguous() and copy_ (src/kernels/strided.cpp): a copy that moves the innermost dim
// is a 2-D transpose in cache tiles of register-transposed blocks, one kernel per instruction set. Every
// variant this CPU runs (forced through set_kernel_config) and every dtype must give the element-wise
// definition, on sizes that the blocks (16, 8, 4, 2) and the 64-element tiles do not divide.
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace bp = backprop;

namespace {

// Restores the kernel configuration a test changed.
struct ConfigGuard {
  bp::KernelConfig saved = bp::kernel_config();
  ~ConfigGuard() { bp::set_kernel_config(saved); }
};

std::vector<bp::Isa> runnable_variants() {
  std::vector<bp::Isa> v;
  for (bp::Isa isa : {bp::Isa::baseline, bp::Isa::avx2, bp::Isa::avx512})
    if (bp::cpu_supports(isa)) v.push_back(isa);
  return v;
}

/// The value stored at row-major position p of a base tensor: distinct for every position (exact in f32 up
/// to 2^24), and using the high bytes of an i64; bool gets an irregular 0/1 pattern.
double value_at(std::int64_t p, bp::DType dt) {
  if (dt == bp::i64) return static_cast<double>(p * (std::int64_t{1} << 33) + p);
  if (dt == bp::bool_) return (p * 7 + p / 3) % 5 < 2 ? 1.0 : 0.0;
  return static_cast<double>(p);
}

bp::Tensor numbered(const bp::Shape& shape, bp::DType dt) {
  std::vector<double> v(static_cast<std::size_t>(bp::numel(shape)));
  for (std::size_t p = 0; p < v.size(); ++p) v[p] = value_at(static_cast<std::int64_t>(p), dt);
  return bp::from_vector(v, shape, dt);
}

/// Expected elements of permute(base, dims) (base numbered by value_at), row-major in the permuted shape:
/// output index o reads base index b with b[dims[k]] = o[k].
std::vector<double> permuted_values(const bp::Shape& base, const std::vector<std::int64_t>& dims,
                                    bp::DType dt) {
  const std::size_t rank = base.size();
  bp::Shape out(rank);
  for (std::size_t k = 0; k < rank; ++k) out[k] = base[static_cast<std::size_t>(dims[k])];
  std::vector<double> want;
  std::vector<std::int64_t> o(rank, 0), b(rank);
  for (std::int64_t n = 0; n < bp::numel(out); ++n) {
    for (std::size_t k = 0; k < rank; ++k) b[static_cast<std::size_t>(dims[k])] = o[k];
    std::int64_t p = 0;
    for (std::size_t d = 0; d < rank; ++d) p = p * base[d] + b[d];
    want.push_back(value_at(p, dt));
    for (std::size_t k = rank; k-- > 0;) {
      if (++o[k] < out[k]) break;
      o[k] = 0;
    }
  }
  return want;
}

/// Index of the first element where got and want differ, or -1.
std::int64_t first_mismatch(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return 0;
  const auto it = std::mismatch(got.begin(), got.end(), want.begin());
  return it.first == got.end() ? -1 : static_cast<std::int64_t>(it.first - got.begin());
}

const std::vector<bp::DType> kDtypes = {bp::f32, bp::f64, bp::i64, bp::bool_};

}  // namespace

TEST(StridedCopy, EveryPermutationOf4dEqualsTheDefinition) {
  ConfigGuard guard;
  // Odd sizes: 37 and 19 leave strips for every block width; merged dims (5 * 37) pass the 64-element tile.
  const bp::Shape base = {5, 19, 3, 37};
  for (bp::Isa isa : runnable_variants()) {
    bp::set_kernel_config({.isa = isa});
    for (bp::DType dt : kDtypes) {
      const bp::Tensor x = numbered(base, dt);
      std::vector<std::int64_t> dims = {0, 1, 2, 3};
      do {
        const bp::Tensor y = bp::permute(x, dims).contiguous();
        EXPECT_TRUE(y.is_contiguous());
        EXPECT_EQ(first_mismatch(y.to_vector(), permuted_values(base, dims, dt)), -1)
            << bp::isa_name(isa) << " " << bp::dtype_name(dt) << " dims " << dims[0] << dims[1] << dims[2]
            << dims[3];
      } while (std::next_permutation(dims.begin(), dims.end()));
    }
  }
}

TEST(StridedCopy, TransposesOf2dFrom1x1To40x40) {
  ConfigGuard guard;
  for (bp::Isa isa : runnable_variants()) {
    bp::set_kernel_config({.isa = isa});
    for (bp::DType dt : kDtypes) {
      // Rows of 64 elements on both sides (views into [64, 64] tensors): strides that every block width
      // divides, so the widest blocks run, with strips of every narrower width around them.
      const bp::Tensor padded = numbered({64, 64}, dt);
      for (std::int64_t r = 1; r <= 40; ++r)
        for (std::int64_t c = 1; c <= 40; ++c) {
          const bp::Tensor y = bp::transpose(numbered({r, c}, dt), 0, 1).contiguous();
          ASSERT_EQ(first_mismatch(y.to_vector(), permuted_values({r, c}, {1, 0}, dt)), -1)
              << bp::isa_name(isa) << " " << bp::dtype_name(dt) << " " << r << " x " << c;

          bp::Tensor out = bp::zeros({64, 64}, dt);
          bp::narrow(bp::narrow(out, 0, 0, c), 1, 0, r)
              .copy_(bp::transpose(bp::narrow(bp::narrow(padded, 0, 0, r), 1, 0, c), 0, 1));
          std::vector<double> want(64 * 64, 0.0);
          for (std::int64_t i = 0; i < c; ++i)
            for (std::int64_t j = 0; j < r; ++j)
              want[static_cast<std::size_t>(i * 64 + j)] = value_at(j * 64 + i, dt);
          ASSERT_EQ(first_mismatch(out.to_vector(), want), -1)
              << bp::isa_name(isa) << " " << bp::dtype_name(dt) << " " << r << " x " << c << " in [64, 64]";
        }
    }
  }
}

TEST(StridedCopy, NarrowedThenPermutedSource) {
  ConfigGuard guard;
  // NCHW -> NHWC of a view whose rows are 45 of 64 elements and whose channels are 17 or 32 of 37, starting
  // inside the storage: the transpose reads with a row stride other than its width, from an offset base;
  // with 32 channels both strides allow the widest blocks and 45 = 32 + 8 + 4 + 1 rows leave strips.
  const bp::Shape base = {4, 37, 6, 64};
  for (bp::Isa isa : runnable_variants()) {
    bp::set_kernel_config({.isa = isa});
    for (bp::DType dt : kDtypes)
      for (std::int64_t channels : {17, 32}) {
        const bp::Tensor x = numbered(base, dt);
        const bp::Tensor v = bp::narrow(bp::narrow(x, 3, 2, 45), 1, 3, channels);
        const bp::Tensor y = bp::permute(v, {0, 2, 3, 1}).contiguous();
        std::vector<double> want;
        for (std::int64_t n = 0; n < 4; ++n)
          for (std::int64_t h = 0; h < 6; ++h)
            for (std::int64_t w = 0; w < 45; ++w)
              for (std::int64_t c = 0; c < channels; ++c)
                want.push_back(value_at(((n * 37 + c + 3) * 6 + h) * 64 + w + 2, dt));
        EXPECT_EQ(first_mismatch(y.to_vector(), want), -1)
            << bp::isa_name(isa) << " " << bp::dtype_name(dt) << " " << channels << " channels";
      }
  }
}

TEST(StridedCopy, CopyIntoAPermutedView) {
  ConfigGuard guard;
  // copy_ into a view whose innermost dim is strided: the transpose with the two sides' roles swapped.
  const bp::Shape nhwc = {3, 7, 9, 37};
  for (bp::Isa isa : runnable_variants()) {
    bp::set_kernel_config({.isa = isa});
    for (bp::DType dt : kDtypes) {
      const bp::Tensor src = bp::permute(numbered(nhwc, dt), {0, 3, 1, 2}).contiguous();  // NCHW
      bp::Tensor dst = bp::zeros(nhwc, dt);
      bp::permute(dst, {0, 3, 1, 2}).copy_(src);
      EXPECT_EQ(first_mismatch(dst.to_vector(), permuted_values(nhwc, {0, 1, 2, 3}, dt)), -1)
          << bp::isa_name(isa) << " " << bp::dtype_name(dt);
    }
  }
}
