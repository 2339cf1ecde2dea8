// Shared by the fuzz targets: the readers take paths, so each input is written to a file in memory-backed
// storage first. Any backprop::Error is an expected outcome; anything else (a crash, a sanitizer report,
// another exception type) is a finding.
#pragma once

#include <unistd.h>

#include <backprop/error.hpp>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fuzz {

inline const std::string& scratch_path(const char* suffix) {
  static const std::string path = [suffix] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/backprop-fuzz-" + std::to_string(getpid()) + suffix;
  }();
  return path;
}

inline void write_input(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
}

/// Runs `read(path)`; backprop::Error is fine, other exceptions abort (a finding).
template <class F>
int run(const std::uint8_t* data, std::size_t size, const char* suffix, F read) {
  const std::string& path = scratch_path(suffix);
  write_input(path, data, size);
  try {
    read(path);
  } catch (const backprop::Error&) {
  }
  return 0;
}

}  // namespace fuzz
