// backprop/data/idx.hpp — the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.
//
// An IDX file is: 0x00 0x00, a type code, the number of dimensions n, then n big-endian uint32 sizes, then
// the elements in row-major order. Only unsigned bytes (type 0x08) are read; that is what image and label
// files use. Gzip is recognised by its magic bytes (1f 8b), never by the file name.
//
// The reader is written for files from the internet: every size is checked before it is used; the element
// count is checked for overflow before anything is allocated; a gzip stream is decompressed only up to the
// size its header declares (a small file that inflates to gigabytes cannot exhaust memory); truncated data
// and trailing bytes are reported; an HTML page or a Git-LFS pointer saved under the expected name is named
// as such. Every problem is a FileError naming the file, the byte offset (in the decompressed stream for
// gzip) and what was expected.
//
// Example:
//   namespace bpd = backprop::data;
//   auto train = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::train);
//   // train.features [60000, 1, 28, 28] f32 in [0, 1], train.targets [60000] i64 in 0..9
//   auto rows = train.flattened();                                      // features [60000, 784], shared
//   auto quick = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::test, 1000);
//   bpd::IdxArray raw = bpd::read_idx("t10k-labels-idx1-ubyte.gz");   // dims {10000}, 10000 bytes
#pragma once

#include <backprop/data/dataset.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace backprop::data {

/// An unsigned-byte IDX array: dims (outermost first) and the elements, row-major.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

/// Reads a whole IDX file (raw or gzip). With `limit` > 0 keeps only the first min(limit, dims[0]) entries of
/// the first dimension and reads (decompresses) only those; dims[0] then reports the kept count, and bytes
/// after them are not examined. Without a limit the whole file is checked, trailing bytes included. Throws
/// FileError: cannot open; empty; looks like HTML / a Git-LFS pointer / another known format; bad magic; type
/// code other than 0x08; 0 or more than 4 dimensions; a zero dimension; element count overflowing 64 bits or
/// larger than the file could hold; truncated data; trailing bytes; a corrupt gzip stream.
IdxArray read_idx(const std::string& path, std::int64_t limit = 0);

/// Reads and validates only the header of an IDX file (raw or gzip): its dims, outermost first.
/// Throws FileError as read_idx does for the header.
std::vector<std::int64_t> read_idx_dims(const std::string& path);

/// An MNIST-format directory: {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each either
/// raw or with ".gz" (names with a '.' before "idx", as some mirrors use, are found too).
/// features [N, 1, R, C] f32 = pixel / 255 in [0, 1] (a 4-D file [N, A, B, C] keeps its shape, a 2-D one is
/// [N, D]; TensorDataset::flattened() gives rows [N, R*C]); targets [N] i64 class indices; task classification.
/// class_names: index -> name; empty means the ten digits "0".."9". num_classes = class_names.size().
/// `limit` > 0 keeps only the first `limit` examples (and reads only those).
/// Throws FileError: a file missing (naming the names tried); image and label counts differ; a label
/// >= num_classes (naming the file, the byte offset and the label); or any read_idx error.
TensorDataset load_idx_dir(const std::string& dir, Split split, std::int64_t limit = 0,
                           std::vector<std::string> class_names = {});

/// Fashion-MNIST: 28x28 grey images of clothing in ten classes (T-shirt/top, Trouser, Pullover, Dress, Coat,
/// Sandal, Shirt, Sneaker, Bag, Ankle boot); 60000 training and 10000 test examples.
struct FashionMNIST {
  static constexpr const char* default_dir = "/usr/share/datasets/fashion-mnist";
  /// The ten class names, index -> name.
  static const std::vector<std::string>& class_names();
  /// load_idx_dir(dir, split, limit, class_names()); when a file is missing, the FileError also names the Debian
  /// package that installs the data set (dataset-fashion-mnist) and scripts/install-deps.
  static TensorDataset load(const std::string& dir, Split split, std::int64_t limit = 0);
};

}  // namespace backprop::data
