// Strided views: they share storage (and its version counter) with their base, read through strides as
// PyTorch lays them out, and contiguous() of each gives the elements the copying ops used to return.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <filesystem>
#include <functional>
#include <sstream>

namespace bp = backprop;

namespace {

/// 0, 1, 2, ... in `shape` (f64), so an element's value is its row-major position in the base.
bp::Tensor iota(const bp::Shape& shape) {
  return bp::arange(0.0, static_cast<double>(bp::numel(shape)), 1.0, bp::f64).reshape(shape);
}

/// Row-major position of `index` in `shape`.
std::int64_t position(const bp::Shape& shape, const std::vector<std::int64_t>& index) {
  std::int64_t p = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) p = p * shape[d] + index[d];
  return p;
}

/// Calls f(index) for every index of `shape`, row-major.
void for_each_index(const bp::Shape& shape, const std::function<void(const std::vector<std::int64_t>&)>& f) {
  std::vector<std::int64_t> i(shape.size(), 0);
  for (std::int64_t k = 0; k < bp::numel(shape); ++k) {
    f(i);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++i[d] < shape[d]) break;
      i[d] = 0;
    }
  }
}

/// y.contiguous() holds, at each index of y, the base element `source(index)` names (an independent loop).
void expect_elements(
    const bp::Tensor& y, const bp::Shape& base,
    const std::function<std::vector<std::int64_t>(const std::vector<std::int64_t>&)>& source) {
  const bp::Tensor c = y.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  std::int64_t k = 0;
  for_each_index(y.shape(), [&](const std::vector<std::int64_t>& i) {
    const double want = static_cast<double>(position(base, source(i)));
    EXPECT_EQ(c.data<double>()[k], want) << "element " << k;
    EXPECT_EQ(y.at(std::span(i.data(), i.size())), want) << "at() of element " << k;
    EXPECT_EQ(y.flat(k), want) << "flat(" << k << ")";
    ++k;
  });
  EXPECT_EQ(y.to_vector(), c.to_vector());
}

}  // namespace

TEST(Views, ShareStorageBothWays) {
  bp::Tensor x = bp::zeros({2, 3, 4}, bp::f64);
  const std::vector<std::pair<const char*, bp::Tensor>> views = {
      {"permute", bp::permute(x, {2, 0, 1})}, {"transpose", bp::transpose(x, 0, 2)},
      {"narrow", bp::narrow(x, 1, 1, 2)},     {"slice", bp::slice(x, 2, 1, 4, 2)},
      {"unsqueeze", bp::unsqueeze(x, 1)},     {"squeeze", bp::squeeze(bp::narrow(x, 1, 2, 1), 1)},
      {"flatten", bp::flatten(x, 1)},         {"unflatten", bp::unflatten(x, 2, {2, 2})},
      {"reshape", bp::reshape(x, {6, 4})},    {"view", x.view({4, 6})},
      {"t", bp::flatten(x, 0, 1).t()},
  };
  for (const auto& [name, v] : views) {
    SCOPED_TRACE(name);
    EXPECT_EQ(v.storage(), x.storage());
    bp::Tensor w = v;
    const std::vector<std::int64_t> first(static_cast<std::size_t>(v.dim()), 0);
    w.set(first, 7.0);  // through the view ...
    std::vector<std::int64_t> base_index = {0, 0, 0};
    if (std::string(name) == "narrow") base_index = {0, 1, 0};
    if (std::string(name) == "slice") base_index = {0, 0, 1};
    if (std::string(name) == "squeeze") base_index = {0, 2, 0};
    EXPECT_EQ(x.at(std::span(base_index.data(), 3)), 7.0);  // ... seen in the base
    x.set(std::span(base_index.data(), 3), -1.0);           // and back
    EXPECT_EQ(v.at(std::span(first.data(), first.size())), -1.0);
    x.zero_();
  }
  // copy_ and fill_ through a non-contiguous view write exactly the viewed elements.
  bp::Tensor col = bp::narrow(bp::permute(x, {2, 0, 1}), 0, 1, 1);  // x[:, :, 1] as [1, 2, 3]
  EXPECT_FALSE(col.is_contiguous());
  col.copy_(iota({1, 2, 3}));
  for_each_index(x.shape(), [&](const std::vector<std::int64_t>& i) {
    const double want = i[2] == 1 ? static_cast<double>(i[0] * 3 + i[1]) : 0.0;
    EXPECT_EQ(x.at(std::span(i.data(), 3)), want);
  });
  // A source that shares the destination's storage is read before anything is overwritten.
  bp::Tensor sq = iota({3, 3});
  sq.copy_(sq.t());
  EXPECT_EQ(sq.to_vector(), (std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8}));
  bp::Tensor sq2 = iota({3, 3});
  sq2.t().copy_(sq2);
  EXPECT_EQ(sq2.to_vector(), (std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8}));
  bp::slice(x, 1, 0, 3, 2).fill_(5.0);
  EXPECT_EQ(x.at({1, 2, 3}), 5.0);
  EXPECT_EQ(x.at({1, 1, 3}), 0.0);
}

