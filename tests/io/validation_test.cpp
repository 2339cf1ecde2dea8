// Every validation rule of load_safetensors, each with a hand-made file that breaks exactly that rule, and a
// check of the message: it names the file, the byte or tensor, and what was expected.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <limits>

#include "io/io_test_util.hpp"

namespace bp = backprop;
using iotest::expect_file_error;
using iotest::raw_file;

namespace {

class Validation : public ::testing::Test {
 protected:
  iotest::ScratchDir dir;
  std::string path = dir.file("t.safetensors");

  // Writes `bytes` and expects loading them to fail with a message containing the file name and `parts`.
  void expect_rejected(const std::string& bytes, std::initializer_list<std::string> parts) {
    iotest::write_bytes(path, bytes);
    expect_file_error([&] { bp::io::load_safetensors(path); }, {"'" + path + "'"});
    expect_file_error([&] { bp::io::load_safetensors(path); }, parts);
  }
  bp::io::NamedTensors load(const std::string& bytes) {
    iotest::write_bytes(path, bytes);
    return bp::io::load_safetensors(path);
  }
};

const std::string kOne = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_F(Validation, MinimalForeignFileWithoutPaddingMetadataOrChecksumLoads) {
  const auto loaded = load(raw_file(kOne, iotest::f32_bytes({1.5f, -2})));
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_TRUE(iotest::same_bits(loaded.at("w"), bp::tensor({1.5, -2})));
  EXPECT_TRUE(loaded.metadata.empty());
}

TEST_F(Validation, MissingFileAndDirectory) {
  expect_file_error([&] { bp::io::load_safetensors(dir.file("absent.safetensors")); },
                    {"cannot open", "absent.safetensors", "No such file"});
  expect_file_error([&] { bp::io::load_safetensors(dir.path().string()); }, {"not a regular file"});
}

TEST_F(Validation, FileShorterThanTheLengthField) {
  expect_rejected("", {"byte 0", "the file is 0 bytes, expected at least 8"});
  expect_rejected(std::string(7, '\0'), {"the file is 7 bytes, expected at least 8"});
}

TEST_F(Validation, HeaderLengthOverTheLimit) {
  std::string bytes = raw_file(kOne, iotest::f32_bytes({1, 2}));
  const std::uint64_t huge = bp::io::kMaxHeaderBytes + 1;
  for (int b = 0; b < 8; ++b)
    bytes[static_cast<std::size_t>(b)] = static_cast<char>((huge >> (8 * b)) & 0xff);
  expect_rejected(bytes, {"byte 0", "header length 100000001 exceeds the limit of 100000000 bytes"});
  for (int b = 0; b < 8; ++b) bytes[static_cast<std::size_t>(b)] = '\xff';
  expect_rejected(bytes, {"header length 18446744073709551615 exceeds"});
}

TEST_F(Validation, HeaderLengthPastTheEndOfTheFile) {
  std::string bytes = raw_file(kOne);
  expect_rejected(bytes.substr(0, bytes.size() - 1),
                  {"byte 0", "header length 54 runs past the end of the file (53 bytes"});
}

TEST_F(Validation, HeaderNotJson) {
  expect_rejected(raw_file(R"({"w": {"dtype": "F32",, })"),
                  {"byte 30", "column 23", "not valid UTF-8 JSON", "expected one JSON object"});
  expect_rejected(raw_file(""), {"not valid UTF-8 JSON"});
  expect_rejected(raw_file(kOne + " x"), {"not valid UTF-8 JSON"});
  expect_rejected(raw_file(std::string("{\"w\0\":1}", 8)), {"not valid UTF-8 JSON"});
}

// Found by fuzz/fuzz_safetensors: the JSON parser reports numbers beyond any C++ type as out_of_range.
TEST_F(Validation, NumberTooLargeForAnyTypeIsAFileError) {
  expect_rejected(
      raw_file(R"({"w":{"dtype":"F32","shape":[66666666E666666666666666666666666],"data_offsets":[0,8]}})"),
      {"not usable JSON", "number overflow", "expected numbers that fit 64 bits"});
}

TEST_F(Validation, HeaderNotUtf8) {
  expect_rejected(raw_file("{\"caf\xe9\":{}}"),
                  {"not valid UTF-8 JSON", "byte 14", "ill-formed UTF-8 byte", "\\xe9"});
  expect_rejected(raw_file("{\"\xed\xa0\x80\":{}}"), {"not valid UTF-8 JSON"});  // an encoded surrogate
  expect_rejected(raw_file(R"({"\ud800":{}})"), {"not valid UTF-8 JSON"});       // a lone escaped surrogate
}

TEST_F(Validation, HeaderNestedTooDeep) {
  expect_rejected(raw_file(std::string(100000, '[')), {"header: JSON nested more than 8 levels deep"});
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[[[[[[[[1]]]]]]]],"data_offsets":[0,4]}})"),
                  {"nested more than 8 levels"});
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})"),
                  {"tensor 'w'", "shape entry 0 is [1], expected a non-negative integer"});
}

