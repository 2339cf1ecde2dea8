// Safetensors files with F16, BF16, I64, I32, U8 and BOOL tensors: a file written from PyTorch 1.13 tensors
// (tests/io/make_dtypes_reference.py), round trips of i64 and bool_, the widening conversions and their errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>

#include "io/io_test_util.hpp"
#include "io/safetensors_format.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
std::map<std::string, bp::Tensor> by_name(const bp::io::NamedTensors& nt) {
  std::map<std::string, bp::Tensor> m;
  for (const auto& [name, t] : nt.tensors) m[name] = t;
  return m;
}
std::vector<std::uint32_t> float_bits(const bp::Tensor& t) {
  std::vector<std::uint32_t> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), t.data<float>(), v.size() * 4);
  return v;
}
std::vector<std::int64_t> ints(const bp::Tensor& t) {
  const auto* p = t.data<std::int64_t>();
  return {p, p + t.numel()};
}
}  // namespace

TEST(SafetensorsDTypes, PyTorchFileLoadsEveryDtype) {
  const auto m = by_name(bp::io::load_safetensors(std::string(BACKPROP_SOURCE_DIR) +
                                                  "/tests/io/data/pytorch_dtypes.safetensors"));
  // F16 / BF16 widen to f32 exactly as torch's .float() does (subnormals, -0 and the largest values included).
  for (const char* name : {"f16", "bf16"}) {
    const bp::Tensor& t = m.at(name);
    EXPECT_EQ(t.dtype(), bp::f32) << name;
    EXPECT_EQ(float_bits(t), float_bits(m.at(std::string(name) + ".f32"))) << name;
  }
  EXPECT_EQ(m.at("i64").dtype(), bp::i64);
  EXPECT_EQ(ints(m.at("i64")), (std::vector<std::int64_t>{0, -1, INT64_MAX, INT64_MIN}));
  EXPECT_EQ(m.at("i32").dtype(), bp::i64);
  EXPECT_EQ(ints(m.at("i32")), (std::vector<std::int64_t>{2147483647, -2147483648LL, 0, 7}));
  EXPECT_EQ(ints(m.at("u8")), (std::vector<std::int64_t>{0, 1, 128, 255}));
  EXPECT_EQ(m.at("mask").dtype(), bp::bool_);
  EXPECT_EQ(m.at("mask").shape(), (bp::Shape{1, 3}));
  EXPECT_EQ(m.at("mask").to_vector(), (std::vector<double>{1, 0, 1}));
  // BatchNorm's counter: a 0-d I64 after three training steps, unchanged.
  const bp::Tensor& n = m.at("bn.num_batches_tracked");
  EXPECT_EQ(n.dtype(), bp::i64);
  EXPECT_EQ(n.dim(), 0);
  EXPECT_EQ(n.data<std::int64_t>()[0], 3);
}

TEST(SafetensorsDTypes, I64AndBoolRoundTrip) {
  iotest::ScratchDir dir;
  bp::Tensor i = bp::tensor({{0, -5}, {7, 0}}, bp::i64);
  i.data<std::int64_t>()[3] = INT64_MIN;
  const bp::Tensor b = bp::tensor({1, 0, 0, 1, 1}, bp::bool_);
  const std::string path = dir.file("ints.safetensors");
  bp::io::save_safetensors(path, {.tensors = {{"i", i}, {"b", b}, {"f", bp::tensor({1.5})}}});
  const auto m = by_name(bp::io::load_safetensors(path));
  EXPECT_EQ(m.at("i").dtype(), bp::i64);
  EXPECT_EQ(ints(m.at("i")), ints(i));
  EXPECT_EQ(m.at("b").dtype(), bp::bool_);
  EXPECT_EQ(m.at("b").to_vector(), b.to_vector());
  // Stored under the format's own names.
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(bytes, HasSubstr("\"dtype\":\"I64\""));
  EXPECT_THAT(bytes, HasSubstr("\"dtype\":\"BOOL\""));
}

// Every one of the 65536 half-precision bit patterns against the compiler's own _Float16 conversion: NaN
// payloads, infinities, subnormals and both zeros included.
TEST(SafetensorsDTypes, F16WideningIsExactForEveryBitPattern) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float want = static_cast<float>(std::bit_cast<_Float16>(bits));
    const float got = bp::io::detail::f16_to_f32(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << std::hex << h;
    } else {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(want)) << std::hex << h;
    }
  }
  EXPECT_EQ(bp::io::detail::f16_to_f32(0x7c00), INFINITY);
  EXPECT_EQ(bp::io::detail::f16_to_f32(0xfc00), -INFINITY);
  EXPECT_EQ(std::bit_cast<std::uint32_t>(bp::io::detail::f16_to_f32(0x7e00)), 0x7fc00000u);  // torch's NaN
  EXPECT_EQ(bp::io::detail::f16_to_f32(0x0001), 5.960464477539063e-08f);
  EXPECT_EQ(bp::io::detail::bf16_to_f32(0x7f80), INFINITY);
  EXPECT_EQ(std::bit_cast<std::uint32_t>(bp::io::detail::bf16_to_f32(0x7fc0)), 0x7fc00000u);
  EXPECT_EQ(bp::io::detail::bf16_to_f32(0x3f80), 1.0f);
}

namespace {
// A one-tensor file with the given dtype name, shape and data bytes.
std::string one_tensor_file(const std::string& dtype, const std::string& shape, const std::string& data) {
  const std::string header = "{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
                             ",\"data_offsets\":[0," + std::to_string(data.size()) + "]}}";
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b)
    out[static_cast<std::size_t>(b)] = static_cast<char>((header.size() >> (8 * b)) & 0xff);
  return out + header + data;
}
std::string load_error(const std::string& path) {
  try {
    bp::io::load_safetensors(path);
  } catch (const bp::FileError& e) {
    return e.what();
  }
  return "no FileError";
}
}  // namespace

TEST(SafetensorsDTypes, BadBytesAndSizesAreErrorsNamingTheTensor) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  iotest::write_bytes(path, one_tensor_file("BOOL", "[3]", std::string("\x01\x02\x00", 3)));
  EXPECT_THAT(load_error(path), HasSubstr("BOOL element 1"));
  iotest::write_bytes(path, one_tensor_file("F16", "[3]", std::string(4, '\0')));
  EXPECT_THAT(load_error(path), HasSubstr("of F16 needs 3 x 2 = 6 bytes"));
  iotest::write_bytes(path, one_tensor_file("I8", "[1]", std::string(1, '\0')));
  EXPECT_THAT(load_error(path), HasSubstr("unsupported dtype 'I8'"));
  // A F16 infinity widens to an f32 infinity, which loading refuses as for any float tensor.
  iotest::write_bytes(path, one_tensor_file("F16", "[2]", std::string("\x00\x3c\x00\x7c", 4)));
  EXPECT_THAT(load_error(path), HasSubstr("element 1"));
  iotest::write_bytes(path, one_tensor_file("U8", "[2]", std::string("\x07\xff", 2)));
  EXPECT_EQ(ints(bp::io::load_safetensors(path).tensors[0].second), (std::vector<std::int64_t>{7, 255}));
}
