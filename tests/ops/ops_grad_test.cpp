// Runs every row of the op table (op_table.cpp) through the same checks:
//   - first derivatives against central finite differences in f64 (gradcheck),
//   - second derivatives the same way through create_graph (gradgradcheck),
//   - backward adds into an existing .grad() rather than overwriting it,
//   - backward writes every element of every gradient (the allocator's cache is pre-filled with NaN first),
//   - the op computes the same values and gradients in f32 as in f64, to f32 precision.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstring>
#include <set>

#include "ops/op_table.hpp"

namespace bp = backprop;
using optest::OpCase;

namespace {

constexpr std::uint64_t kSeed = 20240611;

/// The gradients of <v, fn(inputs)> with respect to the inputs that require grad, for a fixed random v.
struct Projected {
  bp::Tensor output;
  bp::Tensors grads;  // one per input; undefined for constant inputs
};

Projected project_and_backward(const OpCase& c, const bp::Tensors& xs, const bp::Tensor& v) {
  Projected p;
  p.output = c.fn(xs);
  bp::sum(bp::mul(p.output, v.to(p.output.dtype()))).backward();
  for (const bp::Tensor& x : xs) p.grads.push_back(x.requires_grad() ? x.grad().clone() : bp::Tensor());
  return p;
}

/// Fills the allocator's cache with blocks whose bytes are all 0xFF (a NaN in f32 and f64), so a kernel that
/// leaves an element of a fresh tensor unwritten shows up as a NaN in its result.
void poison_allocator_cache() {
  bp::Tensors blocks;
  for (std::int64_t bytes = 64; bytes <= 16384; bytes += 64)
    for (int copies = 0; copies < 6; ++copies) {
      bp::Tensor t = bp::empty({bytes / 4}, bp::f32);
      std::memset(t.raw_data(), 0xFF, t.nbytes());
      blocks.push_back(t);
    }
}  // the blocks return to the cache here

bp::Tensor projection_for(const OpCase& c, bp::DType dtype) {
  bp::Generator gen(kSeed);
  bp::Tensors xs = optest::make_inputs(c, bp::f64, gen);
  bp::Tensor y;
  {
    bp::NoGradGuard guard;
    y = c.fn(xs);
  }
  bp::Generator vgen(kSeed + 1);
  return bp::randn(y.shape(), vgen, dtype);
}

class OpTable : public ::testing::TestWithParam<OpCase> {};

std::string row_name(const ::testing::TestParamInfo<OpCase>& info) {
  return info.param.name;
}

}  // namespace

TEST_P(OpTable, Gradcheck) {
  const OpCase& c = GetParam();
  bp::Generator gen(kSeed);
  const bp::Tensors xs = optest::make_inputs(c, bp::f64, gen);
  const auto r = bp::gradcheck(c.fn, xs, {.eps = c.eps, .atol = c.tol, .rtol = c.tol, .raise = false});
  EXPECT_TRUE(r.ok) << c.name << ": input " << r.worst_input << " element " << r.worst_index << ": analytic "
                    << r.analytic << " vs numeric " << r.numeric << " (max abs error " << r.max_abs_error
                    << ")";
}

TEST_P(OpTable, Gradgradcheck) {
  const OpCase& c = GetParam();
  if (!c.twice) GTEST_SKIP() << c.name << " is not twice differentiable";
  bp::Generator gen(kSeed);
  const bp::Tensors xs = optest::make_inputs(c, bp::f64, gen);
  const auto r = bp::gradgradcheck(c.fn, xs, {.eps = c.eps, .atol = c.tol, .rtol = c.tol, .raise = false});
  EXPECT_TRUE(r.ok) << c.name << ": input " << r.worst_input << " element " << r.worst_index << ": analytic "
                    << r.analytic << " vs numeric " << r.numeric << " (max abs error " << r.max_abs_error
                    << ")";
}

TEST_P(OpTable, BackwardAddsIntoExistingGrad) {
  const OpCase& c = GetParam();
  bp::Generator gen(kSeed);
  const bp::Tensors xs = optest::make_inputs(c, bp::f64, gen);
  const bp::Tensor v = projection_for(c, bp::f64);
  const Projected once = project_and_backward(c, xs, v);
  const Projected twice = project_and_backward(c, xs, v);  // a second forward and backward, same leaves
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    ASSERT_TRUE(once.grads[i].defined()) << c.name << " input " << i << " received no gradient";
    for (std::int64_t k = 0; k < xs[i].numel(); ++k)
      ASSERT_DOUBLE_EQ(twice.grads[i].flat(k), 2 * once.grads[i].flat(k))
          << c.name << " input " << i << " at " << k;
  }
  // The same through one graph walked twice with retain_graph.
  for (const bp::Tensor& x : xs)
    if (x.requires_grad()) bp::Tensor(x).zero_grad();
  const bp::Tensor loss = bp::sum(bp::mul(c.fn(xs), v));
  loss.backward({}, /*retain_graph=*/true);
  loss.backward();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    for (std::int64_t k = 0; k < xs[i].numel(); ++k)
      ASSERT_DOUBLE_EQ(xs[i].grad().flat(k), 2 * once.grads[i].flat(k))
          << c.name << " (retain_graph) input " << i;
  }
}

