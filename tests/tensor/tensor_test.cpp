// The Tensor type: factories, views, conversions, element access, printing and the errors of misuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <limits>
#include <sstream>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::ThrowsMessage;

namespace {

std::string print(const bp::Tensor& t) {
  std::ostringstream out;
  out << t;
  return out.str();
}

}  // namespace

// ---- factories --------------------------------------------------------------------------------------------

TEST(Factories, ZerosOnesFullHaveShapeDtypeAndValue) {
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor z = bp::zeros({2, 3}, dt), o = bp::ones({4}, dt), f = bp::full({3, 1, 2}, -2.5, dt);
    EXPECT_EQ(z.shape(), (bp::Shape{2, 3}));
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(z.numel(), 6);
    EXPECT_EQ(f.numel(), 6);
    EXPECT_EQ(f.nbytes(), 6 * bp::dtype_size(dt));
    for (double v : z.to_vector()) EXPECT_EQ(v, 0.0);
    for (double v : o.to_vector()) EXPECT_EQ(v, 1.0);
    for (double v : f.to_vector()) EXPECT_EQ(v, -2.5);
  }
  EXPECT_EQ(bp::zeros({2}).dtype(), bp::f32) << "f32 is the default dtype";
  const bp::Tensor like = bp::ones_like(bp::zeros({2, 5}, bp::f64));
  EXPECT_EQ(like.shape(), (bp::Shape{2, 5}));
  EXPECT_EQ(like.dtype(), bp::f64);
  EXPECT_EQ(like.flat(9), 1.0);
}

TEST(Factories, ScalarIsRankZero) {
  const bp::Tensor s = bp::scalar(4.25, bp::f64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 4.25);
  EXPECT_EQ(s.at({}), 4.25);
}

