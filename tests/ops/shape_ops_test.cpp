// Shape and indexing ops on any dim: values against direct index arithmetic (ranks 1 to 8), the error messages
// for bad dims, shapes and indices, and which results share storage. Derivatives are in the op table.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cstdint>
#include <numeric>

namespace bp = backprop;

namespace {

bp::Tensor iota(const bp::Shape& shape, bp::DType dtype = bp::f64) {
  std::vector<double> v(static_cast<std::size_t>(bp::numel(shape)));
  std::iota(v.begin(), v.end(), 0.0);
  return bp::from_vector(v, shape, dtype);
}

/// The coordinates of flat position k in `shape`.
std::vector<std::int64_t> unravel(std::int64_t k, const bp::Shape& shape) {
  std::vector<std::int64_t> c(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    c[d] = k % shape[d];
    k /= shape[d];
  }
  return c;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const bp::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ShapeIndexOps, PermuteMatchesIndexArithmeticUpToRank8) {
  for (std::size_t rank = 1; rank <= bp::kMaxRank; ++rank) {
    bp::Shape shape;
    for (std::size_t d = 0; d < rank; ++d)
      shape.push_back(rank > 5 ? 2 : static_cast<std::int64_t>(d % 3 + 2));
    std::vector<std::int64_t> dims(rank);
    std::iota(dims.rbegin(), dims.rend(), 0);  // reversed
    if (rank > 2) std::swap(dims[0], dims[1]);
    for (bp::DType dt : {bp::f32, bp::f64}) {
      const bp::Tensor x = iota(shape, dt);
      const bp::Tensor y = bp::permute(x, dims);
      for (std::int64_t k = 0; k < y.numel(); ++k) {
        const std::vector<std::int64_t> c = unravel(k, y.shape());
        std::vector<std::int64_t> src(rank);
        for (std::size_t i = 0; i < rank; ++i) src[static_cast<std::size_t>(dims[i])] = c[i];
        ASSERT_EQ(y.flat(k), x.at(src)) << "rank " << rank << " position " << k;
      }
    }
  }
}

TEST(ShapeIndexOps, PermuteLargeTiledTransposeOfA4dTensor) {
  const bp::Tensor x = iota({3, 37, 41, 5});
  const bp::Tensor y = bp::permute(x, {0, 3, 1, 2});  // NHWC -> NCHW: the input's last dim moves inward
  for (std::int64_t k = 0; k < y.numel(); k += 7) {
    const std::vector<std::int64_t> c = unravel(k, y.shape());
    ASSERT_EQ(y.flat(k), x.at({c[0], c[2], c[3], c[1]}));
  }
}

TEST(ShapeIndexOps, SliceNarrowAndSplitPickTheRightPositions) {
  const bp::Tensor x = iota({2, 7, 3});
  const bp::Tensor s = bp::slice(x, 1, -6, 100, 2);  // positions 1, 3, 5
  ASSERT_EQ(s.shape(), (bp::Shape{2, 3, 3}));
  EXPECT_EQ(s.at({1, 2, 1}), x.at({1, 5, 1}));
  EXPECT_EQ(bp::slice(x, 1, 5, 2).size(1), 0);  // empty when end <= start
  EXPECT_EQ(bp::narrow(x, -1, -2, 2).at({1, 4, 0}), x.at({1, 4, 1}));
  const bp::Tensors parts = bp::split(x, 3, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].shape(), (bp::Shape{2, 1, 3}));
  EXPECT_EQ(bp::chunk(x, 3, 1).size(), 3u);       // ceil(7 / 3) = 3 per piece: 3, 3, 1
  EXPECT_EQ(bp::chunk(iota({6}), 4).size(), 3u);  // ceil(6 / 4) = 2 per piece: 3 pieces, as in PyTorch
  EXPECT_TRUE(bp::allclose(bp::cat(parts, 1), x, 0, 0));
}

TEST(ShapeIndexOps, ViewsShareStorageAndCopiesDoNot) {
  const bp::Tensor x = iota({2, 1, 3});
  EXPECT_EQ(bp::squeeze(x).storage(), x.storage());
  EXPECT_EQ(bp::unsqueeze(x, 0).storage(), x.storage());
  EXPECT_EQ(bp::flatten(x).storage(), x.storage());
  EXPECT_EQ(bp::unflatten(x, -1, {3, 1}).shape(), (bp::Shape{2, 1, 3, 1}));
  EXPECT_EQ(bp::squeeze(x, 0).shape(), x.shape());              // size 2: left alone, as in PyTorch
  EXPECT_EQ(bp::permute(x, {2, 1, 0}).storage(), x.storage());  // a view with permuted strides
  EXPECT_NE(bp::index_select(x, 2, {0, 2}).storage(), x.storage());
}