TEST_P(OpTable, BackwardWritesEveryElement) {
  const OpCase& c = GetParam();
  for (bp::DType dt : {bp::f64, bp::f32}) {
    const bp::Tensor v = projection_for(c, dt);
    bp::Generator gen(kSeed);
    const Projected clean = project_and_backward(c, optest::make_inputs(c, dt, gen), v);
    poison_allocator_cache();
    bp::Generator gen2(kSeed);
    const Projected dirty = project_and_backward(c, optest::make_inputs(c, dt, gen2), v);
    for (std::int64_t k = 0; k < clean.output.numel(); ++k)
      ASSERT_EQ(dirty.output.flat(k), clean.output.flat(k)) << c.name << " " << dt << " output element " << k;
    for (std::size_t i = 0; i < clean.grads.size(); ++i) {
      if (!clean.grads[i].defined()) continue;
      for (std::int64_t k = 0; k < clean.grads[i].numel(); ++k) {
        ASSERT_TRUE(std::isfinite(dirty.grads[i].flat(k)))
            << c.name << " " << dt << " input " << i << " at " << k;
        ASSERT_EQ(dirty.grads[i].flat(k), clean.grads[i].flat(k)) << c.name << " " << dt << " input " << i;
      }
    }
  }
}

TEST_P(OpTable, F32AgreesWithF64) {
  const OpCase& c = GetParam();
  bp::Generator g64(kSeed), g32(kSeed);
  const bp::Tensors x64 = optest::make_inputs(c, bp::f64, g64);
  const bp::Tensors x32 = optest::make_inputs(c, bp::f32, g32);
  const bp::Tensor v = projection_for(c, bp::f64);
  const Projected r64 = project_and_backward(c, x64, v);
  const Projected r32 = project_and_backward(c, x32, v);
  auto compare = [&](const bp::Tensor& a, const bp::Tensor& b, const std::string& what) {
    ASSERT_EQ(a.shape(), b.shape()) << c.name << " " << what;
    double scale = 1e-3;
    for (std::int64_t k = 0; k < a.numel(); ++k) scale = std::max(scale, std::abs(a.flat(k)));
    for (std::int64_t k = 0; k < a.numel(); ++k)
      ASSERT_NEAR(b.flat(k), a.flat(k), c.f32_tol * scale) << c.name << " " << what << " at " << k;
  };
  if (r32.output.dtype() == bp::f32 || c.name.find("dtype") == std::string::npos)
    compare(r64.output, r32.output, "output");
  for (std::size_t i = 0; i < x64.size(); ++i) {
    if (!r64.grads[i].defined()) continue;
    EXPECT_EQ(r32.grads[i].dtype(), bp::f32) << c.name << ": a gradient has its input's dtype";
    compare(r64.grads[i], r32.grads[i], "gradient of input " + std::to_string(i));
  }
}

namespace {
/// x's values in a non-contiguous layout: transposed storage for rank >= 2, every other element of a buffer for
/// rank 1 (rank 0: a plain copy). A separate leaf when x requires grad.
bp::Tensor strided_copy(const bp::Tensor& x) {
  bp::Tensor view;
  if (x.dim() == 0) {
    view = bp::zeros({}, x.dtype());
  } else if (x.dim() >= 2) {
    bp::Shape reversed(x.shape().rbegin(), x.shape().rend());
    std::vector<std::int64_t> dims;
    for (std::int64_t d = x.dim() - 1; d >= 0; --d) dims.push_back(d);
    view = bp::permute(bp::zeros(reversed, x.dtype()), dims);
  } else {
    view = bp::slice(bp::zeros({2 * x.numel()}, x.dtype()), 0, 0, 2 * x.numel(), 2);
  }
  {
    bp::NoGradGuard guard;
    view.copy_(x);
  }
  view = view.detach();
  if (x.requires_grad()) view.requires_grad_();
  return view;
}
}  // namespace

// Every op reads non-contiguous inputs (views) as if they were contiguous: same values, same gradients.
TEST_P(OpTable, StridedInputsMatchContiguous) {
  const OpCase& c = GetParam();
  bp::Generator gen(kSeed);
  const bp::Tensors xs = optest::make_inputs(c, bp::f64, gen);
  bp::Tensors strided;
  bool any = false;
  for (const bp::Tensor& x : xs) {
    strided.push_back(strided_copy(x));
    any = any || !strided.back().is_contiguous();
  }
  if (!any) GTEST_SKIP() << c.name << ": no input of this row has a non-contiguous layout";
  const bp::Tensor v = projection_for(c, bp::f64);
  const Projected dense = project_and_backward(c, xs, v);
  Projected views;
  try {
    views = project_and_backward(c, strided, v);
  } catch (const bp::ShapeError& e) {
    // view() refuses a layout it cannot view without a copy (as PyTorch's view); every other op must accept it.
    if (std::string(e.what()).rfind("view:", 0) != 0) throw;
    GTEST_SKIP() << c.name << " calls view(), which refuses this layout: " << e.what();
  }
  ASSERT_EQ(views.output.shape(), dense.output.shape()) << c.name;
  for (std::int64_t k = 0; k < dense.output.numel(); ++k)
    ASSERT_NEAR(views.output.flat(k), dense.output.flat(k), 1e-12 * (1 + std::abs(dense.output.flat(k))))
        << c.name << " output element " << k;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!dense.grads[i].defined()) continue;
    ASSERT_TRUE(views.grads[i].defined()) << c.name << " input " << i;
    for (std::int64_t k = 0; k < dense.grads[i].numel(); ++k)
      ASSERT_NEAR(views.grads[i].flat(k), dense.grads[i].flat(k),
                  1e-12 * (1 + std::abs(dense.grads[i].flat(k))))
          << c.name << " gradient of input " << i << " at " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTable, ::testing::ValuesIn(optest::op_table()), row_name);

// A guard on the table itself: names must be unique (gtest would refuse duplicates at run time).
TEST(OpTableRows, NamesAreUnique) {
  std::set<std::string> seen;
  for (const OpCase& c : optest::op_table()) EXPECT_TRUE(seen.insert(c.name).second) << c.name;
  EXPECT_GE(seen.size(), 60u);
}