TEST(Factories, ArangeCountsUpAndDown) {
  EXPECT_EQ(bp::arange(5).to_vector(), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(bp::arange(1.0, 2.0, 0.25, bp::f64).to_vector(), (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(bp::arange(3.0, 0.0, -1.0).to_vector(), (std::vector<double>{3, 2, 1}));
  EXPECT_EQ(bp::arange(2.0, 2.0).numel(), 0);
  EXPECT_EQ(bp::arange(5.0, 0.0).numel(), 0) << "an empty range, not a negative size";
  EXPECT_THAT([] { bp::arange(0.0, 1.0, 0.0); },
              ThrowsMessage<bp::ValueError>(HasSubstr("step must be non-zero")));
}

TEST(Factories, FromVectorAndLiterals) {
  const bp::Tensor a = bp::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, bp::f64);
  EXPECT_EQ(a.shape(), (bp::Shape{2, 3}));
  EXPECT_EQ(a.at({1, 0}), 4.0);
  const bp::Tensor b = bp::from_vector(std::vector<float>{0.5f, 1.5f});
  EXPECT_EQ(b.shape(), (bp::Shape{2}));
  EXPECT_EQ(b.dtype(), bp::f32);
  EXPECT_EQ(b.at({1}), 1.5);
  const bp::Tensor c = bp::tensor({{1, 2}, {3, 4}, {5, 6}}, bp::f64);
  EXPECT_EQ(c.shape(), (bp::Shape{3, 2}));
  EXPECT_EQ(c.at({2, 1}), 6.0);
  EXPECT_EQ(c.at({-1, -2}), 5.0) << "negative indices count from the end";
  EXPECT_EQ(bp::tensor({7, 8, 9}).shape(), (bp::Shape{3}));
  EXPECT_THAT(
      [] {
        bp::from_vector(std::vector<double>{1, 2, 3}, {2, 2});
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("3 values"), HasSubstr("[2, 2]"))));
  EXPECT_THAT([] { bp::tensor({{1, 2}, {3}}); }, ThrowsMessage<bp::ShapeError>(HasSubstr("ragged")));
}

TEST(Factories, RandomTensorsAreReproducibleBySeed) {
  for (bp::DType dt : {bp::f32, bp::f64}) {
    bp::Generator g1(123), g2(123), g3(124);
    const bp::Tensor a = bp::randn({50, 7}, g1, dt), b = bp::randn({50, 7}, g2, dt),
                     c = bp::randn({50, 7}, g3, dt);
    EXPECT_EQ(a.to_vector(), b.to_vector()) << "same seed, same numbers";
    EXPECT_NE(a.to_vector(), c.to_vector()) << "another seed, other numbers";
    const bp::Tensor u1 = bp::rand({100}, g1, dt, -2.0, 3.0), u2 = bp::rand({100}, g2, dt, -2.0, 3.0);
    EXPECT_EQ(u1.to_vector(), u2.to_vector());
  }
  // The stream continues across calls: two draws differ, and a reseed restarts it.
  bp::Generator gen(5);
  const auto first = bp::randn({10}, gen, bp::f64).to_vector();
  EXPECT_NE(first, bp::randn({10}, gen, bp::f64).to_vector());
  gen.seed_(5);
  EXPECT_EQ(first, bp::randn({10}, gen, bp::f64).to_vector());
}

TEST(Factories, RandomTensorsHaveTheRequestedDistribution) {
  bp::Generator gen(7);
  const int n = 200000;
  const bp::Tensor u = bp::rand({n}, gen, bp::f64, -1.0, 3.0);
  const bp::Tensor z = bp::randn({n}, gen, bp::f64, 2.0, 0.5);
  double lo = 1e9, hi = -1e9, su = 0, sz = 0, szz = 0;
  for (double v : u.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    su += v;
  }
  for (double v : z.to_vector()) {
    sz += v;
    szz += v * v;
  }
  EXPECT_GE(lo, -1.0);
  EXPECT_LT(hi, 3.0);
  EXPECT_NEAR(su / n, 1.0, 0.02);  // 4 standard errors of the mean of U(-1, 3) is ~0.01
  const double mean = sz / n, var = szz / n - mean * mean;
  EXPECT_NEAR(mean, 2.0, 0.005);
  EXPECT_NEAR(std::sqrt(var), 0.5, 0.005);
}

// ---- views, conversions, copies ---------------------------------------------------------------------------

TEST(Views, ReshapeSharesStorageAndInfersMinusOne) {
  bp::Tensor x = bp::arange(24).reshape({2, 3, 4});
  const bp::Tensor v = x.reshape({-1, 4});
  EXPECT_EQ(v.shape(), (bp::Shape{6, 4}));
  EXPECT_EQ(x.view({4, -1}).shape(), (bp::Shape{4, 6}));
  EXPECT_EQ(x.flatten().shape(), (bp::Shape{24}));
  EXPECT_EQ(v.storage(), x.storage()) << "a view shares the elements";
  x.set({1, 2, 3}, 100.0);
  EXPECT_EQ(v.at({5, 3}), 100.0);
  EXPECT_EQ(bp::scalar(3).reshape({1, 1}).shape(), (bp::Shape{1, 1}));
  EXPECT_EQ(bp::ones({1, 1}).reshape({}).dim(), 0);
}

TEST(Views, ReshapeToAnotherSizeNamesBothShapes) {
  const bp::Tensor x = bp::zeros({2, 3});
  EXPECT_THAT(
      [&] {
        x.reshape({4, 2});
      },
      ThrowsMessage<bp::ShapeError>(
          AllOf(HasSubstr("[2, 3]"), HasSubstr("6 elements"), HasSubstr("[4, 2]"), HasSubstr("8 elements"))));
  EXPECT_THAT([&] { x.reshape({-1, 4}); }, ThrowsMessage<bp::ShapeError>(HasSubstr("cannot reshape [2, 3]")));
  EXPECT_THAT([&] { x.reshape({-1, -1}); }, ThrowsMessage<bp::ShapeError>(HasSubstr("more than one -1")));
  EXPECT_THAT([&] { x.reshape({-2, -3}); }, ThrowsMessage<bp::ShapeError>(HasSubstr("negative dimension")));
}

TEST(Views, ToConvertsDtypeAndKeepsValues) {
  const bp::Tensor x = bp::tensor({1.5, -2.25, 1e-3}, bp::f64);
  const bp::Tensor y = x.to(bp::f32);
  EXPECT_EQ(y.dtype(), bp::f32);
  EXPECT_EQ(y.at({0}), 1.5);
  EXPECT_EQ(y.at({1}), -2.25);
  EXPECT_EQ(y.at({2}), static_cast<double>(1e-3f)) << "rounded to the nearest float";
  EXPECT_TRUE(x.to(bp::f64).is_same(x)) << "no copy when the dtype already matches";
  EXPECT_NE(y.to(bp::f64).storage(), x.storage());
}

TEST(Views, CloneIsADeepCopy) {
  bp::Tensor x = bp::tensor({1, 2, 3});
  bp::Tensor c = x.clone();
  EXPECT_NE(c.storage(), x.storage());
  x.set({0}, 10.0);
  EXPECT_EQ(c.at({0}), 1.0);
  EXPECT_EQ(c.to_vector(), (std::vector<double>{1, 2, 3}));
}

TEST(Views, CopiesOfAHandleShareEverything) {
  bp::Tensor x = bp::zeros({2});
  bp::Tensor y = x;  // a handle copy
  y.fill_(3.0);
  EXPECT_EQ(x.at({1}), 3.0);
  EXPECT_TRUE(x.is_same(y));
}

// ---- element access ---------------------------------------------------------------------------------------

TEST(Access, ItemAtSetFlat) {
  bp::Tensor x = bp::zeros({2, 3}, bp::f64);
  x.set({1, 2}, 5.0);
  x.set({0, -1}, 7.0);
  EXPECT_EQ(x.at({1, 2}), 5.0);
  EXPECT_EQ(x.flat(2), 7.0);
  EXPECT_EQ(x.flat(5), 5.0);
  EXPECT_EQ(x.data<double>()[5], 5.0);
  EXPECT_EQ(bp::full({1, 1, 1}, 2.0).item(), 2.0);
  EXPECT_EQ(x.size(-1), 3);
  EXPECT_EQ(x.size(0), 2);
}

TEST(Access, OutOfRangeIndexNamesIndexDimensionAndShape) {
  bp::Tensor x = bp::zeros({2, 3});
  EXPECT_THAT(
      [&] {
        x.at({2, 0});
      },
      ThrowsMessage<bp::IndexError>(
          AllOf(HasSubstr("index 2"), HasSubstr("dimension 0 of size 2"), HasSubstr("[2, 3]"))));
  EXPECT_THAT([&] { x.at({0, -4}); }, ThrowsMessage<bp::IndexError>(HasSubstr("index -4")));
  EXPECT_THAT([&] { x.set({0}, 1.0); },
              ThrowsMessage<bp::IndexError>(AllOf(HasSubstr("1 entries"), HasSubstr("[2, 3]"))));
  EXPECT_THAT([&] { x.flat(6); }, ThrowsMessage<bp::IndexError>(HasSubstr("flat index 6")));
  EXPECT_THAT([&] { x.size(2); },
              ThrowsMessage<bp::IndexError>(AllOf(HasSubstr("axis 2"), HasSubstr("rank 2"))));
  EXPECT_THAT([&] { x.item(); },
              ThrowsMessage<bp::ValueError>(AllOf(HasSubstr("one element"), HasSubstr("[2, 3]"))));
}

TEST(Access, WrongTypedAccessNamesBothDtypes) {
  bp::Tensor x = bp::zeros({4});
  EXPECT_THAT([&] { x.data<double>(); },
              ThrowsMessage<bp::DTypeError>(AllOf(HasSubstr("f32"), HasSubstr("f64"), HasSubstr("[4]"))));
}

TEST(Access, UndefinedTensorThrows) {
  bp::Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THAT([&] { (void)t.shape(); }, ThrowsMessage<bp::ValueError>(HasSubstr("undefined tensor")));
}

TEST(Access, BadShapesAreRejected) {
  EXPECT_THAT(
      [] {
        bp::zeros({-1, 2});
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("negative dimension in shape [-1, 2]")));
  EXPECT_THAT(
      [] {
        bp::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1});
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("rank 9")));
  EXPECT_THAT(
      [] {
        bp::numel({1 << 30, 1 << 30, 1 << 30});
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("too many")));
}