TEST(Views, StridesAsPyTorch) {
  // Expected values printed by PyTorch 1.13 for the same calls on torch.zeros(2, 3, 4, 5).
  const bp::Tensor x = bp::zeros({2, 3, 4, 5});
  EXPECT_EQ(x.strides(), (bp::Shape{60, 20, 5, 1}));
  EXPECT_EQ(bp::permute(x, {2, 0, 3, 1}).strides(), (bp::Shape{5, 60, 1, 20}));
  EXPECT_EQ(bp::transpose(x, 1, 3).strides(), (bp::Shape{60, 1, 5, 20}));
  const bp::Tensor n = bp::narrow(x, 2, 1, 2);
  EXPECT_EQ(n.strides(), (bp::Shape{60, 20, 5, 1}));
  EXPECT_EQ(n.storage_offset(), 5);
  const bp::Tensor s = bp::slice(x, 2, 1, 4, 2);  // x[:, :, 1:4:2]
  EXPECT_EQ(s.shape(), (bp::Shape{2, 3, 2, 5}));
  EXPECT_EQ(s.strides(), (bp::Shape{60, 20, 10, 1}));
  EXPECT_EQ(s.storage_offset(), 5);
  EXPECT_EQ(bp::expand(bp::zeros({3, 1, 4}), {2, 3, 5, 4}).strides(), (bp::Shape{0, 4, 0, 1}));
  EXPECT_EQ(bp::unsqueeze(bp::transpose(x, 0, 1), 2).strides(), (bp::Shape{20, 60, 20, 5, 1}));
  EXPECT_EQ(bp::squeeze(bp::permute(bp::zeros({3, 1, 4}), {2, 1, 0}), 1).strides(), (bp::Shape{1, 4}));
  const bp::Tensor p = bp::permute(x, {0, 2, 1, 3});
  EXPECT_EQ(p.view({2, 4, 3, 5}).strides(), (bp::Shape{60, 5, 20, 1}));
  EXPECT_EQ(bp::flatten(bp::permute(x, {1, 0, 2, 3}), 2).strides(), (bp::Shape{20, 60, 1}));
  EXPECT_EQ(bp::unflatten(x, 3, {5, 1}).strides(), (bp::Shape{60, 20, 5, 1, 1}));
  EXPECT_TRUE(p.reshape({2, 4, 15}).is_contiguous());  // needs a copy
}

TEST(Views, ContiguousOfEachViewKindMatchesTheCopy) {
  const bp::Shape b = {2, 3, 4};
  const bp::Tensor x = iota(b);
  expect_elements(bp::permute(x, {2, 0, 1}), b, [](const auto& i) { return std::vector{i[1], i[2], i[0]}; });
  expect_elements(bp::transpose(x, 0, 2), b, [](const auto& i) { return std::vector{i[2], i[1], i[0]}; });
  expect_elements(bp::narrow(x, 1, 1, 2), b, [](const auto& i) { return std::vector{i[0], i[1] + 1, i[2]}; });
  expect_elements(bp::slice(x, 2, 1, 4, 2), b, [](const auto& i) {
    return std::vector{i[0], i[1], 1 + 2 * i[2]};
  });
  expect_elements(bp::expand(bp::narrow(x, 1, 2, 1), {2, 2, 3, 4}), b, [](const auto& i) {
    return std::vector{i[1], std::int64_t{2}, i[3]};
  });
  expect_elements(bp::unsqueeze(bp::transpose(x, 1, 2), 0), b, [](const auto& i) {
    return std::vector{i[1], i[3], i[2]};
  });
  expect_elements(bp::squeeze(bp::narrow(bp::permute(x, {1, 0, 2}), 0, 1, 1), 0), b, [](const auto& i) {
    return std::vector{i[0], std::int64_t{1}, i[1]};
  });
  // A 4-D permute whose innermost dim moves: the tiled transpose path of the copy.
  const bp::Shape b4 = {3, 37, 5, 41};
  expect_elements(bp::permute(iota(b4), {0, 3, 2, 1}), b4, [](const auto& i) {
    return std::vector{i[0], i[3], i[2], i[1]};
  });
  // contiguous() of a contiguous tensor is the tensor itself.
  EXPECT_TRUE(x.contiguous().is_same(x));
}

