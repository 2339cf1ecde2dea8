// A small PNG reader for the report tests: 8-bit gray, RGB or RGBA, not interlaced, all five row filters.
// Enough to read back encode_png's thumbnails and a browser's screenshots.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace report_test {

struct Image {
  std::int64_t width = 0;
  std::int64_t height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;  // row-major, channels bytes per pixel
};

inline std::uint32_t be32(const std::string& s, std::size_t at) {
  return static_cast<std::uint32_t>(
      static_cast<std::uint8_t>(s[at]) << 24 | static_cast<std::uint8_t>(s[at + 1]) << 16 |
      static_cast<std::uint8_t>(s[at + 2]) << 8 | static_cast<std::uint8_t>(s[at + 3]));
}

inline Image decode_png(const std::string& png) {
  if (png.size() < 8 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) throw std::runtime_error("not a PNG");
  Image img;
  std::string idat;
  int depth = 0, colour = 0, interlace = 0;
  for (std::size_t at = 8; at + 12 <= png.size();) {
    const std::uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (at + 12 + len > png.size()) throw std::runtime_error("truncated chunk " + type);
    const std::string data = png.substr(at + 8, len);
    const std::uint32_t crc = be32(png, at + 8 + len);
    const std::string body = png.substr(at + 4, 4 + len);
    if (crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())) != crc)
      throw std::runtime_error("bad CRC in chunk " + type);
    if (type == "IHDR") {
      img.width = be32(data, 0);
      img.height = be32(data, 4);
      depth = static_cast<std::uint8_t>(data[8]);
      colour = static_cast<std::uint8_t>(data[9]);
      interlace = static_cast<std::uint8_t>(data[12]);
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "IEND") {
      break;
    }
    at += 12 + len;
  }
  if (depth != 8 || interlace != 0) throw std::runtime_error("only 8-bit, non-interlaced PNGs are read here");
  img.channels = colour == 0 ? 1 : colour == 2 ? 3 : colour == 6 ? 4 : colour == 4 ? 2 : 0;
  if (img.channels == 0) throw std::runtime_error("unsupported colour type " + std::to_string(colour));
  const std::size_t stride = static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.channels);
  std::vector<std::uint8_t> raw((stride + 1) * static_cast<std::size_t>(img.height));
  uLongf raw_size = static_cast<uLongf>(raw.size());
  if (uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                 static_cast<uLong>(idat.size())) != Z_OK ||
      raw_size != raw.size())
    throw std::runtime_error("IDAT does not inflate to the image size");
  img.pixels.resize(stride * static_cast<std::size_t>(img.height));
  const std::size_t bpp = static_cast<std::size_t>(img.channels);
  for (std::size_t y = 0; y < static_cast<std::size_t>(img.height); ++y) {
    const std::uint8_t filter = raw[y * (stride + 1)];
    const std::uint8_t* in = &raw[y * (stride + 1) + 1];
    std::uint8_t* out = &img.pixels[y * stride];
    const std::uint8_t* up = y > 0 ? &img.pixels[(y - 1) * stride] : nullptr;
    for (std::size_t x = 0; x < stride; ++x) {
      const int a = x >= bpp ? out[x - bpp] : 0;
      const int b = up ? up[x] : 0;
      const int c = up && x >= bpp ? up[x - bpp] : 0;
      int predicted = 0;
      switch (filter) {
        case 0:
          predicted = 0;
          break;
        case 1:
          predicted = a;
          break;
        case 2:
          predicted = b;
          break;
        case 3:
          predicted = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw std::runtime_error("unknown row filter " + std::to_string(filter));
      }
      out[x] = static_cast<std::uint8_t>(in[x] + predicted);
    }
  }
  return img;
}

}  // namespace report_test
