// backprop/train/memory_estimate.hpp — how much memory training a network will need, before it is built.
//
// estimate_memory() adds up what training an io::Architecture keeps in tensors: the parameters, one gradient
// per parameter, the optimiser's state (momentum buffers, Adam's two moments, ...), and the activations one
// batch saves for backward plus the gradients flowing back through the widest layer. Measured against
// memory_stats().peak_bytes of a real training step, the total is within a factor of 2 (1.07-1.41 over the
// cases of tests/train/memory_estimate_test.cpp; it errs high).
// available_memory() says what the machine can give this process, so a configuration that cannot fit is
// refused before anything is allocated (backprop train does this, naming --layers or --batch-size).
//
// Example:
//   bp::io::Architecture arch{.inputs = 784, .hidden = {256, 128}, .outputs = 10};
//   bp::train::MemoryEstimate need = bp::train::estimate_memory(arch, 128, "adam");
//   std::cout << need.text() << "\n";   // parameters 0.9 MiB, gradients 0.9 MiB, optimizer state 1.8 MiB, ...
//   if (auto room = bp::train::available_memory(); room && need.total() > room->bytes)
//     std::cout << "needs " << need.total() << " bytes, " << room->source << " allows " << room->bytes << "\n";
//   bp::config::Config cfg;
//   bp::train::check_memory(arch, cfg, /*rows=*/60000, /*data_bytes=*/0);   // ConfigError if it cannot fit
#pragma once

#include <backprop/config.hpp>
#include <backprop/io/model_file.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace backprop::train {

/// Bytes of tensor memory, by what they hold.
struct MemoryEstimate {
  std::uint64_t parameters = 0;   // weights, biases and batch-norm buffers
  std::uint64_t gradients = 0;    // one per parameter
  std::uint64_t optimizer = 0;    // the optimiser's per-parameter state
  std::uint64_t activations = 0;  // one batch: the saved forward outputs and the backward's gradients
  std::uint64_t data = 0;         // the data set, as the caller gave it
  std::string optimizer_name;     // as given to estimate_memory

  /// The sum of all parts.
  std::uint64_t total() const;
  /// "parameters 1.2 MiB, gradients 1.2 MiB, optimizer state 2.4 MiB (adam), activations ..., data ...".
  std::string text() const;
};

/// Copies of the parameters an optimiser keeps: 0 for sgd, 1 for momentum / nesterov / rmsprop (2 with
/// rmsprop's momentum > 0), 2 for adam / adamw. Throws ValueError for another name.
int optimizer_state_copies(const std::string& optimizer, double momentum = 0.0);

/// The memory training `arch` in batches of `batch` rows (f32) with `optimizer` needs; `data_bytes` is
/// reported as the data part. Does not allocate. Throws ValueError if batch < 1 or the optimiser is unknown.
MemoryEstimate estimate_memory(const io::Architecture& arch, std::int64_t batch, const std::string& optimizer,
                               double momentum = 0.0, std::uint64_t data_bytes = 0);

/// What the system lets this process allocate now, and which limit says so.
struct AvailableMemory {
  std::uint64_t bytes = 0;
  std::string source;  // "MemAvailable in /proc/meminfo", "RLIMIT_AS (ulimit -v)" or "cgroup memory.max"
};

/// The least of: MemAvailable (/proc/meminfo), the address-space limit RLIMIT_AS minus what the process
/// already maps, and the cgroup's memory.max minus memory.current. Nothing when none of them can be read.
std::optional<AvailableMemory> available_memory();

/// Before the network is built: throws ConfigError when training `arch` as `config` says (train.batch_size,
/// 0 = all `rows` at once; optimizer.name and momentum) needs more memory than available_memory() allows,
/// beyond the `data_bytes` already loaded. The message gives both numbers and names the flag that sets the
/// larger part first (--layers for the model, --batch-size for the activations). Nothing when the memory
/// available cannot be read.
void check_memory(const io::Architecture& arch, const config::Config& config, std::int64_t rows,
                  std::uint64_t data_bytes);

}  // namespace backprop::train