TEST_F(Validation, HeaderNotAnObject) {
  expect_rejected(raw_file("[1, 2]"), {"byte 8", "the header is a JSON array, expected an object"});
  expect_rejected(raw_file("\"w\""), {"the header is a JSON string, expected an object"});
}

TEST_F(Validation, DuplicateKeysAreRejectedAtEveryLevel) {
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                           R"("w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
                  {"the name 'w' appears twice"});
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","dtype":"F64","shape":[0],"data_offsets":[0,0]}})"),
                  {"the key 'dtype' appears twice inside 'w'"});
  expect_rejected(raw_file(R"({"__metadata__":{"a":"1","a":"2"}})"),
                  {"the key 'a' appears twice inside '__metadata__'"});
}

TEST_F(Validation, MetadataMustMapStringsToStrings) {
  expect_rejected(raw_file(R"({"__metadata__":["a"]})"),
                  {"\"__metadata__\" is a JSON array, expected an object"});
  expect_rejected(raw_file(R"({"__metadata__":{"epoch":3}})"),
                  {"metadata 'epoch' is a JSON number, expected a string"});
  expect_rejected(raw_file(R"({"__metadata__":{"x":{"y":"z"}}})"), {"metadata 'x' is a JSON object"});
  const auto ok = load(raw_file(R"({"__metadata__":{"epoch":"3","":""}})"));
  EXPECT_EQ(ok.metadata, (std::map<std::string, std::string>{{"epoch", "3"}, {"", ""}}));
}

TEST_F(Validation, EntryFields) {
  expect_rejected(raw_file(R"({"w":[1]})"), {"tensor 'w'", "the entry is a JSON array, expected an object"});
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[0]}})"),
                  {"tensor 'w'", "missing field 'data_offsets'"});
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"strides":[1]}})"),
                  {"tensor 'w'", "unknown field 'strides'"});
}

TEST_F(Validation, DtypeMustBeOneTheReaderKnows) {
  for (const std::string& dt : std::vector<std::string>{"F8_E4M3", "I8", "U16", "C64", "f32"}) {
    expect_rejected(raw_file(R"({"w":{"dtype":")" + dt + R"(","shape":[0],"data_offsets":[0,0]}})"),
                    {"tensor 'w'",
                     "unsupported dtype '" + dt + "' (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)"});
  }
  expect_rejected(raw_file(R"({"w":{"dtype":32,"shape":[0],"data_offsets":[0,0]}})"),
                  {"\"dtype\" is a JSON number, expected a string"});
}

TEST_F(Validation, ShapeEntriesMustBeNonNegativeIntegers) {
  auto entry = [](const std::string& shape) {
    return raw_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})");
  };
  expect_rejected(entry("[2, -1]"), {"tensor 'w'", "shape entry 1 is -1, expected a non-negative integer"});
  expect_rejected(entry("[2.0]"), {"shape entry 0 is 2.0, expected a non-negative integer"});
  expect_rejected(entry("[1e3]"), {"expected a non-negative integer"});
  expect_rejected(entry("[\"3\"]"), {"shape entry 0 is \"3\""});
  expect_rejected(entry("[null]"), {"shape entry 0 is null"});
  expect_rejected(entry("[99999999999999999999]"), {"expected a non-negative integer"});  // beyond u64
  expect_rejected(entry("[9223372036854775808]"),
                  {"shape entry 0 is 9223372036854775808, more than the largest"});
  expect_rejected(entry("3"), {"\"shape\" is a JSON number, expected an array"});
  expect_rejected(entry("[1,1,1,1,1,1,1,1,1]"), {"shape has 9 dimensions, at most 8"});
}

