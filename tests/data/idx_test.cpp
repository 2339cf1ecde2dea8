// IDX reader: good files (raw, gzip, several gzip members, limit) and hostile ones, each of which must give a
// FileError that names the file and the byte offset.
#include <sys/resource.h>

#include <backprop/data.hpp>
#include <cstdint>
#include <fstream>
#include <string>

#include "data/data_test_util.hpp"

namespace bpd = backprop::data;
using data_test::Bytes;
using data_test::error_of;
using data_test::gzip_bytes;
using data_test::idx_bytes;
using data_test::TempDir;
using data_test::write_file;
using ::testing::HasSubstr;

namespace {

Bytes counting(std::size_t n, unsigned mod = 251) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 7 + 3) % mod);
  return b;
}

std::string read_error(const std::string& path) {
  return error_of<backprop::FileError>([&] { bpd::read_idx(path); });
}

}  // namespace

TEST(Idx, ReadsRawAndGzipIdentically) {
  TempDir dir;
  const Bytes data = counting(5 * 3 * 4);
  write_file(dir.file("a.idx"), idx_bytes({5, 3, 4}, data));
  write_file(dir.file("a.idx.gz"), gzip_bytes(idx_bytes({5, 3, 4}, data)));
  write_file(dir.file("gz-without-suffix"), gzip_bytes(idx_bytes({5, 3, 4}, data)));
  for (const char* name : {"a.idx", "a.idx.gz", "gz-without-suffix"}) {
    const bpd::IdxArray a = bpd::read_idx(dir.file(name));
    EXPECT_EQ(a.dims, (std::vector<std::int64_t>{5, 3, 4})) << name;
    EXPECT_EQ(a.data, data) << name;
    EXPECT_EQ(bpd::read_idx_dims(dir.file(name)), a.dims) << name;
  }
}

TEST(Idx, LimitKeepsTheFirstEntries) {
  TempDir dir;
  const Bytes data = counting(10 * 6);
  write_file(dir.file("a.gz"), gzip_bytes(idx_bytes({10, 6}, data)));
  const bpd::IdxArray a = bpd::read_idx(dir.file("a.gz"), 4);
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{4, 6}));
  EXPECT_EQ(a.data, Bytes(data.begin(), data.begin() + 24));
  EXPECT_EQ(bpd::read_idx(dir.file("a.gz"), 100).dims[0], 10);  // a limit above the count keeps everything
}

TEST(Idx, ConcatenatedGzipMembersAreOneStream) {
  TempDir dir;
  const Bytes whole = idx_bytes({8, 2}, counting(16));
  Bytes gz = gzip_bytes(Bytes(whole.begin(), whole.begin() + 10));
  const Bytes second = gzip_bytes(Bytes(whole.begin() + 10, whole.end()));
  gz.insert(gz.end(), second.begin(), second.end());
  write_file(dir.file("two.gz"), gz);
  EXPECT_EQ(bpd::read_idx(dir.file("two.gz")).data, counting(16));
}

TEST(Idx, MissingAndEmptyFiles) {
  TempDir dir;
  EXPECT_THAT(read_error(dir.file("nope.idx")), HasSubstr("no such file"));
  EXPECT_THAT(read_error(dir.file("nope.idx")), HasSubstr(dir.file("nope.idx")));
  write_file(dir.file("empty"), Bytes{});
  EXPECT_THAT(read_error(dir.file("empty")), HasSubstr("is empty"));
  write_file(dir.file("empty.gz"), gzip_bytes(Bytes{}));
  EXPECT_THAT(read_error(dir.file("empty.gz")), HasSubstr("decompresses to 0 bytes"));
}

TEST(Idx, TruncatedDataNamesTheOffset) {
  TempDir dir;
  Bytes b = idx_bytes({10, 4, 4}, counting(160));
  b.resize(b.size() - 60);  // 16 header bytes + 100 of 160 data bytes
  write_file(dir.file("cut.idx"), b);
  const std::string raw = read_error(dir.file("cut.idx"));
  EXPECT_THAT(raw, HasSubstr(dir.file("cut.idx")));
  EXPECT_THAT(raw, HasSubstr("only 100 bytes after the header"));
  EXPECT_THAT(raw, HasSubstr("byte offset 4"));
  // In a gzip stream the size is unknown up front: the read itself runs out.
  write_file(dir.file("cut.gz"), gzip_bytes(b));
  const std::string gz = read_error(dir.file("cut.gz"));
  EXPECT_THAT(gz, HasSubstr("truncated"));
  EXPECT_THAT(gz, HasSubstr("byte offset 116 of the decompressed data"));
  EXPECT_THAT(gz, HasSubstr("declares 160 bytes"));
}

TEST(Idx, TruncatedHeader) {
  TempDir dir;
  Bytes b = idx_bytes({10, 4, 4}, {});
  b.resize(9);
  write_file(dir.file("h.idx"), b);
  const std::string msg = read_error(dir.file("h.idx"));
  EXPECT_THAT(msg, HasSubstr("truncated header"));
  EXPECT_THAT(msg, HasSubstr("byte offset 9"));
}

