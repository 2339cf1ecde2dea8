// backprop/memory.hpp — the caching allocator behind every tensor, and its counters.
//
// Tensor storage comes from a cache of freed blocks keyed by size, so a training loop that allocates the same
// shapes every step stops asking the operating system for memory after its first step. When the system
// refuses a block, the allocator throws OutOfMemoryError (backprop/error.hpp) naming the bytes (and, for a
// Tensor, its shape).
//
// Example:
//   bp::reset_peak_memory();
//   bp::Tensor loss = net(x).sum();
//   loss.backward();
//   std::cout << bp::memory_stats().peak_bytes;    // the most tensor bytes alive at once
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace backprop {

struct MemoryStats {
  std::size_t live_bytes = 0;        // bytes held by storages alive now
  std::size_t peak_bytes = 0;        // most live bytes since the last reset_peak_memory()
  std::size_t cached_bytes = 0;      // freed blocks kept for reuse
  std::uint64_t allocations = 0;     // storages created
  std::uint64_t os_allocations = 0;  // of which needed fresh memory from the system
};

MemoryStats memory_stats();
/// Sets peak_bytes to the current live_bytes.
void reset_peak_memory();
/// Returns all cached blocks to the system.
void empty_cache();
/// `bytes` for people: "512 bytes", "3.4 KiB", "1.5 GiB" (binary units, one decimal).
std::string format_bytes(std::uint64_t bytes);

namespace detail {
void* allocate(std::size_t nbytes);
void deallocate(void* p, std::size_t nbytes);
}  // namespace detail

}  // namespace backprop