TEST(Access, DtypeMixIsAnErrorNamingBothOperands) {
  const bp::Tensor a = bp::ones({2, 3}), b = bp::ones({2, 3}, bp::f64);
  EXPECT_THAT([&] { bp::add(a, b); },
              ThrowsMessage<bp::DTypeError>(
                  AllOf(HasSubstr("add"), HasSubstr("f32 [2, 3]"), HasSubstr("f64 [2, 3]"))));
  EXPECT_THAT([&] { bp::matmul(a, b.reshape({3, 2})); }, ThrowsMessage<bp::DTypeError>(HasSubstr("matmul")));
}

// ---- in-place updates -------------------------------------------------------------------------------------

TEST(InPlace, FillAddMulCopy) {
  bp::Tensor x = bp::ones({3}, bp::f64);
  x.add_(bp::tensor({1, 2, 3}, bp::f64), 2.0).mul_(0.5);
  EXPECT_EQ(x.to_vector(), (std::vector<double>{1.5, 2.5, 3.5}));
  x.copy_(bp::tensor({4, 5, 6}));  // converted from f32
  EXPECT_EQ(x.to_vector(), (std::vector<double>{4, 5, 6}));
  x.zero_();
  EXPECT_EQ(x.to_vector(), (std::vector<double>{0, 0, 0}));
  EXPECT_THAT([&] { x.add_(bp::ones({4}, bp::f64)); },
              ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("[4]"), HasSubstr("[3]"))));
  EXPECT_THAT([&] { x.copy_(bp::ones({2})); }, ThrowsMessage<bp::ShapeError>(HasSubstr("copy_")));
}

