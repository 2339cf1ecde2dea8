// Safetensors files with F16, BF16, I64, I32, U8 and BOOL tensors: files written from PyTorch 1.13 tensors
// (tests/io/make_dtypes_reference.py, make_written_reference.py) read, and written byte for byte alike; round
// trips; the conversions and their errors; BatchNorm's I64 counter, and the F64 one of older model files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
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

// ---- writing F16, BF16, I32 and U8 --------------------------------------------------------------------------

namespace {
// The data section of a safetensors file: everything after the length and the header.
std::string data_section(const std::string& path) {
  const std::string bytes = iotest::read_bytes(path);
  std::uint64_t n = 0;
  for (int b = 0; b < 8; ++b)
    n |= std::uint64_t{static_cast<unsigned char>(bytes[static_cast<std::size_t>(b)])} << (8 * b);
  return bytes.substr(8 + n);
}
std::string save_error(const bp::io::NamedTensors& data, const bp::io::SafetensorsOptions& options,
                       const std::string& path) {
  try {
    bp::io::save_safetensors(path, data, options);
  } catch (const bp::ValueError& e) {
    return e.what();
  }
  return "no ValueError";
}
}  // namespace

// tests/io/make_written_reference.py stores sources and PyTorch's conversions of them (.half(), .bfloat16(),
// .float(), .int(), .to(torch.uint8)). Saving the same sources with backprop, asking for the same stored
// dtypes, gives the same data bytes: rounding to nearest even, subnormals, ties and f64's double rounding.
TEST(SafetensorsDTypes, NarrowDtypesAreWrittenAsPyTorchWritesThem) {
  const std::string fixture = std::string(BACKPROP_SOURCE_DIR) + "/tests/io/data/pytorch_written.safetensors";
  const auto m = by_name(bp::io::load_safetensors(fixture));
  const std::vector<std::pair<std::string, std::string>> stored = {
      {"x", "F32"},   {"x.f16", "F16"}, {"x.bf16", "BF16"}, {"wide", "F32"},  {"wide.bf16", "BF16"},
      {"y", "F64"},   {"y.f16", "F16"}, {"y.bf16", "BF16"}, {"y.f32", "F32"}, {"i", "I64"},
      {"i.u8", "U8"}, {"i.i32", "I32"}, {"j", "I64"},       {"j.i32", "I32"}, {"mask", "BOOL"}};
  bp::io::NamedTensors data;
  bp::io::SafetensorsOptions options;
  for (const auto& [name, dtype] : stored) {
    const std::string source = name.substr(0, name.find('.'));
    data.tensors.emplace_back(name, m.at(source));
    options.dtypes[name] = dtype;
  }
  iotest::ScratchDir dir;
  const std::string path = dir.file("narrow.safetensors");
  bp::io::save_safetensors(path, data, options);
  EXPECT_EQ(data_section(path), data_section(fixture));
  // Loading gives back what PyTorch's widening gives: the F16 of f32 "x" is torch's x.half().float().
  const auto back = by_name(bp::io::load_safetensors(path));
  for (const char* name : {"x.f16", "x.bf16", "wide.bf16", "y.f16", "y.bf16", "y.f32"}) {
    EXPECT_EQ(back.at(name).dtype(), bp::f32) << name;
    EXPECT_EQ(float_bits(back.at(name)), float_bits(m.at(name))) << name;
  }
  EXPECT_EQ(back.at("i.u8").dtype(), bp::i64);
  EXPECT_EQ(ints(back.at("i.u8")), ints(m.at("i")));
  EXPECT_EQ(ints(back.at("j.i32")), ints(m.at("j")));
}

TEST(SafetensorsDTypes, FloatDtypeAppliesToEveryFloatTensorAndRoundTrips) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("half.safetensors");
  const bp::Tensor w = bp::tensor({{0.1, -2.0}, {65504.0, 1e-7}});
  const bp::Tensor d = bp::tensor({1.0 / 3.0}, bp::f64);
  const bp::Tensor n = bp::tensor({3, 4}, bp::i64);
  bp::io::save_safetensors(path, {.tensors = {{"w", w}, {"d", d}, {"n", n}}}, {.float_dtype = "F16"});
  const std::string bytes = iotest::read_bytes(path);
  EXPECT_THAT(bytes, HasSubstr("\"w\":{\"dtype\":\"F16\""));
  EXPECT_THAT(bytes, HasSubstr("\"d\":{\"dtype\":\"F16\""));
  EXPECT_THAT(bytes, HasSubstr("\"n\":{\"dtype\":\"I64\""));  // integers keep their own type
  const auto back = by_name(bp::io::load_safetensors(path));  // the checksum verifies
  EXPECT_EQ(back.at("w").dtype(), bp::f32);
  EXPECT_EQ(back.at("w").to_vector(),
            (std::vector<double>{0.0999755859375, -2.0, 65504.0, 1.1920928955078125e-07}));
  EXPECT_EQ(back.at("d").to_vector(), (std::vector<double>{0.333251953125}));
  // Saving what was loaded, as F16 again, writes the same bytes: the values are already F16 values.
  const std::string again = dir.file("again.safetensors");
  bp::io::save_safetensors(again,
                           {.tensors = {{"w", back.at("w")}, {"d", back.at("d")}, {"n", back.at("n")}}},
                           {.float_dtype = "F16", .dtypes = {{"d", "F16"}}});
  EXPECT_EQ(data_section(again), data_section(path));
}

