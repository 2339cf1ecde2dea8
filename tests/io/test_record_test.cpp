// io::test_record: the evaluation's numbers and the misclassified examples, against a model whose predictions
// are its inputs (nn::Identity), so every expected value is known by hand.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/run_summary.hpp>

namespace bp = backprop;

namespace {

// Rows as logits of two classes: predicted 1, 0, 0, 1 (the larger column) against targets 0, 1, 0, 1.
bp::data::TensorDataset two_wrong() {
  bp::data::TensorDataset d;
  d.features = bp::from_vector(std::vector<double>{0.12345, 0.9, 1.5, -0.5, 0.7, 0.2, 0.1, 0.8}, {4, 2});
  d.targets = bp::from_vector(std::vector<double>{0, 1, 0, 1}, {4});
  d.num_classes = 2;
  return d;
}

}  // namespace

TEST(TestRecord, CopiesTheEvaluationAndFindsTheMisclassifiedInOrder) {
  bp::nn::Identity model;
  const bp::train::Evaluation e{.loss = 0.25,
                                .accuracy = 0.5,
                                .confusion = {{1, 1}, {1, 1}},
                                .per_class_accuracy = {0.5, 0.5},
                                .examples = 4};
  const bp::io::TestRecord r = bp::io::test_record(model, e, two_wrong(), {"cat", "dog"});
  EXPECT_EQ(r.loss, 0.25);
  EXPECT_EQ(r.accuracy, 0.5);
  EXPECT_EQ(r.examples, 4);
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(r.confusion, e.confusion);
  ASSERT_EQ(r.misclassified.size(), 2u);
  EXPECT_EQ(r.misclassified[0].index, 0);
  EXPECT_EQ(r.misclassified[0].true_class, 0);
  EXPECT_EQ(r.misclassified[0].predicted, 1);
  EXPECT_EQ(r.misclassified[1].index, 1);
  EXPECT_EQ(r.misclassified[1].true_class, 1);
  EXPECT_EQ(r.misclassified[1].predicted, 0);
  EXPECT_TRUE(r.misclassified[0].pixels.empty());  // no image shape: a table
}

TEST(TestRecord, ImagePixelsAreClampedAndRoundedAndTheCountIsCapped) {
  bp::nn::Identity model;
  const bp::io::TestRecord r = bp::io::test_record(model, {}, two_wrong(), {}, {1, 2}, 1);
  ASSERT_EQ(r.misclassified.size(), 1u);
  EXPECT_EQ(r.misclassified[0].shape, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(r.misclassified[0].pixels, (std::vector<double>{0.123, 0.9}));
  const bp::io::TestRecord second = bp::io::test_record(model, {}, two_wrong(), {}, {1, 2});
  ASSERT_EQ(second.misclassified.size(), 2u);
  EXPECT_EQ(second.misclassified[1].pixels, (std::vector<double>{1.0, 0.0}));  // 1.5 and -0.5 clamped
}

TEST(TestRecord, RegressionHasNoMisclassified) {
  bp::nn::Identity model;
  bp::data::TensorDataset d = two_wrong();
  d.task = bp::data::Task::regression;
  d.targets = bp::from_vector(std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0}, {4, 2});
  EXPECT_TRUE(bp::io::test_record(model, {}, d, {}).misclassified.empty());
}
