// IDX reader (raw or gzip) and MNIST-format directories.
#include <array>
#include <backprop/data/idx.hpp>
#include <backprop/io.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "data/byte_source.hpp"

namespace backprop::data {
namespace {

using detail::ByteSource;

struct IdxHeader {
  std::vector<std::int64_t> dims;
  std::uint64_t header_bytes = 0;  // 4 + 4 * ndims
  std::uint64_t data_bytes = 0;    // product of dims (one byte per element)
};

const char* idx_type_name(unsigned code) {
  switch (code) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return nullptr;
  }
}

std::string hex_bytes(const unsigned char* b, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    if (i) s += ' ';
    s += buf;
  }
  return s;
}

// Reads the magic and the dims, checking each against what the rest of the file can hold.
IdxHeader read_header(ByteSource& src) {
  const std::string& path = src.path();
  // The first 64 bytes are enough both for the magic and to recognise a wrong kind of file.
  std::array<unsigned char, 64> head{};
  std::size_t got = src.read(head.data(), 4);
  BP_CHECK(got > 0, FileError, path, ": ", src.gzip() ? "decompresses to 0 bytes" : "is empty (0 bytes)",
           "; expected an IDX file (magic 00 00 08 n)");
  if (got < 4 || head[0] != 0 || head[1] != 0) {
    got += src.read(head.data() + got, head.size() - got);
    const std::string kind = detail::describe_wrong_file(head.data(), got);
    BP_CHECK(kind.empty(), FileError, path, ": is ", kind, "; expected an IDX file (magic 00 00 08 n) at ",
             src.where(0));
    BP_CHECK(got >= 4, FileError, path, ": truncated header: the data ends at ", src.where(got),
             "; expected at least 4 bytes (magic 00 00 08 n)");
    BP_CHECK(false, FileError, path, ": bad magic at ", src.where(0), ": found ", hex_bytes(head.data(), 4),
             "; expected 00 00 <type> <ndims> (IDX)");
  }
  const unsigned type = head[2];
  if (type != 0x08) {
    const char* name = idx_type_name(type);
    BP_CHECK(name == nullptr, FileError, path, ": at ", src.where(2), ": IDX type code 0x",
             hex_bytes(&head[2], 1), " (", name ? name : "",
             ") is not supported; expected 0x08 (unsigned byte)");
    BP_CHECK(false, FileError, path, ": at ", src.where(2), ": 0x", hex_bytes(&head[2], 1),
             " is not an IDX type code; expected 0x08 (unsigned byte)");
  }
  const unsigned ndims = head[3];
  BP_CHECK(ndims >= 1 && ndims <= 4, FileError, path, ": at ", src.where(3), ": ", ndims,
           " dimensions; expected 1 to 4");
  IdxHeader h;
  h.header_bytes = 4 + 4 * ndims;
  unsigned char raw[16];
  got = src.read(raw, 4 * ndims);
  BP_CHECK(got == 4 * ndims, FileError, path, ": truncated header: the data ends at ", src.where(4 + got),
           "; expected ", ndims, " big-endian 4-byte dimensions up to byte offset ", h.header_bytes);
  std::uint64_t count = 1;
  bool overflow = false;
  std::string shape;
  for (unsigned k = 0; k < ndims; ++k) {
    const unsigned char* p = raw + 4 * k;
    const std::uint64_t d =
        (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) | (std::uint64_t{p[2]} << 8) | p[3];
    BP_CHECK(d > 0, FileError, path, ": at ", src.where(4 + 4 * k), ": dimension ", k,
             " is 0; expected a positive size");
    h.dims.push_back(static_cast<std::int64_t>(d));
    shape += (k ? " x " : "") + std::to_string(d);
    // Overflow is checked before anything is allocated: 2^31 x 2^31 x 2^31 must not wrap to a small number.
    if (count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / d)
      overflow = true;
    else
      count *= d;
  }
  BP_CHECK(!overflow, FileError, path, ": at ", src.where(4), ": dimensions ", shape,
           " overflow a 64-bit element count; expected a size that fits in memory");
  h.data_bytes = count;
  const std::uint64_t most = src.max_logical_size();
  BP_CHECK(h.data_bytes <= most - std::min(most, h.header_bytes), FileError, path, ": at ", src.where(4),
           ": dimensions ", shape, " declare ", h.data_bytes, " bytes of data, but ",
           src.gzip()
               ? "a gzip file of " + std::to_string(src.file_size()) + " bytes cannot decompress to that much"
               : "the file has only " + std::to_string(most - std::min(most, h.header_bytes)) +
                     " bytes after the header (truncated)");
  return h;
}

}  // namespace

std::vector<std::int64_t> read_idx_dims(const std::string& path) {
  ByteSource src(path);
  return read_header(src).dims;
}

IdxArray read_idx(const std::string& path, std::int64_t limit) {
  BP_CHECK(limit >= 0, ValueError, "read_idx: limit must be >= 0 (0 = everything), got ", limit);
  ByteSource src(path);
  const IdxHeader h = read_header(src);
  IdxArray out;
  out.dims = h.dims;
  std::uint64_t bytes = h.data_bytes;
  if (limit > 0 && limit < h.dims[0]) {
    bytes = h.data_bytes / static_cast<std::uint64_t>(h.dims[0]) * static_cast<std::uint64_t>(limit);
    out.dims[0] = limit;
  }
  out.data.resize(bytes);
  const std::size_t got = src.read(out.data.data(), bytes);
  BP_CHECK(got == bytes, FileError, path, ": truncated: the data ends at ", src.where(h.header_bytes + got),
           "; the header declares ", h.data_bytes, " bytes of data, up to byte offset ",
           h.header_bytes + h.data_bytes);
  if (bytes == h.data_bytes) src.expect_end(h.header_bytes + h.data_bytes);
  return out;
}