namespace {
// bfloat16 nearest to finite f, ties to the even one, found by measuring both neighbours in double (the
// compiler has no bfloat16 type to compare with). Above the largest bfloat16, infinity stands for 2^128.
std::uint16_t nearest_bf16(float f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  const auto low = static_cast<std::uint16_t>(bits >> 16);
  const auto high = static_cast<std::uint16_t>(low + 1);
  const auto value = [](std::uint16_t b) {
    if ((b & 0x7f80u) == 0x7f80u) return std::ldexp((b & 0x8000u) ? -1.0 : 1.0, 128);
    return static_cast<double>(bp::io::detail::bf16_to_f32(b));
  };
  const double below = std::abs(f - value(low));
  const double above = std::abs(value(high) - f);
  if (below != above) return below < above ? low : high;
  return (low & 1u) ? high : low;
}
}  // namespace

// f32_to_f16 against the compiler's own conversion, f32_to_bf16 against nearest_bf16, for 2^22 bit patterns
// spread over every exponent (ties, subnormals, overflow, infinities and NaN included).
TEST(SafetensorsDTypes, NarrowingRoundsToNearestEvenForEveryExponent) {
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 1021) {
    const auto bits = static_cast<std::uint32_t>(b);
    const float f = std::bit_cast<float>(bits);
    const auto want = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
    const std::uint16_t got = bp::io::detail::f32_to_f16(f);
    if (std::isnan(f)) {
      ASSERT_EQ(got & 0x7e00u, 0x7e00u) << std::hex << bits;
    } else {
      ASSERT_EQ(got, want) << std::hex << bits;
    }
    if (!std::isnan(f) && !std::isinf(f)) {
      ASSERT_EQ(bp::io::detail::f32_to_bf16(f), nearest_bf16(f)) << std::hex << bits;
    }
  }
  EXPECT_EQ(bp::io::detail::f32_to_f16(65519.0f), 0x7bffu);  // rounds down to 65504
  EXPECT_EQ(bp::io::detail::f32_to_f16(65520.0f), 0x7c00u);  // the tie rounds to even: infinity
  EXPECT_EQ(bp::io::detail::f32_to_f16(-0.0f), 0x8000u);
  EXPECT_EQ(bp::io::detail::f32_to_f16(0x1p-25f), 0x0000u);    // half the smallest subnormal: to even, 0
  EXPECT_EQ(bp::io::detail::f32_to_f16(0x1.8p-24f), 0x0002u);  // 1.5 subnormal steps: to even, 2
  EXPECT_EQ(bp::io::detail::f32_to_bf16(0x1.01p0f), 0x3f80u);  // 1 + 2^-8 ties to 1
  EXPECT_EQ(bp::io::detail::f32_to_bf16(3.4e38f), 0x7f80u);    // beyond bfloat16's largest: infinity
}

