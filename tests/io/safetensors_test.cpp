// Round trips through save_safetensors / load_safetensors, and the errors of saving.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <cmath>
#include <limits>

#include "io/io_test_util.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

bp::io::NamedTensors sample(bp::Generator& gen) {
  return {.tensors = {{"layer1.weight", bp::randn({7, 5}, gen)},
                      {"layer1.bias", bp::randn({5}, gen, bp::f64)},
                      {"scale", bp::scalar(2.5)},
                      {"scale64", bp::scalar(-1.0 / 3.0, bp::f64)},
                      {"nothing", bp::zeros({0})},
                      {"nothing64", bp::zeros({3, 0, 2}, bp::f64)},
                      {"cube", bp::randn({2, 3, 4}, gen, bp::f64)}},
          .metadata = {{"epoch", "12"}, {"note", "caf\xc3\xa9 \"quoted\" \\ text"}}};
}

}  // namespace

TEST(Safetensors, RoundTripKeepsNamesOrderShapesDtypesBitsAndMetadata) {
  iotest::ScratchDir dir;
  bp::Generator gen(7);
  const bp::io::NamedTensors saved = sample(gen);
  const std::string path = dir.file("model.safetensors");
  bp::io::save_safetensors(path, saved);
  const bp::io::NamedTensors loaded = bp::io::load_safetensors(path);

  ASSERT_EQ(loaded.tensors.size(), saved.tensors.size());
  for (std::size_t i = 0; i < saved.tensors.size(); ++i) {
    EXPECT_EQ(loaded.tensors[i].first, saved.tensors[i].first);
    EXPECT_TRUE(iotest::same_bits(loaded.tensors[i].second, saved.tensors[i].second))
        << saved.tensors[i].first << ": saved " << saved.tensors[i].second << " loaded "
        << loaded.tensors[i].second;
    EXPECT_FALSE(loaded.tensors[i].second.requires_grad());
  }
  EXPECT_EQ(loaded.tensors[2].second.dim(), 0);
  EXPECT_EQ(loaded.tensors[2].second.item(), 2.5);
  EXPECT_EQ(loaded.metadata, saved.metadata);  // the checksum entry is not handed back
}

TEST(Safetensors, LoadedTensorsOwnTheirMemory) {
  iotest::ScratchDir dir;
  bp::Tensor w = bp::tensor({1, 2, 3});
  const std::string path = dir.file("w.safetensors");
  bp::io::save_safetensors(path, {.tensors = {{"w", w}}});
  bp::Tensor back = bp::io::load_safetensors(path).at("w");
  w.fill_(9);
  EXPECT_EQ(back.at({1}), 2.0);
}

TEST(Safetensors, FileLayoutIsPaddedHeaderWithChecksumThenPackedData) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("layout.safetensors");
  bp::io::save_safetensors(path,
                           {.tensors = {{"a", bp::tensor({1, 2, 3})}, {"b", bp::tensor({4, 5}, bp::f64)}}});
  const std::string bytes = iotest::read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t n = 0;
  for (int b = 0; b < 8; ++b)
    n |= std::uint64_t{static_cast<unsigned char>(bytes[static_cast<std::size_t>(b)])} << (8 * b);
  EXPECT_EQ(n % 8, 0u) << "header length " << n << " is not a multiple of 8";
  ASSERT_EQ(bytes.size(), 8 + n + 3 * 4 + 2 * 8);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_THAT(header, HasSubstr("\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"));
  EXPECT_THAT(header, HasSubstr("\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[12,28]}"));
  EXPECT_THAT(header, HasSubstr("\"backprop.checksum\":\"crc32:"));
  EXPECT_EQ(header.find("__metadata__"), 2u) << "metadata should come first: " << header;
  EXPECT_EQ(bytes.substr(8 + n, 12), iotest::f32_bytes({1, 2, 3}));
  EXPECT_EQ(bytes.substr(8 + n + 12), iotest::f64_bytes({4, 5}));
}

TEST(Safetensors, EmptyCollectionRoundTrips) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("empty.safetensors");
  bp::io::save_safetensors(path, {});
  const auto loaded = bp::io::load_safetensors(path);
  EXPECT_TRUE(loaded.tensors.empty());
  EXPECT_TRUE(loaded.metadata.empty());
}

TEST(Safetensors, SaveReplacesAnExistingFile) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  bp::io::save_safetensors(path, {.tensors = {{"w", bp::zeros({1000})}}});
  bp::io::save_safetensors(path, {.tensors = {{"v", bp::tensor({4, 5})}}});
  const auto loaded = bp::io::load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_EQ(loaded.tensors[0].first, "v");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});  // no temporary file left behind
}

TEST(Safetensors, SaveRejectsBadArgumentsBeforeWriting) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto expect_value_error = [&](const bp::io::NamedTensors& data, const std::string& expected) {
    try {
      bp::io::save_safetensors(path, data);
      ADD_FAILURE() << "expected ValueError containing '" << expected << "'";
    } catch (const bp::ValueError& e) {
      EXPECT_THAT(e.what(), HasSubstr(expected));
    }
    EXPECT_TRUE(dir.entries().empty()) << "a rejected save must not create any file";
  };
  const bp::Tensor ok = bp::tensor({1, 2});
  expect_value_error({.tensors = {{"w", ok}, {"w", ok}}}, "two tensors are named 'w'");
  expect_value_error({.tensors = {{"__metadata__", ok}}}, "reserves for metadata");
  expect_value_error({.tensors = {{"w", bp::Tensor()}}}, "tensor 'w' is undefined");
  expect_value_error({.tensors = {{"w", bp::tensor({1, 2, std::numeric_limits<double>::quiet_NaN()})}}},
                     "tensor 'w' [3] element 2 (index [2]) is nan");
  expect_value_error(
      {.tensors = {{"w", bp::tensor({{1, 2}, {3, std::numeric_limits<double>::infinity()}}, bp::f64)}}},
      "element 3 (index [1, 1]) is inf");
  expect_value_error({.tensors = {{"w", ok}}, .metadata = {{"backprop.checksum", "crc32:00000000"}}},
                     "'backprop.checksum' is reserved");
  expect_value_error({.tensors = {{"bad\xff", ok}}}, "not valid UTF-8");
  expect_value_error({.tensors = {{"w", ok}}, .metadata = {{"k", "\xc3"}}}, "not valid UTF-8");
}

TEST(Safetensors, AtNamesTheMissingTensorAndThoseThatExist) {
  const bp::io::NamedTensors data{.tensors = {{"a", bp::zeros({1})}, {"b", bp::zeros({2})}}};
  EXPECT_TRUE(data.contains("b"));
  EXPECT_FALSE(data.contains("c"));
  EXPECT_EQ(data.at("b").numel(), 2);
  try {
    (void)data.at("c");
    ADD_FAILURE() << "expected IndexError";
  } catch (const bp::IndexError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no tensor named 'c' (2 tensors: 'a', 'b')"));
  }
}