TEST(Idx, TruncatedGzipStream) {
  TempDir dir;
  // Incompressible-ish data so cutting the compressed file loses data, not only the trailer.
  Bytes data(4000);
  std::uint32_t s = 12345;
  for (auto& v : data) v = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  Bytes gz = gzip_bytes(idx_bytes({4000}, data));
  Bytes half(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  write_file(dir.file("half.gz"), half);
  EXPECT_THAT(read_error(dir.file("half.gz")), HasSubstr("truncated"));
  // All data present, only the 8-byte CRC/size trailer missing.
  Bytes no_trailer(gz.begin(), gz.end() - 8);
  write_file(dir.file("notrailer.gz"), no_trailer);
  const std::string msg = read_error(dir.file("notrailer.gz"));
  EXPECT_THAT(msg, HasSubstr("without its trailer"));
  EXPECT_THAT(msg, HasSubstr("byte offset 4008 of the decompressed data"));
}

TEST(Idx, CorruptGzipData) {
  TempDir dir;
  Bytes gz = gzip_bytes(idx_bytes({3000}, counting(3000, 256)));
  for (std::size_t i = 20; i < gz.size() - 8; i += 3) gz[i] ^= 0x5a;
  write_file(dir.file("bad.gz"), gz);
  const std::string msg = read_error(dir.file("bad.gz"));
  EXPECT_THAT(msg, HasSubstr(dir.file("bad.gz")));
  EXPECT_THAT(msg, HasSubstr("byte offset"));
}

TEST(Idx, BadMagic) {
  TempDir dir;
  Bytes b = idx_bytes({4}, counting(4));
  b[0] = 0x01;
  b[1] = 0x02;
  write_file(dir.file("m.idx"), b);
  const std::string msg = read_error(dir.file("m.idx"));
  EXPECT_THAT(msg, HasSubstr("bad magic at byte offset 0"));
  EXPECT_THAT(msg, HasSubstr("found 01 02 08 01"));
}

TEST(Idx, UnsupportedAndUnknownTypeCodes) {
  TempDir dir;
  write_file(dir.file("f.idx"), idx_bytes({2}, Bytes(8, 0), 0x0D));
  const std::string f = read_error(dir.file("f.idx"));
  EXPECT_THAT(f, HasSubstr("byte offset 2"));
  EXPECT_THAT(f, HasSubstr("0x0d (float32) is not supported; expected 0x08"));
  write_file(dir.file("u.idx"), idx_bytes({2}, Bytes(2, 0), 0x42));
  EXPECT_THAT(read_error(dir.file("u.idx")), HasSubstr("0x42 is not an IDX type code"));
}

TEST(Idx, DimensionCountAndZeroDimension) {
  TempDir dir;
  write_file(dir.file("d0.idx"), idx_bytes({}, {}));
  EXPECT_THAT(read_error(dir.file("d0.idx")), HasSubstr("byte offset 3: 0 dimensions; expected 1 to 4"));
  write_file(dir.file("d5.idx"), idx_bytes({1, 1, 1, 1, 1}, {7}));
  EXPECT_THAT(read_error(dir.file("d5.idx")), HasSubstr("byte offset 3: 5 dimensions"));
  write_file(dir.file("z.idx"), idx_bytes({3, 0}, {}));
  EXPECT_THAT(read_error(dir.file("z.idx")), HasSubstr("byte offset 8: dimension 1 is 0"));
}

TEST(Idx, ElementCountOverflowIsCaughtBeforeAllocating) {
  TempDir dir;
  const std::uint32_t big = 1u << 31;
  write_file(dir.file("o.idx"), idx_bytes({big, big, big}, counting(64)));
  const std::string msg = read_error(dir.file("o.idx"));
  EXPECT_THAT(msg, HasSubstr("2147483648 x 2147483648 x 2147483648 overflow"));
  EXPECT_THAT(msg, HasSubstr("byte offset 4"));
  // Large but representable: refused because the file cannot hold it, not by trying to allocate 4 TiB.
  write_file(dir.file("huge.gz"), gzip_bytes(idx_bytes({1u << 20, 1u << 22}, counting(64))));
  const std::string huge = read_error(dir.file("huge.gz"));
  EXPECT_THAT(huge, HasSubstr("cannot decompress to that much"));
  EXPECT_THAT(huge, HasSubstr("byte offset 4 of the decompressed data"));
}

namespace {

// Bytes this process has read through read() and similar calls so far (rchar of /proc/self/io).
std::uint64_t bytes_read_by_this_process() {
  std::ifstream io("/proc/self/io");
  for (std::string key; io >> key;) {
    std::uint64_t value = 0;
    io >> value;
    if (key == "rchar:") return value;
  }
  ADD_FAILURE() << "no rchar in /proc/self/io";
  return 0;
}

}  // namespace

TEST(Idx, GzipBombStopsAtTheDeclaredSize) {
  TempDir dir;
  // The header declares 10 bytes; the stream inflates to 8 GiB: 128 gzip members of 64 MiB of zeros each
  // (a valid multi-member gzip file of about 8 MB). Reading all of it would take seconds and, if buffered,
  // gigabytes; the reader must stop right after the declared size.
  const Bytes zeros(64 << 20, 0);
  Bytes gz = gzip_bytes(idx_bytes({10}, Bytes(10, 1)));
  const Bytes member = gzip_bytes(zeros);
  for (int i = 0; i < 128; ++i) gz.insert(gz.end(), member.begin(), member.end());
  ASSERT_LT(gz.size(), 16u << 20);
  write_file(dir.file("bomb.gz"), gz);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const std::uint64_t read_before = bytes_read_by_this_process();
  const std::string msg = read_error(dir.file("bomb.gz"));
  const std::uint64_t read_bytes = bytes_read_by_this_process() - read_before;
  getrusage(RUSAGE_SELF, &after);
  EXPECT_THAT(msg, HasSubstr("unexpected data at byte offset 18 of the decompressed data"));
  EXPECT_THAT(msg, HasSubstr("declares 18 bytes"));
  // Work measured as bytes read, not seconds: the reader stops within its first buffers of the 8 MB file.
  EXPECT_LT(read_bytes, 1u << 20) << "the reader read " << read_bytes << " of the file's " << gz.size()
                                  << " bytes: it inflated far past the declared size";
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 256 * 1024)
      << "peak memory grew by more than 256 MiB (ru_maxrss in KiB)";
}

