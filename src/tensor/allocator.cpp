// A caching allocator: freed blocks are kept in per-size free lists and handed out again, so steady-state
// training (same shapes every step) allocates nothing from the system.
#include <backprop/error.hpp>
#include <backprop/memory.hpp>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace backprop {
namespace {

constexpr std::size_t kAlignment = 64;

std::size_t round_up(std::size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;
  MemoryStats stats;

  ~Cache() { release_all(); }
  void release_all() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    stats.cached_bytes = 0;
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors in static objects may outlive any other static
  return *c;
}

}  // namespace

namespace detail {

void* allocate(std::size_t nbytes) {
  const std::size_t size = round_up(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  ++c.stats.allocations;
  c.stats.live_bytes += size;
  if (c.stats.live_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.live_bytes;
  auto it = c.free_blocks.find(size);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    c.stats.cached_bytes -= size;
    return p;
  }
  ++c.stats.os_allocations;
  void* p = std::aligned_alloc(kAlignment, size);
  if (p == nullptr) {
    c.stats.live_bytes -= size;
    throw OutOfMemoryError(
        detail::cat("out of memory: the system refused ", size, " bytes (", format_bytes(size),
                    ") for a tensor, with ", c.stats.live_bytes, " bytes (", format_bytes(c.stats.live_bytes),
                    ") of tensors alive and ", c.stats.cached_bytes, " cached"),
        size);
  }
  return p;
}

void deallocate(void* p, std::size_t nbytes) {
  if (p == nullptr) return;
  const std::size_t size = round_up(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.stats.live_bytes -= size;
#if defined(__SANITIZE_ADDRESS__)
  std::free(p);  // under AddressSanitizer every block goes back at once, so use-after-free is caught
#else
  c.free_blocks[size].push_back(p);
  c.stats.cached_bytes += size;
#endif
}

}  // namespace detail

MemoryStats memory_stats() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.stats;
}

void reset_peak_memory() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.stats.peak_bytes = c.stats.live_bytes;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.release_all();
}

}  // namespace backprop