TEST(Views, ReshapeOfNonContiguousInput) {
  const bp::Tensor z = bp::permute(iota({2, 3, 4}), {2, 0, 1});  // [4, 2, 3], strides {1, 12, 4}
  // The [2, 3] dims stay contiguous under the permute: a view (PyTorch 1.13: z.reshape(4, 6)[1] is
  // [1, 5, 9, 13, 17, 21] and not contiguous).
  const bp::Tensor v = z.reshape({4, 6});
  EXPECT_EQ(v.storage(), z.storage());
  EXPECT_FALSE(v.is_contiguous());
  EXPECT_EQ(v.strides(), (bp::Shape{1, 4}));
  for (std::int64_t j = 0; j < 6; ++j) EXPECT_EQ(v.at({1, j}), 1.0 + 4.0 * static_cast<double>(j));
  // Merging the permuted dim with another needs a copy: reshape copies, view refuses naming the layout.
  const bp::Tensor c = z.reshape({8, 3});
  EXPECT_NE(c.storage(), z.storage());
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector(), z.contiguous().to_vector());
  try {
    (void)z.view({8, 3});
    FAIL() << "view of a layout that needs a copy";
  } catch (const bp::ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("[4, 2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[1, 12, 4]"), std::string::npos) << m;
    EXPECT_NE(m.find("[8, 3]"), std::string::npos) << m;
  }
  // flatten of a transposed matrix copies too, with the elements in the transposed order.
  const bp::Tensor t = iota({2, 3}).t();
  EXPECT_EQ(bp::flatten(t).to_vector(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(Views, InPlaceWriteThroughAViewRefusesAStaleBackward) {
  bp::Tensor w = bp::ones({3, 4}, bp::f64).requires_grad_();
  bp::Tensor base = bp::full({3, 4}, 2.0, bp::f64);
  bp::Tensor y = bp::mul(w, base).sum();  // mul saves base for w's gradient
  const std::uint64_t before = base.storage()->version;
  {
    bp::NoGradGuard guard;
    bp::narrow(base.t(), 0, 1, 2).fill_(3.0);  // writes base[:, 1:3] through a view of a view
  }
  EXPECT_GT(base.storage()->version, before);
  EXPECT_EQ(base.at({0, 1}), 3.0);
  EXPECT_EQ(base.at({0, 0}), 2.0);
  EXPECT_THROW(y.backward(), bp::AutogradError);

  // The same through a view that an op saved: exp saves its output, a view of it is written in place.
  bp::Tensor a = bp::zeros({2, 2}, bp::f64).requires_grad_();
  bp::Tensor e = bp::exp(a);
  bp::Tensor et = e.detach().t();
  {
    bp::NoGradGuard guard;
    et.mul_(2.0);
  }
  EXPECT_THROW(e.sum().backward(), bp::AutogradError);
}

TEST(Views, GradientsFlowBackThroughViews) {
  bp::Tensor x = iota({2, 3}).detach().requires_grad_();
  bp::Tensor y = bp::expand(bp::unsqueeze(bp::narrow(x.t(), 0, 1, 2), 0), {4, 2, 2});
  bp::mul(y, 1.0).sum().backward();
  // Each of x[:, 1] and x[:, 2] is read 4 times; x[:, 0] not at all.
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{0, 4, 4, 0, 4, 4}));
  EXPECT_TRUE(x.grad().is_contiguous());
}

TEST(Views, KernelsCannotReadAViewAsContiguous) {
  bp::Tensor x = bp::zeros({3, 4});
  EXPECT_THROW((void)x.t().data<float>(), bp::ValueError);
  EXPECT_THROW((void)bp::slice(x, 1, 0, 4, 2).raw_data(), bp::ValueError);
  EXPECT_NO_THROW((void)bp::narrow(x, 0, 1, 2).data<float>());  // rows of a row-major tensor: contiguous
  EXPECT_EQ(bp::narrow(x, 0, 1, 2).data<float>(), x.data<float>() + 4);
  // Writing into an expanded tensor would write each shared element several times.
  bp::Tensor e = bp::expand(bp::zeros({1, 4}), {3, 4});
  EXPECT_THROW(e.fill_(1.0), bp::ValueError);
}

TEST(Views, PrintingAndSavingFollowStrides) {
  const bp::Tensor t = iota({3, 4}).t();
  std::ostringstream a, b;
  a << t;
  b << t.contiguous();
  EXPECT_EQ(a.str(), b.str());
  const auto path = (std::filesystem::temp_directory_path() / "backprop_view_test.safetensors").string();
  bp::io::NamedTensors named;
  named.tensors.emplace_back("t", t);
  bp::io::save_safetensors(path, named);
  const bp::io::NamedTensors back = bp::io::load_safetensors(path);
  std::filesystem::remove(path);
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors[0].second.shape(), (bp::Shape{4, 3}));
  EXPECT_EQ(back.tensors[0].second.to_vector(), t.contiguous().to_vector());
}
