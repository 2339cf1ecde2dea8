// The memory a training configuration needs (backprop/train/memory_estimate.hpp), and what the system gives.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/memory.hpp>
#include <backprop/train/memory_estimate.hpp>
#include <fstream>
#include <limits>
#include <sstream>

namespace backprop::train {
namespace {

constexpr std::uint64_t kFloat = 4;  // training runs in f32

// a * b, saturating: an absurd configuration must give a huge estimate, not a wrapped small one.
std::uint64_t mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? std::numeric_limits<std::uint64_t>::max() : out;
}
std::uint64_t add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? std::numeric_limits<std::uint64_t>::max() : out;
}

// The first number after `key` in a "key value" text file (/proc/meminfo, memory.stat), or nothing.
std::optional<std::uint64_t> number_after(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(key)) continue;
    std::istringstream fields(line.substr(key.size()));
    std::uint64_t value = 0;
    if (fields >> value) return value;
  }
  return std::nullopt;
}

// The single number in a file such as memory.max ("max" or unreadable: nothing).
std::optional<std::uint64_t> number_in(const std::string& file) {
  std::ifstream in(file);
  std::uint64_t value = 0;
  if (in >> value) return value;
  return std::nullopt;
}

// The process's cgroup v2 directory, from the "0::/path" line of /proc/self/cgroup.
std::optional<std::string> cgroup_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("0::")) return "/sys/fs/cgroup" + line.substr(3);
  return std::nullopt;
}

}  // namespace

std::uint64_t MemoryEstimate::total() const {
  return add(add(add(parameters, gradients), add(optimizer, activations)), data);
}

std::string MemoryEstimate::text() const {
  return detail::cat("parameters ", format_bytes(parameters), ", gradients ", format_bytes(gradients),
                     ", optimizer state ", format_bytes(optimizer), " (", optimizer_name, "), activations ",
                     format_bytes(activations), ", data ", format_bytes(data));
}

int optimizer_state_copies(const std::string& optimizer, double momentum) {
  if (optimizer == "sgd") return 0;
  if (optimizer == "momentum" || optimizer == "nesterov") return 1;
  if (optimizer == "rmsprop") return momentum > 0 ? 2 : 1;
  if (optimizer == "adam" || optimizer == "adamw") return 2;
  throw ValueError("estimate_memory: unknown optimizer '" + optimizer +
                   "' (expected sgd, momentum, nesterov, adam, adamw or rmsprop)");
}

MemoryEstimate estimate_memory(const io::Architecture& arch, std::int64_t batch, const std::string& optimizer,
                               double momentum, std::uint64_t data_bytes) {
  BP_CHECK(batch >= 1, ValueError, "estimate_memory: batch must be >= 1, got ", batch);
  MemoryEstimate e;
  e.optimizer_name = optimizer;
  e.data = data_bytes;
  const auto rows = static_cast<std::uint64_t>(batch);
  // Elements: parameters; per batch, the batch itself and what the forward keeps for backward; the widest
  // layer's outputs (no gradient flows into the batch, so its width does not count there).
  std::uint64_t params = 0, saved = mul(rows, static_cast<std::uint64_t>(arch.inputs)), widest = 0;
  std::uint64_t in = static_cast<std::uint64_t>(arch.inputs);
  for (std::int64_t h : arch.hidden) {
    const auto w = static_cast<std::uint64_t>(h);
    params = add(params, add(mul(in, w), w));
    // Linear output and activation output; batch norm adds its normalised input and output, dropout its
    // mask and output; DropConnect masks a copy of the weights.
    std::uint64_t per_row = 2 + (arch.batchnorm ? 2 : 0) + (arch.dropout > 0 ? 2 : 0);
    saved = add(saved, mul(mul(rows, w), per_row));
    if (arch.batchnorm) params = add(params, mul(4, w));  // gamma, beta, running mean and variance
    if (arch.dropconnect > 0) saved = add(saved, mul(2, mul(in, w)));
    widest = std::max(widest, mul(rows, w));
    in = w;
  }
  const auto out = static_cast<std::uint64_t>(arch.outputs);
  params = add(params, add(mul(in, out), out));
  saved = add(saved, mul(mul(rows, out), 3));  // logits, their softmax and its gradient
  widest = std::max(widest, mul(rows, out));
  e.parameters = mul(params, kFloat);
  e.gradients = e.parameters;
  e.optimizer = mul(e.parameters, static_cast<std::uint64_t>(optimizer_state_copies(optimizer, momentum)));
  // Backward holds the gradient of a layer's output and of its input at once.
  e.activations = mul(add(saved, mul(2, widest)), kFloat);
  return e;
}

std::optional<AvailableMemory> available_memory() {
  std::optional<AvailableMemory> best;
  auto consider = [&](std::uint64_t bytes, const char* source) {
    if (!best || bytes < best->bytes) best = AvailableMemory{bytes, source};
  };
  if (auto kib = number_after("/proc/meminfo", "MemAvailable:"))
    consider(mul(*kib, 1024), "MemAvailable in /proc/meminfo");
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    // The limit covers every mapping of the process (code, stacks, heap), so what is already mapped is spent.
    std::uint64_t mapped = 0;
    std::ifstream statm("/proc/self/statm");
    statm >> mapped;
    mapped = mul(mapped, static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
    const auto cur = static_cast<std::uint64_t>(limit.rlim_cur);
    consider(cur > mapped ? cur - mapped : 0, "RLIMIT_AS (ulimit -v)");
  }
  if (const auto dir = cgroup_dir()) {
    const auto max = number_in(*dir + "/memory.max");
    const auto current = number_in(*dir + "/memory.current");
    if (max && current) consider(*max > *current ? *max - *current : 0, "cgroup memory.max");
  }
  return best;
}

void check_memory(const io::Architecture& arch, const config::Config& cfg, std::int64_t rows,
                  std::uint64_t data_bytes) {
  const std::int64_t batch =
      cfg.train.batch_size == 0 ? std::max<std::int64_t>(rows, 1) : cfg.train.batch_size;
  const MemoryEstimate need =
      estimate_memory(arch, batch, cfg.optimizer.name, cfg.optimizer.momentum, data_bytes);
  const std::optional<AvailableMemory> room = available_memory();
  const std::uint64_t more = need.total() - need.data;  // the data is already in memory
  if (!room || more <= room->bytes) return;
  const std::uint64_t model = need.parameters + need.gradients + need.optimizer;
  std::string hidden;
  for (const std::int64_t w : arch.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(w);
  const std::string layers = "--layers " + hidden + " (network " + io::describe(arch) +
                             "; parameters, gradients and optimizer state: " + std::to_string(model) +
                             " bytes)";
  const std::string batches = "--batch-size " +
                              (cfg.train.batch_size == 0 ? std::string("full") : std::to_string(batch)) +
                              " (activations of one batch: " + std::to_string(need.activations) + " bytes)";
  throw ConfigError("training needs about " + std::to_string(more) + " bytes (" + format_bytes(more) +
                    ") more than the data already loaded, but " + room->source + " allows " +
                    std::to_string(room->bytes) + " bytes (" + format_bytes(room->bytes) + "); reduce " +
                    (model >= need.activations ? layers + " or " + batches : batches + " or " + layers) +
                    " [" + need.text() + "]");
}

}  // namespace backprop::train
