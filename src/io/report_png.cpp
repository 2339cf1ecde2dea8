// A minimal PNG writer: one IHDR, one zlib-compressed IDAT (every row with filter 0), IEND. Enough for the
// report's small grayscale thumbnails; zlib supplies both the compression and the CRC-32 of each chunk.
#include <zlib.h>

#include <backprop/error.hpp>
#include <backprop/io/report.hpp>

namespace backprop::io {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

// length, type, data, CRC-32 of type + data.
void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<std::uint32_t>(
                   crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

std::string encode_png(const std::vector<std::uint8_t>& pixels, std::int64_t width, std::int64_t height,
                       int channels) {
  BP_CHECK(channels == 1 || channels == 3 || channels == 4, ValueError, "encode_png: ", channels,
           " channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)");
  BP_CHECK(width > 0 && height > 0 && width <= 65536 && height <= 65536, ValueError,
           "encode_png: image size ", width, " x ", height, " is outside 1..65536");
  const auto row_bytes = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  BP_CHECK(pixels.size() == row_bytes * static_cast<std::size_t>(height), ValueError,
           "encode_png: ", pixels.size(), " bytes for a ", width, " x ", height, " image with ", channels,
           " channels (expected ", row_bytes * static_cast<std::size_t>(height), ")");

  std::string raw;
  raw.reserve((row_bytes + 1) * static_cast<std::size_t>(height));
  for (std::int64_t y = 0; y < height; ++y) {
    raw += '\0';  // filter type 0: the row as it is
    raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<std::size_t>(y) * row_bytes,
               row_bytes);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                           reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 9);
  BP_CHECK(rc == Z_OK, ValueError, "encode_png: zlib compress failed with code ", rc);
  packed.resize(packed_size);

  std::string header;
  put_u32(header, static_cast<std::uint32_t>(width));
  put_u32(header, static_cast<std::uint32_t>(height));
  header += static_cast<char>(8);                                          // bits per channel
  header += static_cast<char>(channels == 1 ? 0 : channels == 3 ? 2 : 6);  // colour type
  header += std::string(3, '\0');  // deflate compression, adaptive filtering, no interlace

  std::string png = "\x89PNG\r\n\x1a\n";
  put_chunk(png, "IHDR", header);
  put_chunk(png, "IDAT", packed);
  put_chunk(png, "IEND", "");
  return png;
}

}  // namespace backprop::io
