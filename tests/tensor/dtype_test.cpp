// i64 and bool_ tensors: conversions (against values PyTorch 1.13 gives), the refusals of float-only ops and
// of gradients, comparisons, i64 indices, and i64 class labels through a loader, a loss and accuracy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

std::vector<std::int64_t> ints(const bp::Tensor& view) {
  const bp::Tensor t = view.contiguous();
  const auto* p = t.data<std::int64_t>();
  return {p, p + t.numel()};
}
std::vector<bool> bools(const bp::Tensor& view) {
  const bp::Tensor t = view.contiguous();
  const bool* p = t.data<bool>();
  return std::vector<bool>(p, p + t.numel());
}
}  // namespace

TEST(DType, SizesNamesAndCppTypes) {
  EXPECT_EQ(bp::dtype_size(bp::i64), 8u);
  EXPECT_EQ(bp::dtype_size(bp::bool_), 1u);
  EXPECT_STREQ(bp::dtype_name(bp::i64), "i64");
  EXPECT_STREQ(bp::dtype_name(bp::bool_), "bool");
  static_assert(bp::dtype_of<std::int64_t> == bp::i64);
  static_assert(bp::dtype_of<bool> == bp::bool_);
  static_assert(bp::dtype_of<float> == bp::f32 && bp::dtype_of<double> == bp::f64);
  EXPECT_EQ(bp::zeros({3, 2}, bp::bool_).nbytes(), 6u);
}

// torch.tensor([...], dtype=torch.float64).long() / .bool(), and the same from float32.
TEST(DType, FloatToIntegerAndBoolMatchPyTorch) {
  const std::vector<double> x = {-2.7, -0.5, 0.0, 0.5, 2.7, 1e20, -1e20, kNan, kInf, -kInf, -0.0};
  const std::vector<std::int64_t> want_long = {-2, 0, 0, 0, 2, kMin, kMin, kMin, kMin, kMin, 0};
  const std::vector<bool> want_bool = {true, true, false, true, true, true, true, true, true, true, false};
  for (bp::DType from : {bp::f64, bp::f32}) {
    const bp::Tensor t = bp::from_vector(x, {}, from);
    EXPECT_EQ(ints(t.to(bp::i64)), want_long) << from;
    EXPECT_EQ(bools(t.to(bp::bool_)), want_bool) << from;
  }
}