TEST(SafetensorsDTypes, NarrowingErrorsNameTheTensorTheElementAndTheValue) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("never.safetensors");
  const bp::io::NamedTensors data{
      .tensors = {{"w", bp::tensor({1.0, 70000.0})}, {"ids", bp::tensor({{1, 2}, {300, 4}}, bp::i64)}}};
  std::string e = save_error(data, {.float_dtype = "F16"}, path);
  EXPECT_THAT(e, HasSubstr("tensor 'w' [2] element 1 (index [1]) is 70000, beyond the range of F16"));
  e = save_error(data, {.dtypes = {{"ids", "U8"}}}, path);
  EXPECT_THAT(
      e, HasSubstr("tensor 'ids' [2, 2] element 2 (index [1, 0]) is 300, outside the range of U8 [0, 255]"));
  EXPECT_THAT(
      save_error(data, {.dtypes = {{"ids", "F16"}}}, path),
      HasSubstr(
          "asks to store tensor 'ids' (i64) as F16; a tensor of dtype i64 is stored as I64, I32 or U8"));
  EXPECT_THAT(save_error(data, {.dtypes = {{"w", "I32"}}}, path),
              HasSubstr("is stored as F32, F64, F16 or BF16"));
  EXPECT_THAT(save_error(data, {.float_dtype = "F8"}, path),
              HasSubstr("options.float_dtype asks to store tensor 'w' as 'F8', which is not a dtype"));
  EXPECT_THAT(save_error(data, {.dtypes = {{"bias", "F16"}}}, path),
              HasSubstr("options.dtypes names tensor 'bias', which is not among the tensors saved"));
  EXPECT_FALSE(std::filesystem::exists(path));  // every refusal comes before the file system is touched
  // In range, the same tensors save: I32 holds 300, BF16 holds 70000 (rounded to 70144).
  bp::io::save_safetensors(path, data, {.float_dtype = "BF16", .dtypes = {{"ids", "I32"}}});
  const auto back = by_name(bp::io::load_safetensors(path));
  EXPECT_EQ(back.at("w").to_vector(), (std::vector<double>{1.0, 70144.0}));
  EXPECT_EQ(ints(back.at("ids")), (std::vector<std::int64_t>{1, 2, 300, 4}));
}

// ---- BatchNorm's num_batches_tracked: I64 as in PyTorch, F64 in older files -------------------------------

// A torch BatchNorm1d(3) state dict (tests/io/make_dtypes_reference.py, three training steps) loads with
// load_state_dict as it is: the I64 counter included.
TEST(SafetensorsDTypes, PyTorchBatchNormStateDictLoadsUnchanged) {
  const auto m = by_name(bp::io::load_safetensors(std::string(BACKPROP_SOURCE_DIR) +
                                                  "/tests/io/data/pytorch_dtypes.safetensors"));
  std::map<std::string, bp::Tensor> state;
  for (const auto& [name, t] : m)
    if (name.starts_with("bn.")) state[name.substr(3)] = t;
  bp::nn::BatchNorm1d bn(3);
  EXPECT_EQ(bn.state_dict().at("num_batches_tracked").dtype(), bp::i64);
  bn.load_state_dict(state);
  EXPECT_EQ(bn.num_batches_tracked(), 3);
  EXPECT_EQ(float_bits(bn.running_mean()), float_bits(m.at("bn.running_mean")));
  EXPECT_EQ(float_bits(bn.running_var()), float_bits(m.at("bn.running_var")));
  // Saved again, the counter is an I64 once more, so PyTorch loads it back unchanged too.
  iotest::ScratchDir dir;
  const std::string path = dir.file("bn.safetensors");
  bp::io::NamedTensors out;
  for (const auto& [name, t] : bn.state_dict()) out.tensors.emplace_back(name, t);
  bp::io::save_safetensors(path, out);
  EXPECT_THAT(iotest::read_bytes(path), HasSubstr("\"num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"));
}

// Model files written before the counter became I64 hold it as a 0-d F64: they load, the counter converted.
TEST(SafetensorsDTypes, OlderModelFilesWithAnF64CounterStillLoad) {
  bp::Generator gen(4);
  bp::nn::Sequential net{bp::nn::Linear(3, 4, gen), bp::nn::BatchNorm1d(4), bp::nn::ReLU()};
  for (int step = 0; step < 5; ++step) net(bp::randn({6, 3}, gen));
  iotest::ScratchDir dir;
  const std::string path = dir.file("model.safetensors");
  bp::io::save_model(path, net);
  // Rewrite the file as older code wrote it: the counter as F64.
  bp::io::NamedTensors file = bp::io::load_safetensors(path);
  for (auto& [name, t] : file.tensors)
    if (name == "1.num_batches_tracked") {
      ASSERT_EQ(t.dtype(), bp::i64);
      t = bp::scalar(5.0, bp::f64);
    }
  bp::io::save_safetensors(path, file);
  ASSERT_THAT(iotest::read_bytes(path), HasSubstr("\"1.num_batches_tracked\":{\"dtype\":\"F64\""));
  const auto loaded = bp::io::load_module(path);
  const bp::nn::BatchNorm1d* bn = nullptr;
  for (const auto& [name, m] : loaded->named_modules())
    if (name == "1") bn = dynamic_cast<const bp::nn::BatchNorm1d*>(m.get());
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(bn->num_batches_tracked(), 5);
  EXPECT_EQ(loaded->state_dict().at("1.num_batches_tracked").dtype(), bp::i64);
}