TEST(InPlace, EveryWriteBumpsTheVersion) {
  bp::Tensor x = bp::zeros({2});
  const auto v0 = x.storage()->version;
  x.fill_(1.0);
  x.set({0}, 2.0);
  x.mul_(3.0);
  EXPECT_EQ(x.storage()->version, v0 + 3);
}

TEST(InPlace, RefusedOnATensorThatRequiresGrad) {
  bp::Tensor w = bp::zeros({2}).requires_grad_();
  EXPECT_THAT([&] { w.fill_(1.0); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("fill_"), HasSubstr("requires grad"))));
  {
    bp::NoGradGuard guard;  // how an optimiser updates its parameters
    w.fill_(1.0);
  }
  EXPECT_EQ(w.at({0}), 1.0);
}

// ---- comparison and printing ------------------------------------------------------------------------------

TEST(Compare, AllcloseAndMaxAbsDiff) {
  const bp::Tensor a = bp::tensor({1.0, 2.0, 3.0}, bp::f64);
  const bp::Tensor b = bp::tensor({1.0, 2.0 + 1e-9, 3.0}, bp::f64);
  const bp::Tensor c = bp::tensor({1.0, 2.1, 3.0}, bp::f64);
  EXPECT_TRUE(bp::allclose(a, b));
  EXPECT_FALSE(bp::allclose(a, c));
  EXPECT_TRUE(bp::allclose(a, c, 0.0, 0.11));
  EXPECT_NEAR(bp::max_abs_diff(a, c), 0.1, 1e-12);
  const bp::Tensor n = bp::tensor({1.0, std::nan(""), 3.0}, bp::f64);
  EXPECT_FALSE(bp::allclose(n, n)) << "NaN is never close";
  EXPECT_THAT([&] { bp::allclose(a, bp::zeros({2})); },
              ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("[3]"), HasSubstr("[2]"))));
}