TEST(DType, IntegerAndBoolToOthersMatchPyTorch) {
  bp::Tensor big = bp::from_vector({0, 0, 0}, {}, bp::i64);
  big.data<std::int64_t>()[0] = 9007199254740993;  // 2^53 + 1: rounds to nearest in f64 and f32
  big.data<std::int64_t>()[1] = 16777217;          // 2^24 + 1: exact in f64, rounds in f32
  big.data<std::int64_t>()[2] = -3;
  EXPECT_EQ(big.to(bp::f64).to_vector(), (std::vector<double>{9007199254740992.0, 16777217.0, -3.0}));
  EXPECT_EQ(big.to(bp::f32).to_vector(), (std::vector<double>{9007199254740992.0, 16777216.0, -3.0}));
  EXPECT_EQ(bools(big.to(bp::bool_)), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(bools(bp::tensor({0, 5, -1}, bp::i64).to(bp::bool_)), (std::vector<bool>{false, true, true}));
  const bp::Tensor mask = bp::tensor({1, 0, 1}, bp::bool_);
  EXPECT_EQ(ints(mask.to(bp::i64)), (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(mask.to(bp::f32).to_vector(), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(mask.to(bp::f64).to_vector(), (std::vector<double>{1, 0, 1}));
}

// Every pair of dtypes on values that all of them hold exactly: a round trip changes nothing.
TEST(DType, EveryPairRoundTripsExactValues) {
  const bp::DType all[] = {bp::f32, bp::f64, bp::i64, bp::bool_};
  for (bp::DType a : all)
    for (bp::DType b : all) {
      const bp::Tensor x = bp::tensor({0, 1, 1, 0}, a);
      const bp::Tensor y = x.to(b);
      EXPECT_EQ(y.dtype(), b);
      EXPECT_EQ(y.to_vector(), (std::vector<double>{0, 1, 1, 0})) << a << " -> " << b;
      EXPECT_TRUE(bp::allclose(y.to(a), x, 0, 0)) << a << " -> " << b << " -> " << a;
    }
  const bp::Tensor wide = bp::tensor({-7, 0, 42, 100000}, bp::i64);
  EXPECT_EQ(ints(wide.to(bp::f64).to(bp::i64)), ints(wide));
  EXPECT_EQ(ints(wide.to(bp::f32).to(bp::i64)), ints(wide));
}

TEST(DType, FactoriesItemsAndSet) {
  EXPECT_EQ(ints(bp::arange(5, bp::i64)), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ints(bp::full({2}, 7.9, bp::i64)), (std::vector<std::int64_t>{7, 7}));
  EXPECT_EQ(bools(bp::ones({2}, bp::bool_)), (std::vector<bool>{true, true}));
  bp::Tensor t = bp::zeros({2, 2}, bp::i64);
  t.set({1, 0}, -3.9);  // stored as to(i64) would store it: truncated
  EXPECT_EQ(t.at({1, 0}), -3.0);
  bp::Tensor m = bp::zeros({2}, bp::bool_);
  m.set({1}, 0.25);
  EXPECT_EQ(m.at({1}), 1.0);
  EXPECT_EQ(bp::scalar(12, bp::i64).item(), 12.0);
}

TEST(DType, PrintsIntegersExactlyAndBoolsAsWords) {
  bp::Tensor t = bp::tensor({1, -2}, bp::i64);
  t.data<std::int64_t>()[0] = 9007199254740993;
  std::ostringstream s;
  s << t << "\n" << bp::tensor({1, 0}, bp::bool_) << "\n" << bp::scalar(3, bp::i64);
  EXPECT_EQ(s.str(),
            "Tensor(shape=[2], dtype=i64)\n[9007199254740993,               -2]\n"
            "Tensor(shape=[2], dtype=bool)\n[ true, false]\nTensor(shape=[], dtype=i64)\n3");
}

TEST(DType, AllcloseComparesIntegersExactly) {
  bp::Tensor a = bp::tensor({1, 2}, bp::i64), b = bp::tensor({1, 2}, bp::i64);
  EXPECT_TRUE(bp::allclose(a, b));
  b.data<std::int64_t>()[1] = 3;
  EXPECT_FALSE(bp::allclose(a, b, 1.0, 10.0));  // tolerances do not apply to integers
}

TEST(DType, IntegerAndBoolTensorsCannotRequireGrad) {
  for (bp::DType dt : {bp::i64, bp::bool_}) {
    bp::Tensor t = bp::zeros({3}, dt);
    try {
      t.requires_grad_();
      FAIL() << "expected AutogradError for " << dt;
    } catch (const bp::AutogradError& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr("requires_grad_"), HasSubstr(bp::dtype_name(dt))));
    }
    EXPECT_FALSE(t.requires_grad());
    t.requires_grad_(false);  // asking for no gradient is fine
  }
}

TEST(DType, FloatOpsRefuseIntegerTensorsNamingOpAndArgument) {
  const bp::Tensor i = bp::tensor({1, 2}, bp::i64);
  const bp::Tensor f = bp::tensor({1, 2});
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const bp::DTypeError& e) {
      return std::string(e.what());
    }
    return std::string("no DTypeError");
  };
  EXPECT_THAT(message([&] { bp::add(i, i); }),
              AllOf(HasSubstr("add: a is a i64 tensor [2]"), HasSubstr("f32")));
  EXPECT_THAT(message([&] { bp::mul(f, i); }), HasSubstr("mul: b is a i64 tensor"));
  EXPECT_THAT(message([&] { bp::exp(i); }), HasSubstr("exp: x is a i64"));
  EXPECT_THAT(message([&] { bp::sum(bp::tensor({1, 0}, bp::bool_)); }), HasSubstr("sum: x is a bool"));
  EXPECT_THAT(message([&] { bp::softmax(i, 0); }), HasSubstr("softmax: x is a i64"));
  EXPECT_THAT(message([&] { bp::matmul(i.reshape({1, 2}), f.reshape({2, 1})); }), HasSubstr("matmul: a is"));
  EXPECT_THAT(message([&] {
                bp::Generator g(1);
                bp::randn({2}, g, bp::i64);
              }),
              HasSubstr("randn"));
  EXPECT_THAT(message([&] {
                bp::loss::CrossEntropy()(i.reshape({1, 2}), bp::tensor({0}, bp::i64));
              }),
              HasSubstr("CrossEntropy: scores is a i64"));
}