TEST(ShapeIndexOps, GatherScatterAddAndIndexAddValues) {
  const bp::Tensor x = bp::tensor({{1, 2, 3}, {4, 5, 6}}, bp::f64);
  const bp::Tensor index = bp::tensor({{2, 0}, {1, 1}}, bp::f64);
  EXPECT_EQ(bp::gather(x, 1, index).to_vector(), (std::vector<double>{3, 1, 5, 5}));
  const bp::Tensor src = bp::tensor({{10, 20}, {30, 40}}, bp::f64);
  EXPECT_EQ(bp::scatter_add(x, 1, index, src).to_vector(), (std::vector<double>{21, 2, 13, 4, 75, 6}));
  EXPECT_EQ(bp::index_add(x, 0, {1, 1}, bp::ones({2, 3}, bp::f64)).to_vector(),
            (std::vector<double>{1, 2, 3, 6, 7, 8}));
  EXPECT_EQ(bp::index_select(x, -1, bp::tensor({2, 2}, bp::f32)).to_vector(),
            (std::vector<double>{3, 3, 6, 6}));
}

TEST(ShapeIndexOps, PadAndTriangles) {
  const bp::Tensor x = bp::tensor({{1, 2, 3}}, bp::f64);
  EXPECT_EQ(bp::pad(x, {2, 1}, bp::PadMode::reflect).to_vector(), (std::vector<double>{3, 2, 1, 2, 3, 2}));
  EXPECT_EQ(bp::pad(x, {1, 0, 0, 1}, bp::PadMode::constant, -1).to_vector(),
            (std::vector<double>{-1, 1, 2, 3, -1, -1, -1, -1}));
  const bp::Tensor m = bp::ones({2, 3}, bp::f64);
  EXPECT_EQ(bp::tril(m).to_vector(), (std::vector<double>{1, 0, 0, 1, 1, 0}));
  EXPECT_EQ(bp::triu(m, 1).to_vector(), (std::vector<double>{0, 1, 1, 0, 0, 1}));
  // bool and i64 keep their dtype: a causal attention mask, and integers beyond f64's 2^53 kept exactly.
  const bp::Tensor causal = bp::triu(bp::ones({3, 3}, bp::bool_), 1);
  EXPECT_EQ(causal.dtype(), bp::bool_);
  EXPECT_EQ(causal.to_vector(), (std::vector<double>{0, 1, 1, 0, 0, 1, 0, 0, 0}));
  bp::Tensor big = bp::tensor({{1, 2}, {3, 4}}, bp::i64);
  big.data<std::int64_t>()[2] = INT64_MAX;
  const bp::Tensor low = bp::tril(big), high = bp::triu(big);
  EXPECT_EQ(low.dtype(), bp::i64);
  EXPECT_EQ(std::vector<std::int64_t>(low.data<std::int64_t>(), low.data<std::int64_t>() + 4),
            (std::vector<std::int64_t>{1, 0, INT64_MAX, 4}));
  EXPECT_EQ(std::vector<std::int64_t>(high.data<std::int64_t>(), high.data<std::int64_t>() + 4),
            (std::vector<std::int64_t>{1, 2, 0, 4}));
}

TEST(ShapeIndexOps, ErrorsNameTheOpArgumentShapeAndDim) {
  const bp::Tensor x = iota({2, 3});
  EXPECT_EQ(error_of([&] {
              bp::permute(x, {0, 0});
            }),
            "permute: dims [0, 0] repeats dim 0 (input shape [2, 3])");
  EXPECT_EQ(error_of([&] { bp::transpose(x, 0, 2); }),
            "transpose: dim1 2 is out of range for shape [2, 3] (expected a dim in [-2, 1])");
  EXPECT_EQ(error_of([&] {
              bp::index_select(x, 1, bp::tensor({0, 3}, bp::f64));
            }),
            "index_select: index 3 (position 1) is out of range for dim 1 of size 3 (shape [2, 3])");
  EXPECT_EQ(error_of([&] {
              bp::gather(x, 0, bp::full({1, 1}, 0.5, bp::f64));
            }),
            "gather: index 0.5 (position 0) is not a whole number");
  EXPECT_EQ(error_of([&] {
              bp::gather(x, 0, bp::full({1, 1}, 2, bp::f64));
            }),
            "gather: index 2 (position 0) is out of range for dim 0 of size 2 (shape [2, 3])");
  EXPECT_EQ(error_of([&] {
              bp::cat({x, iota({3, 3})}, 1);
            }),
            "cat: tensor 1 has shape [3, 3] which differs from tensor 0 [2, 3] beyond dim 1");
  EXPECT_EQ(error_of([&] { bp::narrow(x, 1, 2, 2); }),
            "narrow: [2, 4) is out of range for dim 1 of size 3 (shape [2, 3])");
  EXPECT_EQ(error_of([&] {
              bp::split(x, {1, 1}, 1);
            }),
            "split: sizes [1, 1] add up to 2 but dim 1 of shape [2, 3] has size 3");
  EXPECT_EQ(error_of([&] {
              bp::pad(x, {3, 0}, bp::PadMode::reflect);
            }),
            "pad: reflect pads (3, 0) of dim 1 must be non-negative and below its size 3 (shape [2, 3])");
  EXPECT_NE(error_of([&] { bp::unsqueeze(iota({1, 1, 1, 1, 1, 1, 1, 1}), 0); }), "no error");
  EXPECT_THROW(bp::scatter_add(x, 1, bp::tensor({{0, 1}}, bp::f64), iota({1, 3})), bp::ShapeError);
}

}  // namespace
