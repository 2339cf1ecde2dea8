// Damaged files: random byte flips, truncations and insertions of a valid IDX (raw and gzip) and CSV file
// must each either read or raise a FileError. Never a crash, another exception type, or a hang. The damage is
// drawn from a fixed seed so a failure reproduces; the seed and the mutation are printed with it.
#include <backprop/data.hpp>
#include <backprop/generator.hpp>

#include "data/data_test_util.hpp"

namespace bpd = backprop::data;
using data_test::Bytes;
using data_test::gzip_bytes;
using data_test::idx_bytes;
using data_test::TempDir;
using data_test::write_file;

namespace {

// One of: flip a byte, truncate, insert a byte, duplicate a slice.
Bytes damage(const Bytes& good, backprop::Generator& gen, std::string& what) {
  Bytes b = good;
  const auto at = static_cast<std::ptrdiff_t>(gen.below(b.size()));
  switch (gen.below(4)) {
    case 0:
      b[static_cast<std::size_t>(at)] ^= static_cast<std::uint8_t>(1 + gen.below(255));
      what = "flip byte " + std::to_string(at);
      break;
    case 1:
      b.resize(static_cast<std::size_t>(at));
      what = "truncate to " + std::to_string(at);
      break;
    case 2:
      b.insert(b.begin() + at, static_cast<std::uint8_t>(gen.below(256)));
      what = "insert at " + std::to_string(at);
      break;
    default: {
      const auto len = static_cast<std::ptrdiff_t>(gen.below(16) + 1);
      const Bytes slice(b.begin() + at, b.begin() + std::min<std::ptrdiff_t>(at + len, std::ssize(b)));
      b.insert(b.begin() + at, slice.begin(), slice.end());
      what = "duplicate " + std::to_string(slice.size()) + " bytes at " + std::to_string(at);
    }
  }
  return b;
}

template <class Read>
void survive_damage(const Bytes& good, const std::string& path, std::uint64_t seed, int rounds, Read read) {
  backprop::Generator gen(seed);
  int rejected = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string what;
    write_file(path, damage(good, gen, what));
    try {
      read(path);
    } catch (const backprop::FileError& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos)
          << "seed " << seed << ", " << what << ": message does not name the file";
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed << ", round " << round << ", " << what << ": " << e.what();
    }
  }
  EXPECT_GT(rejected, rounds / 4) << "hardly any damage was detected";
}

}  // namespace

TEST(Robustness, DamagedIdxFiles) {
  TempDir dir;
  Bytes data(3 * 5 * 5);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 37);
  const Bytes raw = idx_bytes({3, 5, 5}, data);
  auto read = [](const std::string& p) { bpd::read_idx(p); };
  survive_damage(raw, dir.file("raw.idx"), 1, 200, read);
  survive_damage(gzip_bytes(raw), dir.file("z.gz"), 2, 200, read);
}

TEST(Robustness, DamagedCsvFiles) {
  TempDir dir;
  const std::string text =
      "\xef\xbb\xbfx,\"y\",label\r\n1.5,2,\"a,b\"\r\n-3e2,4,c\r\n5,6,\"d \"\"q\"\"\"\r\n";
  const Bytes good(text.begin(), text.end());
  survive_damage(good, dir.file("t.csv"), 3, 250, [](const std::string& p) { bpd::read_csv(p); });
  survive_damage(good, dir.file("f.csv"), 4, 250,
                 [](const std::string& p) { bpd::read_csv_features(p, ',', -1, "2"); });
}
