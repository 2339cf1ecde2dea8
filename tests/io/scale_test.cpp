// Readers and writers are linear in their input: a file of 50,000 tensors, and a model of 20,000 hidden
// layers (100x the largest fixtures), are read and written in time proportional to their size. Two bounds,
// each a ratio of times measured in the same test, so a loaded machine slows both sides alike:
// - growth: 10x the tensors (layers) takes at most 40x the time; linear code measures 10-16x (a std::map
//   adds a log factor), quadratic code 100x;
// - against a file of the same size holding one tensor (one wide layer): at most 5000x; linear code measures
//   25-300x (each tensor has its JSON entry, its allocation and its checks, where one tensor is one memcpy),
//   while the quadratic code this replaced took minutes (a read of 50,000 tensors: over 30,000x).
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "io/io_test_util.hpp"
#include "util/best_of_three.hpp"

namespace bp = backprop;

namespace {

using testutil::best_of_three;

constexpr double kGrowth = 40;  // for 10x the input
constexpr double kVsOneTensor = 5000;

bp::io::NamedTensors numbered_tensors(int n) {
  bp::io::NamedTensors out;
  for (int i = 0; i < n; ++i)
    out.tensors.emplace_back("layers." + std::to_string(i) + ".weight",
                             bp::full({4}, static_cast<double>(i)));
  return out;
}

bp::io::ModelFile model(std::vector<std::int64_t> hidden) {
  bp::io::ModelFile m{.architecture = {.inputs = 2, .hidden = std::move(hidden), .outputs = 2},
                      .preprocessing = {.task = "classification", .input = "table"}};
  bp::Generator gen(1);
  m.state = bp::io::build_network(m.architecture, gen)->state_dict();
  m.training_json = "{}";
  return m;
}

}  // namespace