TEST(Idx, TrailingBytes) {
  TempDir dir;
  Bytes b = idx_bytes({4, 2}, counting(8));
  b.push_back(9);
  b.push_back(9);
  write_file(dir.file("t.idx"), b);
  const std::string raw = read_error(dir.file("t.idx"));
  EXPECT_THAT(raw, HasSubstr("unexpected data at byte offset 20"));
  EXPECT_THAT(raw, HasSubstr("continues for 2 more bytes"));
  write_file(dir.file("t.gz"), gzip_bytes(b));
  EXPECT_THAT(read_error(dir.file("t.gz")), HasSubstr("byte offset 20 of the decompressed data"));
  // Garbage after a complete gzip member (not another member).
  Bytes gz = gzip_bytes(idx_bytes({4, 2}, counting(8)));
  const std::size_t end = gz.size();
  gz.insert(gz.end(), {'j', 'u', 'n', 'k'});
  write_file(dir.file("junk.gz"), gz);
  EXPECT_THAT(read_error(dir.file("junk.gz")),
              HasSubstr("after the end of the gzip stream at compressed byte offset " + std::to_string(end)));
  // With a limit only the needed bytes are read; trailing bytes past them are not looked at.
  const Bytes eight = counting(8);
  EXPECT_EQ(bpd::read_idx(dir.file("t.idx"), 2).data, Bytes(eight.begin(), eight.begin() + 4));
}

TEST(Idx, RecognisesHtmlLfsPointersAndArchives) {
  TempDir dir;
  write_file(dir.file("page.gz"),
             std::string("\n  <!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"));
  const std::string html = read_error(dir.file("page.gz"));
  EXPECT_THAT(html, HasSubstr(dir.file("page.gz")));
  EXPECT_THAT(html, HasSubstr("is an HTML page"));
  EXPECT_THAT(html, HasSubstr("byte offset 0"));
  write_file(dir.file("lfs"), std::string("version https://git-lfs.github.com/spec/v1\n"
                                          "oid sha256:4d7a6c7e0f1c2b3a\nsize 26421880\n"));
  const std::string lfs = read_error(dir.file("lfs"));
  EXPECT_THAT(lfs, HasSubstr("Git LFS pointer"));
  EXPECT_THAT(lfs, HasSubstr("byte offset 0"));
  // The same pages gzip-compressed are recognised after decompression.
  write_file(dir.file("page2.gz"),
             gzip_bytes(Bytes{'<', 'h', 't', 'm', 'l', '>', '<', '/', 'h', 't', 'm', 'l', '>'}));
  EXPECT_THAT(read_error(dir.file("page2.gz")), HasSubstr("HTML page"));
  write_file(dir.file("z.zip"), Bytes{'P', 'K', 3, 4, 20, 0, 0, 0});
  EXPECT_THAT(read_error(dir.file("z.zip")), HasSubstr("zip archive"));
}

TEST(Idx, LimitMustNotBeNegative) {
  TempDir dir;
  write_file(dir.file("a.idx"), idx_bytes({2}, {1, 2}));
  EXPECT_THAT(error_of<backprop::ValueError>([&] { bpd::read_idx(dir.file("a.idx"), -1); }),
              HasSubstr("limit must be >= 0"));
}