TEST_F(Validation, ElementCountsAreOverflowCheckedInEveryDimensionOrder) {
  const std::string big = "4294967296";  // 2^32
  auto entry = [](const std::string& shape, const std::string& offsets = "[0,0]") {
    return raw_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}");
  };
  // Zero elements, whatever order the huge dimensions come in.
  for (const std::string& shape :
       {"[" + big + "," + big + ",0]", "[0," + big + "," + big + "]", "[" + big + ",0," + big + "]"}) {
    const auto loaded = load(entry(shape));
    EXPECT_EQ(loaded.at("w").numel(), 0) << shape;
    EXPECT_EQ(loaded.at("w").dim(), 3) << shape;
  }
  EXPECT_EQ(load(entry("[" + big + "," + big + ",0]")).at("w").shape(), (bp::Shape{1ll << 32, 1ll << 32, 0}));
  // 2^96 elements; 2^64, which wraps to 0 in 64-bit arithmetic; 2^63, one more than the largest count.
  expect_rejected(entry("[" + big + "," + big + "," + big + "]"),
                  {"tensor 'w'", "has more elements than fit"});
  expect_rejected(entry("[" + big + "," + big + "]"), {"has more elements than fit"});
  expect_rejected(entry("[2,4611686018427387904]"), {"has more elements than fit"});
  // 2^62 elements fit in the count, but 2^62 x 4 bytes does not fit in 64 bits.
  expect_rejected(entry("[4611686018427387904]"), {"holds more bytes than fit in 64 bits"});
  // 2^61 x 4 bytes = 2^63 fits, and must then match the offsets (it cannot: the file is tiny).
  expect_rejected(entry("[2305843009213693952]", "[0,9223372036854775808]"),
                  {"run past the end of the data section"});
}

TEST_F(Validation, DataOffsetsMustBeAnOrderedPairMatchingTheShape) {
  auto entry = [](const std::string& offsets, const std::string& data = iotest::f32_bytes({1, 2})) {
    return raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}", data);
  };
  expect_rejected(entry("[0]"), {"tensor 'w'", "data_offsets is [0], expected [begin, end]"});
  expect_rejected(entry("[0,8,16]"), {"expected [begin, end]"});
  expect_rejected(entry("[0,-8]"), {"expected [begin, end]"});
  expect_rejected(entry("{\"begin\":0}"), {"expected [begin, end]"});
  expect_rejected(entry("[8,0]"), {"data_offsets [8, 0] has begin > end"});
  expect_rejected(entry("[0,4]"), {"shape [2] of F32 needs 2 x 4 = 8 bytes, but data_offsets [0, 4] span 4"});
  expect_rejected(entry("[0,8]", iotest::f32_bytes({1})),
                  {"data_offsets [0, 8] run past the end of the data section (4 bytes)"});
}

TEST_F(Validation, RangesMustTileTheDataSectionFromZeroToTheEndOfTheFile) {
  const std::string a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":)";
  const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":)";
  const std::string data8 = iotest::f32_bytes({1, 2});
  const std::string gap_first = "{" + a + "[4,8]}}";
  const std::string data_start = std::to_string(8 + gap_first.size());  // the gap is at the data's first byte
  expect_rejected(raw_file(gap_first, data8),
                  {"byte " + data_start + ": gap of 4 bytes before tensor 'a'", "for the first tensor"});
  expect_rejected(
      raw_file("{" + a + "[0,4]}," + b + "[4,8]}}", data8 + "x"),
      {"the file goes on for 1 more bytes", "expected the data to end exactly at the end of the file"});
  expect_rejected(raw_file("{" + a + "[0,4]}," + b + "[0,4]}}", data8),
                  {"tensor 'b' (data_offsets [0, 4]) overlaps tensor 'a' (which ends at 4)"});
  expect_rejected(raw_file("{" + a + "[0,4]}," + b + "[8,12]}}", data8 + data8),
                  {"gap of 4 bytes before tensor 'b' (data_offsets begin at 8, expected 4 where 'a' ends)"});
  expect_rejected(raw_file("{}", "xyz"), {"byte 10", "goes on for 3 more bytes"});
  // Out of order in the header is fine: the ranges are what must tile.
  const auto loaded = load(raw_file("{" + b + "[4,8]}," + a + "[0,4]}}", data8));
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[0].first, "a");
  EXPECT_EQ(loaded.tensors[1].second.item(), 2.0);
  // Zero-length ranges may sit anywhere, even at the same offset as a non-empty one.
  const std::string e = R"("e":{"dtype":"F64","shape":[0,5],"data_offsets":)";
  EXPECT_EQ(load(raw_file("{" + a + "[0,4]}," + b + "[4,8]}," + e + "[4,4]}}", data8)).tensors.size(), 3u);
}