TEST(IoScale, SafetensorsOf50000TensorsReadAndWriteInTimeLinearInTheirCount) {
  iotest::ScratchDir dir(iotest::fast_temp_directory());
  const bp::io::NamedTensors small = numbered_tensors(5'000), large = numbered_tensors(50'000);
  const std::string small_path = dir.file("small.safetensors"), large_path = dir.file("large.safetensors");
  const double write_small = best_of_three([&] { bp::io::save_safetensors(small_path, small); });
  const double write_large = best_of_three([&] { bp::io::save_safetensors(large_path, large); });
  const auto bytes = std::filesystem::file_size(large_path);

  // One tensor whose file has the same size as the large one.
  const bp::io::NamedTensors one{.tensors = {{"all", bp::zeros({static_cast<std::int64_t>(bytes / 4)})}}};
  const std::string one_path = dir.file("one.safetensors");
  const double write_one = best_of_three([&] { bp::io::save_safetensors(one_path, one); });
  ASSERT_NEAR(static_cast<double>(std::filesystem::file_size(one_path)), static_cast<double>(bytes), 256.0);

  bp::io::NamedTensors loaded;
  const double read_small = best_of_three([&] { bp::io::load_safetensors(small_path); });
  const double read_large = best_of_three([&] { loaded = bp::io::load_safetensors(large_path); });
  const double read_one = best_of_three([&] { bp::io::load_safetensors(one_path); });
  ASSERT_EQ(loaded.tensors.size(), 50'000u);
  EXPECT_EQ(loaded.tensors[12345].first, "layers.12345.weight");
  EXPECT_EQ(loaded.tensors[12345].second.at({3}), 12345.0);

  const auto report = [&](const char* what, double s5k, double s50k, double one_s) {
    return ::testing::Message() << what << ": 5,000 tensors " << s5k << " s, 50,000 tensors (" << bytes
                                << " bytes) " << s50k << " s, one tensor of as many bytes " << one_s << " s";
  };
  // The measurements, for docs/files.md.
  std::printf("%s\n%s\n", report("write", write_small, write_large, write_one).GetString().c_str(),
              report("read", read_small, read_large, read_one).GetString().c_str());
  EXPECT_LE(write_large, kGrowth * write_small) << report("write", write_small, write_large, write_one);
  EXPECT_LE(read_large, kGrowth * read_small) << report("read", read_small, read_large, read_one);
  EXPECT_LE(write_large, kVsOneTensor * write_one) << report("write", write_small, write_large, write_one);
  EXPECT_LE(read_large, kVsOneTensor * read_one) << report("read", read_small, read_large, read_one);
}

TEST(IoScale, ModelOf20000LayersSavesAndLoadsInTimeLinearInItsLayers) {
  iotest::ScratchDir dir(iotest::fast_temp_directory());
  // Hidden layers of width 2: 20,000 of them make a Sequential of 40,001 children and 40,002 tensors.
  const bp::io::ModelFile small = model(std::vector<std::int64_t>(2'000, 2));
  const bp::io::ModelFile large = model(std::vector<std::int64_t>(20'000, 2));
  const bp::io::ModelFile wide = model({30'000});  // one hidden layer, about as many bytes as `large`
  const std::string small_path = dir.file("small.safetensors"), large_path = dir.file("large.safetensors"),
                    wide_path = dir.file("wide.safetensors");
  const double save_small = best_of_three([&] { bp::io::save_model(small_path, small); });
  const double save_large = best_of_three([&] { bp::io::save_model(large_path, large); });
  const double save_wide = best_of_three([&] { bp::io::save_model(wide_path, wide); });
  const auto load = [](const std::string& path) {
    return bp::io::load_network(bp::io::load_model(path), path);
  };
  std::shared_ptr<bp::nn::Sequential> net;
  const double load_small = best_of_three([&] { load(small_path); });
  const double load_large = best_of_three([&] { net = load(large_path); });
  const double load_wide = best_of_three([&] { load(wide_path); });
  ASSERT_EQ(net->size(), 40'001u);
  EXPECT_EQ(net->num_parameters(), 20'000 * 6 + 6);

  // The deep file is bigger (its header names every tensor): against the wide model, compare time per byte.
  const double large_bytes = static_cast<double>(std::filesystem::file_size(large_path));
  const double wide_bytes = static_cast<double>(std::filesystem::file_size(wide_path));
  const auto report = [&](const char* what, double s2k, double s20k, double wide_s) {
    return ::testing::Message() << what << ": 2,000 layers " << s2k << " s, 20,000 layers (" << large_bytes
                                << " bytes) " << s20k << " s, one layer (" << wide_bytes << " bytes) "
                                << wide_s << " s";
  };
  std::printf("%s\n%s\n", report("save", save_small, save_large, save_wide).GetString().c_str(),
              report("load", load_small, load_large, load_wide).GetString().c_str());
  EXPECT_LE(save_large, kGrowth * save_small) << report("save", save_small, save_large, save_wide);
  EXPECT_LE(load_large, kGrowth * load_small) << report("load", load_small, load_large, load_wide);
  EXPECT_LE(save_large / large_bytes, kVsOneTensor * save_wide / wide_bytes)
      << report("save", save_small, save_large, save_wide);
  EXPECT_LE(load_large / large_bytes, kVsOneTensor * load_wide / wide_bytes)
      << report("load", load_small, load_large, load_wide);
}

// metrics.jsonl: 100,000 epoch records (100x a long run's) read in time linear in their count.
TEST(IoScale, MetricsLogOf100000RecordsReadsInTimeLinearInItsRecords) {
  iotest::ScratchDir dir(iotest::fast_temp_directory());
  const auto write_log = [&](const std::string& path, int records) {
    bp::io::MetricsWriter writer(path, true);
    for (int e = 1; e <= records; ++e)
      writer.epoch({.epoch = e, .train_loss = 1.0 / e, .train_accuracy = 0.5, .lr = 0.01, .updates = 10});
  };
  const std::string small_path = dir.file("small.jsonl"), large_path = dir.file("large.jsonl");
  write_log(small_path, 10'000);
  write_log(large_path, 100'000);
  bp::io::Metrics read;
  const double small_s = best_of_three([&] { bp::io::read_metrics(small_path); });
  const double large_s = best_of_three([&] { read = bp::io::read_metrics(large_path); });
  ASSERT_EQ(read.epochs.size(), 100'000u);
  EXPECT_EQ(read.epochs.back().epoch, 100'000);
  std::printf("metrics.jsonl: 10,000 records %g s, 100,000 records %g s\n", small_s, large_s);
  EXPECT_LE(large_s, kGrowth * small_s)
      << "10,000 records read in " << small_s << " s, 100,000 in " << large_s << " s";
}