TEST(DType, ShapeAndIndexOpsWorkOnEveryDtype) {
  const bp::Tensor t = bp::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, bp::i64);
  EXPECT_EQ(ints(bp::transpose(t, 0, 1)), (std::vector<std::int64_t>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(ints(bp::narrow(t, 1, 1, 2)), (std::vector<std::int64_t>{2, 3, 5, 6}));
  EXPECT_EQ(ints(bp::cat({t, t}, 0)).size(), 12u);
  EXPECT_EQ(ints(bp::index_select(t, 1, bp::tensor({2, 0}, bp::i64))),
            (std::vector<std::int64_t>{3, 1, 6, 4}));
  const bp::Tensor m = bp::tensor({{1, 0}, {0, 1}}, bp::bool_);
  EXPECT_EQ(bools(bp::gather(m, 1, bp::from_vector({1, 1}, {2, 1}, bp::i64))),
            (std::vector<bool>{false, true}));
  EXPECT_EQ(ints(t.clone()), ints(t));
}

TEST(DType, IndicesAreI64AndFloatIndicesStillWork) {
  bp::Generator gen(3);
  const bp::Tensor x = bp::randn({4, 5}, gen, bp::f64).requires_grad_();
  const bp::Tensor am = bp::argmax(x, 1);
  EXPECT_EQ(am.dtype(), bp::i64);
  EXPECT_EQ(bp::argmin(x, 1).dtype(), bp::i64);
  const bp::ValuesIndices mx = bp::max_with_indices(x, 1);
  EXPECT_EQ(mx.indices.dtype(), bp::i64);
  EXPECT_EQ(ints(mx.indices), ints(am));
  const bp::ValuesIndices top = bp::topk(x, 2, 1);
  EXPECT_EQ(top.indices.dtype(), bp::i64);
  EXPECT_FALSE(am.requires_grad());
  // gather with i64 indices equals gather with the same indices as whole f64 numbers, gradient included.
  const bp::Tensor idx = bp::unsqueeze(am, 1);
  const bp::Tensor a = bp::gather(x, 1, idx), b = bp::gather(x, 1, idx.to(bp::f64));
  EXPECT_TRUE(bp::allclose(a, b, 0, 0));
  EXPECT_TRUE(bp::allclose(a.reshape({4}), mx.values, 0, 0));
  bp::sum(a).backward();
  EXPECT_EQ(bp::sum(x.grad()).item(), 4.0);
  EXPECT_THROW(bp::index_select(x, 0, bp::tensor({1, 0}, bp::bool_)), bp::DTypeError);
}

TEST(DType, ComparisonsReturnBoolAndLogicCombinesThem) {
  const bp::Tensor a = bp::tensor({1, 2, 3});
  const bp::Tensor b = bp::tensor({3, 2, 1}, bp::i64);
  EXPECT_EQ(bp::eq(a, b).dtype(), bp::bool_);
  EXPECT_EQ(bools(bp::eq(a, b)), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(bools(bp::ne(a, b)), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(bools(bp::lt(a, b)), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(bools(bp::le(a, b)), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(bools(bp::gt(a, b)), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(bools(bp::ge(a, b)), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(bools(bp::gt(b, 1.5)), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(bools(bp::eq(bp::tensor({kNan}), bp::tensor({kNan}))), (std::vector<bool>{false}));
  // Broadcasting: [2, 1] against [3].
  EXPECT_EQ(bp::lt(bp::from_vector({1, 2}, {2, 1}, bp::i64), b).shape(), (bp::Shape{2, 3}));
  const bp::Tensor p = bp::tensor({1, 1, 0, 0}, bp::bool_), q = bp::tensor({1, 0, 1, 0}, bp::bool_);
  EXPECT_EQ(bools(bp::logical_and(p, q)), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(bools(bp::logical_or(p, q)), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(bools(bp::logical_not(p)), (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(bp::count_nonzero(bp::logical_or(p, q)), 3);
}

// Class labels read from a CSV are i64; they flow through the DataLoader, cross_entropy and accuracy with the
// same results as the same labels stored as floats.
TEST(DType, I64LabelsThroughLoaderLossAndAccuracy) {
  const auto path = std::filesystem::temp_directory_path() / "backprop_dtype_labels.csv";
  {
    std::ofstream out(path);
    out << "a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,bird\n9,1,dog\n";
  }
  const bp::data::TensorDataset d = bp::data::read_csv(path.string(), {.target = "label"});
  std::filesystem::remove(path);
  ASSERT_EQ(d.targets.dtype(), bp::i64);
  EXPECT_EQ(ints(d.targets), (std::vector<std::int64_t>{1, 2, 1, 0, 2}));  // bird, cat, dog
  bp::data::DataLoader loader(d, {.batch_size = 5, .shuffle = true, .seed = 4});
  const bp::data::Batch batch = loader.batch(0);
  ASSERT_EQ(batch.targets.dtype(), bp::i64);
  bp::Generator gen(5);
  const bp::Tensor logits = bp::randn({5, 3}, gen, bp::f64);
  const bp::loss::CrossEntropy ce;
  const double with_i64 = ce(logits, batch.targets).item();
  EXPECT_EQ(with_i64, ce(logits, batch.targets.to(bp::f32)).item());
  EXPECT_EQ(bp::train::accuracy(logits, batch.targets),
            bp::train::accuracy(logits, batch.targets.to(bp::f64)));
  const std::int64_t hits = bp::count_nonzero(bp::eq(bp::argmax(logits, 1), batch.targets));
  EXPECT_EQ(bp::train::accuracy(logits, batch.targets), static_cast<double>(hits) / 5.0);
}
