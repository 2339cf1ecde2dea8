// The model summary (backprop/io/summary.hpp): rows, shapes and counts against hand-computed values.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/summary.hpp>

namespace bp = backprop;
namespace nn = backprop::nn;

TEST(ModelSummary, RowsShapesAndCountsOfASequential) {
  bp::Generator gen(0);
  nn::Sequential net{nn::Linear(784, 256, gen), nn::ReLU(), nn::Linear(256, 10, gen)};
  const bp::io::ModelSummary s = bp::io::summary(net, {784});
  ASSERT_EQ(s.rows.size(), 4u);
  EXPECT_EQ(s.rows[0].name, "");
  EXPECT_EQ(s.rows[0].type, "Sequential");
  EXPECT_EQ(s.rows[0].output_shape, "[1, 10]");
  EXPECT_EQ(s.rows[0].parameters, 784 * 256 + 256 + 256 * 10 + 10);
  EXPECT_EQ(s.rows[1].name, "0");
  EXPECT_EQ(s.rows[1].depth, 1);
  EXPECT_EQ(s.rows[1].output_shape, "[1, 256]");
  EXPECT_EQ(s.rows[1].parameters, 784 * 256 + 256);
  EXPECT_EQ(s.rows[2].type, "ReLU");
  EXPECT_EQ(s.rows[2].parameters, 0);
  EXPECT_EQ(s.rows[3].output_shape, "[1, 10]");
  EXPECT_EQ(s.trainable_parameters, 203530);
  EXPECT_EQ(s.buffer_elements, 0);
  EXPECT_EQ(s.table(),
            "  Layer    Type           Output shape           Params\n"
            "  (model)  Sequential     [1, 10]               203,530\n"
            "    0      Linear         [1, 256]              200,960\n"
            "    1      ReLU           [1, 256]                    0\n"
            "    2      Linear         [1, 10]                 2,570\n"
            "  total params 203,530, trainable 203,530, non-trainable 0 (buffers: running statistics, "
            "counters)\n");
}

TEST(ModelSummary, WithoutInputShapeNoShapesAndNoForwardPass) {
  bp::Generator gen(0);
  nn::Sequential net{nn::Linear(3, 2, gen)};
  const bp::io::ModelSummary s = bp::io::summary(net);
  ASSERT_EQ(s.rows.size(), 2u);
  for (const bp::io::SummaryRow& r : s.rows) EXPECT_EQ(r.output_shape, "-");
}

TEST(ModelSummary, SharedLayerIsNamedOnceAndCountedOnce) {
  bp::Generator gen(4);
  auto shared = std::make_shared<nn::Linear>(3, 3, gen);
  nn::Sequential net(shared, nn::Tanh(), shared);
  const bp::io::ModelSummary s = bp::io::summary(net, {3});
  ASSERT_EQ(s.rows.size(), 4u);
  EXPECT_EQ(s.rows[3].type, "(same as 0)");
  EXPECT_EQ(s.rows[3].parameters, 0);
  EXPECT_EQ(s.rows[1].output_shape, "[1, 3]");
  EXPECT_EQ(s.trainable_parameters, 3 * 3 + 3);
}

// BatchNorm1d refuses a batch of one in training; the summary runs in eval mode and restores training mode,
// leaving the running statistics as they were.
TEST(ModelSummary, BatchNormCountsBuffersAndKeepsModeAndStatistics) {
  bp::Generator gen(1);
  nn::Sequential net{nn::Linear(4, 5, gen), nn::BatchNorm1d(5)};
  const std::map<std::string, bp::Tensor> before = net.state_dict();
  std::map<std::string, std::vector<double>> values;
  for (const auto& [name, t] : before) values[name] = t.to_vector();
  const bp::io::ModelSummary s = bp::io::summary(net, {4});
  EXPECT_TRUE(net.is_training());
  for (const auto& [name, t] : net.state_dict()) EXPECT_EQ(t.to_vector(), values[name]) << name;
  EXPECT_EQ(s.rows[2].type, "BatchNorm1d");
  EXPECT_EQ(s.rows[2].output_shape, "[1, 5]");
  EXPECT_EQ(s.rows[2].parameters, 2 * 5);
  std::int64_t buffers = 0;
  for (const auto& [_, t] : net.named_buffers()) buffers += t.numel();
  EXPECT_GE(buffers, 2 * 5);  // running mean and variance (and a counter)
  EXPECT_EQ(s.buffer_elements, buffers);
  EXPECT_NE(s.table().find("non-trainable " + bp::io::with_commas(buffers) + " "), std::string::npos);
}

TEST(ModelSummary, InputShapeTheModelDoesNotTakeThrowsShapeError) {
  bp::Generator gen(0);
  nn::Sequential net{nn::Linear(4, 2, gen)};
  EXPECT_THROW(bp::io::summary(net, {5}), bp::ShapeError);
}

TEST(ModelSummary, WithCommas) {
  EXPECT_EQ(bp::io::with_commas(0), "0");
  EXPECT_EQ(bp::io::with_commas(999), "999");
  EXPECT_EQ(bp::io::with_commas(1000), "1,000");
  EXPECT_EQ(bp::io::with_commas(1234567), "1,234,567");
  EXPECT_EQ(bp::io::with_commas(-1234567), "-1,234,567");
  EXPECT_EQ(bp::io::with_commas(-123), "-123");
}