namespace {

// `missing_hint` ends the message when the file or the directory does not exist.
std::string find_idx_file(const std::string& dir, const std::string& prefix, const std::string& kind,
                          const std::string& what, const std::string& missing_hint) {
  // kind: "images-idx3" or "labels-idx1". Canonical names first, then the "images.idx3" spelling of some
  // mirrors.
  std::string dotted = kind;
  dotted[dotted.find('-')] = '.';
  const std::array<std::string, 4> names = {prefix + "-" + kind + "-ubyte", prefix + "-" + kind + "-ubyte.gz",
                                            prefix + "-" + dotted + "-ubyte",
                                            prefix + "-" + dotted + "-ubyte.gz"};
  std::string tried;
  for (const auto& name : names) {
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    if (io::input_exists(p.string(), "")) return p.string();
    tried += (tried.empty() ? "" : ", ") + name;
  }
  std::error_code ec;
  BP_CHECK(std::filesystem::is_directory(dir, ec), FileError, dir,
           ": no such directory; expected a directory of IDX files (", names[1], ", ...)", missing_hint);
  BP_CHECK(false, FileError, dir, ": no ", what, " file; tried ", tried, missing_hint);
  return {};
}

TensorDataset load_idx_files(const std::string& dir, Split split, std::int64_t limit,
                             std::vector<std::string> class_names, const std::string& missing_hint) {
  BP_CHECK(limit >= 0, ValueError, "load_idx_dir: limit must be >= 0 (0 = everything), got ", limit);
  if (class_names.empty())
    for (int d = 0; d < 10; ++d) class_names.push_back(std::to_string(d));
  const auto num_classes = static_cast<std::int64_t>(class_names.size());
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string split_name = split == Split::train ? "training" : "test";
  const std::string images_path =
      find_idx_file(dir, prefix, "images-idx3", split_name + " images", missing_hint);
  const std::string labels_path =
      find_idx_file(dir, prefix, "labels-idx1", split_name + " labels", missing_hint);

  // Compare the declared counts before reading any data (and before a limit hides a mismatch).
  const auto image_dims = read_idx_dims(images_path);
  const auto label_dims = read_idx_dims(labels_path);
  BP_CHECK(image_dims.size() >= 2, FileError, images_path, ": at byte offset 3: ", image_dims.size(),
           " dimension(s); expected images [N, rows, cols] (2 to 4 dimensions)");
  BP_CHECK(label_dims.size() == 1, FileError, labels_path, ": at byte offset 3: ", label_dims.size(),
           " dimensions; expected labels [N] (1 dimension)");
  BP_CHECK(image_dims[0] == label_dims[0], FileError, images_path, " holds ", image_dims[0], " images but ",
           labels_path, " holds ", label_dims[0], " labels (byte offset 4 of each); expected the same count");

  const IdxArray images = read_idx(images_path, limit);
  const IdxArray labels = read_idx(labels_path, limit);
  const std::int64_t n = images.dims[0];
  const std::int64_t d = static_cast<std::int64_t>(images.data.size()) / n;

  TensorDataset out;
  out.task = Task::classification;
  out.num_classes = num_classes;
  out.class_names = std::move(class_names);
  out.targets = Tensor({n}, i64);
  std::int64_t* y = out.targets.data<std::int64_t>();
  const bool gz = ByteSource(labels_path).gzip();
  for (std::int64_t i = 0; i < n; ++i) {
    const int label = labels.data[static_cast<std::size_t>(i)];
    BP_CHECK(label < num_classes, FileError, labels_path, ": label ", label, " of example ", i,
             " at byte offset ", 8 + i, gz ? " of the decompressed data" : "",
             " is not a class index; expected 0 to ", num_classes - 1);
    y[i] = label;
  }
  // Pixels 0..255 to [0, 1]; a 256-entry table gives the same float as pixel / 255.0f, without a division
  // each.
  std::array<float, 256> scale{};
  for (int v = 0; v < 256; ++v) scale[v] = static_cast<float>(v) / 255.0f;
  // Images keep their shape: [N, rows, cols] files give [N, 1, rows, cols] (one channel), 4-D files their own.
  Shape shape = {n, d};
  if (images.dims.size() == 3) shape = {n, 1, images.dims[1], images.dims[2]};
  if (images.dims.size() == 4) shape = {n, images.dims[1], images.dims[2], images.dims[3]};
  out.features = Tensor(shape, f32);
  float* x = out.features.data<float>();
  const std::uint8_t* px = images.data.data();
  for (std::size_t k = 0; k < images.data.size(); ++k) x[k] = scale[px[k]];
  return out;
}

}  // namespace

TensorDataset load_idx_dir(const std::string& dir, Split split, std::int64_t limit,
                           std::vector<std::string> class_names) {
  return load_idx_files(dir, split, limit, std::move(class_names), "");
}

const std::vector<std::string>& FashionMNIST::class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

TensorDataset FashionMNIST::load(const std::string& dir, Split split, std::int64_t limit) {
  return load_idx_files(
      dir, split, limit, class_names(),
      std::string(". Fashion-MNIST comes in the Debian package dataset-fashion-mnist (in ") + default_dir +
          "), which scripts/install-deps installs");
}

}  // namespace backprop::data