TEST_F(Validation, ChecksumCatchesAFlippedBit) {
  bp::Generator gen(3);
  bp::io::save_safetensors(path,
                           {.tensors = {{"w", bp::randn({4, 4}, gen)}, {"b", bp::randn({3}, gen, bp::f64)}}});
  const std::string good = iotest::read_bytes(path);
  std::string bad = good;
  bad[bad.size() - 5] ^= 0x10;  // inside b's mantissa: the value stays finite
  expect_rejected(bad, {"checksum mismatch", "the header records crc32:", "the file is corrupt"});
  EXPECT_NO_THROW(load(good));
}

TEST_F(Validation, ChecksumCoversNamesShapesAndMetadataButNotLayout) {
  bp::io::save_safetensors(
      path, {.tensors = {{"b", bp::tensor({3, 4})}, {"a", bp::tensor({1, 2})}, {"e", bp::zeros({0, 2})}},
             .metadata = {{"epoch", "7"}}});
  const std::string good = iotest::read_bytes(path);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string bytes = good;
    const auto at = bytes.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return bytes.replace(at, from.size(), to);
  };
  expect_rejected(replaced("\"a\":", "\"c\":"), {"checksum mismatch"});  // a renamed tensor
  expect_rejected(replaced("\"7\"", "\"8\""), {"checksum mismatch"});    // a changed metadata value
  expect_rejected(replaced("[0,2]", "[0,3]"), {"checksum mismatch"});    // an empty tensor's shape
  // The same content laid out differently by another writer (other tensor order, other header formatting)
  // with the metadata copied verifies.
  const std::string checksum = good.substr(good.find("crc32:"), 14);
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "e": {"dtype": "F32", "shape": [0, 2], "data_offsets": [8, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},)"
                             R"( "__metadata__": {"epoch": "7", "backprop.checksum": ")" +
                             checksum + "\"}}";
  const auto loaded = load(raw_file(header, iotest::f32_bytes({1, 2, 3, 4})));
  EXPECT_EQ(loaded.tensors[0].first, "a");
  EXPECT_EQ(loaded.metadata.at("epoch"), "7");
}

TEST_F(Validation, ChecksumMustBeWellFormed) {
  auto with = [](const std::string& checksum) {
    return raw_file(R"({"__metadata__":{"backprop.checksum":")" + checksum + R"("}})");
  };
  expect_rejected(with("12345678"),
                  {"metadata 'backprop.checksum' is '12345678', expected 'crc32:' followed by 8 hex digits"});
  expect_rejected(with("crc32:1234567"), {"expected 'crc32:'"});
  expect_rejected(with("crc32:1234567g"), {"expected 'crc32:'"});
  expect_rejected(with(""), {"expected 'crc32:'"});
  // No tensor and no metadata: the stream is two u64 zeros; Python's zlib.crc32(bytes(16)) is 0xecbb4b55.
  EXPECT_NO_THROW(load(with("crc32:ecbb4b55")));
  EXPECT_NO_THROW(load(with("crc32:ECBB4B55")));
  expect_rejected(with("crc32:ecbb4b56"),
                  {"header: checksum mismatch", "have crc32:ecbb4b55 but the header records crc32:ecbb4b56"});
}

TEST_F(Validation, NonFiniteValueIsFoundAnywhereInALargeTensor) {
  for (const std::size_t bad : {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{9999}}) {
    std::vector<double> values(10000, 1.0);
    values[bad] = std::numeric_limits<double>::infinity();
    const std::string header = R"({"v":{"dtype":"F64","shape":[100,100],"data_offsets":[0,80000]}})";
    expect_rejected(raw_file(header, iotest::f64_bytes(values)),
                    {"tensor 'v'", "element " + std::to_string(bad) + " (index [" +
                                       std::to_string(bad / 100) + ", " + std::to_string(bad % 100) + "]"});
  }
}

TEST_F(Validation, NonFiniteValuesAreRejectedNamingTheTensorAndElement) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::string header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  expect_rejected(raw_file(header, iotest::f32_bytes({1, 2, nan, 4})),
                  {"tensor 'w'", "element 2 (index [1, 0], file byte ", "is nan; expected finite values"});
  const std::string header64 = R"({"v":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})";
  expect_rejected(raw_file(header64, iotest::f64_bytes({-std::numeric_limits<double>::infinity()})),
                  {"tensor 'v'", "element 0 (index [0]", "is -inf"});
}