// The whole printed text, compared exactly: the header, then the values right-aligned to the widest, whole
// numbers without a decimal point, others to 5 significant digits.
TEST(Print, SmallTensorsShowEveryValue) {
  EXPECT_EQ(print(bp::tensor({{1, 2.5}, {-3, 4}}, bp::f64)),
            "Tensor(shape=[2, 2], dtype=f64)\n"
            "[[  1, 2.5],\n"
            " [ -3,   4]]");
  EXPECT_EQ(print(bp::tensor({{0.001234567, -12345.678}, {1e-9, 3}}, bp::f64)),
            "Tensor(shape=[2, 2], dtype=f64)\n"
            "[[0.0012346,    -12346],\n"
            " [    1e-09,         3]]");
  EXPECT_EQ(print(bp::tensor({7, -8, 9})), "Tensor(shape=[3], dtype=f32)\n[ 7, -8,  9]");
  EXPECT_EQ(print(bp::scalar(3.5)), "Tensor(shape=[], dtype=f32)\n3.5");
  EXPECT_EQ(print(bp::zeros({0, 3})), "Tensor(shape=[0, 3], dtype=f32)\n[]");
  EXPECT_EQ(print(bp::Tensor()), "Tensor(undefined)");
  EXPECT_EQ(print(bp::zeros({2}).requires_grad_()), "Tensor(shape=[2], dtype=f32, requires_grad)\n[0, 0]");
}

TEST(Print, BigTensorsAreSummarised) {
  // Above 1000 elements: the first and last three of each dimension, "..." between.
  EXPECT_EQ(print(bp::arange(1000000).reshape({1000, 1000})),
            "Tensor(shape=[1000, 1000], dtype=f32)\n"
            "[[     0,      1,      2, ...,    997,    998,    999],\n"
            " [  1000,   1001,   1002, ...,   1997,   1998,   1999],\n"
            " [  2000,   2001,   2002, ...,   2997,   2998,   2999],\n"
            " ...,\n"
            " [997000, 997001, 997002, ..., 997997, 997998, 997999],\n"
            " [998000, 998001, 998002, ..., 998997, 998998, 998999],\n"
            " [999000, 999001, 999002, ..., 999997, 999998, 999999]]");
  EXPECT_EQ(print(bp::arange(5000)),
            "Tensor(shape=[5000], dtype=f32)\n[   0,    1,    2, ..., 4997, 4998, 4999]");
}

TEST(Print, LeavesTheStreamFormattingAlone) {
  std::ostringstream out;
  out.precision(12);
  out << bp::scalar(1.0 / 3.0, bp::f64);
  out << " " << 1.0 / 3.0;
  EXPECT_THAT(out.str(), HasSubstr(" 0.333333333333"));
}

TEST(Shapes, ToStringBroadcastAndAxis) {
  EXPECT_EQ(bp::to_string({}), "[]");
  EXPECT_EQ(bp::to_string({64, 784}), "[64, 784]");
  EXPECT_EQ(bp::broadcast_shapes({3, 1, 4}, {2, 1}), (bp::Shape{3, 2, 4}));
  EXPECT_EQ(bp::broadcast_shapes({}, {2, 3}), (bp::Shape{2, 3}));
  EXPECT_THAT(
      [] {
        bp::broadcast_shapes({2, 3}, {4, 3}, "mul");
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("mul"), HasSubstr("[2, 3]"), HasSubstr("[4, 3]"))));
  EXPECT_EQ(bp::normalize_axis(-1, 3, "op"), 2);
  EXPECT_THAT(
      [] { bp::normalize_axis(3, 3, "softmax"); },
      ThrowsMessage<bp::IndexError>(AllOf(HasSubstr("softmax"), HasSubstr("axis 3"), HasSubstr("-3..2"))));
}

TEST(Generator, StateRoundTripAndIntegers) {
  bp::Generator gen(99);
  gen.normal();  // leaves a spare normal in the state
  const auto state = gen.state();
  const double a = gen.normal(), b = gen.uniform();
  gen.set_state(state);
  EXPECT_EQ(gen.normal(), a);
  EXPECT_EQ(gen.uniform(), b);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 5000; ++i) ++counts[gen.below(5)];
  for (int c : counts) EXPECT_NEAR(c, 1000, 150);
  EXPECT_THAT([&] { gen.below(0); }, ThrowsMessage<bp::ValueError>(HasSubstr("positive")));
}

TEST(Threads, SetAndGet) {
  const int before = bp::get_num_threads();
  bp::set_num_threads(1);
  EXPECT_EQ(bp::get_num_threads(), 1);
  bp::set_num_threads(before);
  EXPECT_EQ(bp::get_num_threads(), before);
  EXPECT_THAT([] { bp::set_num_threads(0); }, ThrowsMessage<bp::ValueError>(HasSubstr("got 0")));
}
