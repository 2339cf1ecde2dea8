// estimate_memory() against the real peak of a training step, and what it does with absurd sizes.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/train/memory_estimate.hpp>
#include <limits>

namespace bp = backprop;

namespace {

// The most tensor bytes alive at once during two steps of training `arch` in batches of `batch` rows, from
// building the network on (memory_stats(), so only what this measurement allocates counts).
std::uint64_t measured_peak(const bp::io::Architecture& arch, std::int64_t batch,
                            const std::string& optimizer) {
  bp::empty_cache();
  const std::size_t before = bp::memory_stats().live_bytes;
  bp::reset_peak_memory();
  {
    bp::Generator gen(3);
    auto net = bp::io::build_network(arch, gen);
    std::unique_ptr<bp::optim::Optimizer> opt;
    if (optimizer == "adam")
      opt = std::make_unique<bp::optim::Adam>(net->parameters(), bp::optim::AdamOptions{.lr = 1e-3});
    else
      opt = std::make_unique<bp::optim::SGD>(net->parameters(), bp::optim::SGDOptions{.lr = 0.1});
    bp::loss::CrossEntropy loss;
    const bp::Tensor x = bp::randn({batch, arch.inputs}, gen);
    std::vector<double> labels(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<double>(i % arch.outputs);
    const bp::Tensor y = bp::from_vector(labels, {batch});
    for (int step = 0; step < 2; ++step) {
      opt->zero_grad();
      bp::Tensor l = loss(net->forward(x), y);
      l.backward();
      opt->step();
    }
  }
  return bp::memory_stats().peak_bytes - before;
}

}  // namespace

// The estimate is within a factor of 2 of the real peak (the bound backprop/train/memory_estimate.hpp states).
TEST(MemoryEstimate, IsWithinAFactorOfTwoOfTheMeasuredPeak) {
  const struct {
    bp::io::Architecture arch;
    std::int64_t batch;
    const char* optimizer;
  } cases[] = {
      {{.inputs = 784, .hidden = {256, 128}, .outputs = 10}, 64, "adam"},
      {{.inputs = 784, .hidden = {256, 128}, .outputs = 10}, 1024, "sgd"},
      {{.inputs = 100, .hidden = {512, 512, 512}, .outputs = 10, .batchnorm = true, .dropout = 0.2},
       256,
       "adam"},
  };
  for (const auto& c : cases) {
    const std::uint64_t peak = measured_peak(c.arch, c.batch, c.optimizer);
    // The batch x is part of the activations; its labels y stand for the data.
    const bp::train::MemoryEstimate e = bp::train::estimate_memory(c.arch, c.batch, c.optimizer, 0.0,
                                                                   static_cast<std::uint64_t>(c.batch) * 4);
    EXPECT_LE(e.total(), 2 * peak) << c.optimizer << " batch " << c.batch << ": " << e.text() << " vs "
                                   << peak;
    EXPECT_LE(peak, 2 * e.total()) << c.optimizer << " batch " << c.batch << ": " << e.text() << " vs "
                                   << peak;
  }
}

TEST(MemoryEstimate, CountsOptimizerStateByOptimizer) {
  const bp::io::Architecture arch{.inputs = 10, .hidden = {20}, .outputs = 3};
  const std::uint64_t params = (10 * 20 + 20 + 20 * 3 + 3) * 4;
  EXPECT_EQ(bp::train::estimate_memory(arch, 8, "sgd").parameters, params);
  EXPECT_EQ(bp::train::estimate_memory(arch, 8, "sgd").optimizer, 0u);
  EXPECT_EQ(bp::train::estimate_memory(arch, 8, "momentum").optimizer, params);
  EXPECT_EQ(bp::train::estimate_memory(arch, 8, "adam").optimizer, 2 * params);
  EXPECT_EQ(bp::train::estimate_memory(arch, 8, "rmsprop", 0.9).optimizer, 2 * params);
  EXPECT_THROW(bp::train::estimate_memory(arch, 8, "lbfgs"), bp::ValueError);
  EXPECT_THROW(bp::train::estimate_memory(arch, 0, "sgd"), bp::ValueError);
  // A larger batch changes only the activations.
  EXPECT_GT(bp::train::estimate_memory(arch, 800, "sgd").activations,
            50 * bp::train::estimate_memory(arch, 8, "sgd").activations);
}

TEST(MemoryEstimate, AbsurdSizesSaturateInsteadOfWrapping) {
  const bp::io::Architecture arch{
      .inputs = 1'000'000'000, .hidden = {1'000'000'000, 1'000'000'000}, .outputs = 10};
  const bp::train::MemoryEstimate e = bp::train::estimate_memory(arch, 1'000'000'000, "adam");
  EXPECT_GT(e.parameters, std::uint64_t{1} << 60);
  EXPECT_EQ(e.total(), std::numeric_limits<std::uint64_t>::max());
}

TEST(MemoryEstimate, AvailableMemoryIsKnownOnLinux) {
  const auto free = bp::train::available_memory();
  ASSERT_TRUE(free.has_value());
  EXPECT_GT(free->bytes, 0u);
  EXPECT_FALSE(free->source.empty());
  EXPECT_EQ(bp::format_bytes(512), "512 bytes");
  EXPECT_EQ(bp::format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(bp::format_bytes(std::uint64_t{3} << 30), "3.0 GiB");
}

TEST(CheckMemory, RefusesWhatNoMachineHasNamingTheLargerPartFirst) {
  ASSERT_TRUE(bp::train::available_memory().has_value());  // /proc/meminfo on Linux
  bp::config::Config cfg;                                  // adam, batch 128
  const bp::io::Architecture small{.inputs = 4, .hidden = {16}, .outputs = 3};
  EXPECT_NO_THROW(bp::train::check_memory(small, cfg, 150, 0));
  // 2^41 weights: 8 TiB each of parameters and gradients, 16 TiB of Adam's moments.
  const bp::io::Architecture huge{.inputs = 4, .hidden = {1 << 20, 1 << 21}, .outputs = 3};
  try {
    bp::train::check_memory(huge, cfg, 150, 0);
    ADD_FAILURE() << "a network of 2^41 weights was accepted";
  } catch (const bp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("; reduce --layers 1048576,2097152 (network 4-1048576-2097152-3; "),
              std::string::npos)
        << e.what();
  }
  // A full batch of 2^40 rows: the activations are the larger part.
  cfg.train.batch_size = 0;
  try {
    bp::train::check_memory(small, cfg, std::int64_t{1} << 40, 0);
    ADD_FAILURE() << "a batch of 2^40 rows was accepted";
  } catch (const bp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("; reduce --batch-size full (activations of one batch: "),
              std::string::npos)
        << e.what();
  }
}
