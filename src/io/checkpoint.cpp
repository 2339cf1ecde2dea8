// Checkpoints: a model file plus optimiser, scheduler and RNG state, and the `latest` pointer of a run.
#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io/checkpoint.hpp>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/state_compat.hpp"

namespace backprop::io {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string hex(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::uint64_t unhex(const json& j, const std::string& path, const std::string& what) {
  BP_CHECK(j.is_string() && j.get<std::string>().size() == 16, FileError, path, ": checkpoint ", what,
           " must be 16 hexadecimal digits, got ", j.dump());
  const std::string s = j.get<std::string>();
  std::uint64_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    BP_CHECK(d >= 0, FileError, path, ": checkpoint ", what, " must be lowercase hexadecimal, got \"", s,
             "\"");
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::uint64_t bits_of(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

double double_of(std::uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

Generator* generator_of(nn::Module& m) {
  if (auto* d = dynamic_cast<nn::Dropout*>(&m)) return &d->generator();
  if (auto* d = dynamic_cast<nn::DropConnect*>(&m)) return &d->generator();
  return nullptr;
}

constexpr const char* kOptimizerPrefix = "optimizer.";

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  const train::TrainerState& c = checkpoint.trainer;
  BP_CHECK(!c.model.empty(), ValueError, path,
           ": a checkpoint needs the weights (Checkpoint::trainer.model)");
  ModelFile model = checkpoint.model;
  model.state = c.model;
  NamedTensors out = to_named(model, kCheckpointFormat);
  for (const auto& [key, t] : c.optimizer) out.tensors.emplace_back(kOptimizerPrefix + key, t.detach());
  for (const auto& [name, t] : c.best_state) out.tensors.emplace_back(kBestStatePrefix + name, t.detach());
  json gens = json::object();
  for (const auto& [name, st] : c.generators)
    gens[name] = {{"s", {hex(st.s[0]), hex(st.s[1]), hex(st.s[2]), hex(st.s[3])}},
                  {"seed", hex(st.seed)},
                  {"has_spare", st.has_spare},
                  {"spare", hex(bits_of(st.spare))}};
  json meta = {
      {"epoch", c.epoch},
      {"step", c.step},
      {"data_seed", hex(c.data_seed)},
      {"scheduler_steps", c.scheduler_steps},
      {"generators", gens},
      {"best_val_loss",
       std::isfinite(c.early_stopping.best_val_loss) ? json(c.early_stopping.best_val_loss) : json(nullptr)},
      {"best_epoch", c.early_stopping.best_epoch},
      {"since_best", c.early_stopping.since_best}};
  if (c.plateau.bad_epochs > 0 || c.plateau.cooldown > 0 || !std::isinf(c.plateau.best))
    meta["plateau"] = {{"best", hex(bits_of(c.plateau.best))},
                       {"bad_epochs", c.plateau.bad_epochs},
                       {"cooldown", c.plateau.cooldown}};
  if (c.partial.batches > 0)
    meta["partial"] = {{"batches", c.partial.batches},
                       {"loss_sum", hex(bits_of(c.partial.loss_sum))},
                       {"correct", hex(bits_of(c.partial.correct))},
                       {"seen", c.partial.seen},
                       {"updates", c.partial.updates},
                       {"seconds", hex(bits_of(c.partial.seconds))}};
  out.metadata["checkpoint"] = meta.dump();
  save_safetensors(path, out);
}

Checkpoint load_checkpoint(const std::string& path) {
  const NamedTensors file = load_safetensors(path);
  auto format = file.metadata.find("format");
  BP_CHECK(format == file.metadata.end() || format->second != kModelFormat, FileError, path,
           " is a model, not a checkpoint (checkpoints are RUN/checkpoints/epoch-NNNN.safetensors)");
  Checkpoint checkpoint;
  checkpoint.model = from_named(file, path, kOptimizerPrefix);
  train::TrainerState& c = checkpoint.trainer;
  c.model = checkpoint.model.state;
  auto it = file.metadata.find("checkpoint");
  BP_CHECK(it != file.metadata.end(), FileError, path,
           ": not a checkpoint: __metadata__ has no 'checkpoint' entry");
  const json meta = json::parse(it->second, nullptr, false);
  BP_CHECK(!meta.is_discarded() && meta.is_object(), FileError, path,
           ": __metadata__ 'checkpoint' is not a JSON object");
  auto need = [&](const char* key) -> const json& {
    BP_CHECK(meta.contains(key), FileError, path, ": __metadata__ 'checkpoint' has no field \"", key, "\"");
    return meta.at(key);
  };
  auto integer = [&](const char* key) {
    const json& j = need(key);
    BP_CHECK(j.is_number_integer() && j.get<std::int64_t>() >= 0, FileError, path, ": checkpoint field \"",
             key, "\" must be an integer >= 0, got ", j.dump());
    return j.get<std::int64_t>();
  };
  c.epoch = integer("epoch");
  c.step = integer("step");
  c.scheduler_steps = integer("scheduler_steps");
  c.early_stopping.best_epoch = integer("best_epoch");
  if (meta.contains("since_best")) c.early_stopping.since_best = integer("since_best");
  if (meta.contains("partial")) {
    const json& p = meta.at("partial");
    BP_CHECK(p.is_object(), FileError, path, ": checkpoint field \"partial\" must be an object, got ",
             p.dump());
    auto count = [&](const char* key) {
      BP_CHECK(p.contains(key) && p.at(key).is_number_integer() && p.at(key).get<std::int64_t>() >= 0,
               FileError, path, ": checkpoint field \"partial.", key, "\" must be an integer >= 0, got ",
               p.contains(key) ? p.at(key).dump() : "nothing");
      return p.at(key).get<std::int64_t>();
    };
    auto real = [&](const char* key) {
      BP_CHECK(p.contains(key), FileError, path, ": checkpoint field \"partial.", key, "\" is missing");
      const double v = double_of(unhex(p.at(key), path, std::string("partial.") + key));
      BP_CHECK(std::isfinite(v) && v >= 0, FileError, path, ": checkpoint field \"partial.", key,
               "\" must be a finite number >= 0, got ", v);
      return v;
    };
    c.partial = {.batches = count("batches"),
                 .loss_sum = real("loss_sum"),
                 .correct = real("correct"),
                 .seen = count("seen"),
                 .updates = count("updates"),
                 .seconds = real("seconds")};
  }
  c.data_seed = unhex(need("data_seed"), path, "data_seed");
  const json& best = need("best_val_loss");
  BP_CHECK(best.is_null() || best.is_number(), FileError, path,
           ": checkpoint field \"best_val_loss\" must be a number or null, got ", best.dump());
  c.early_stopping.best_val_loss =
      best.is_null() ? std::numeric_limits<double>::infinity() : best.get<double>();
  if (meta.contains("plateau")) {
    const json& p = meta.at("plateau");
    BP_CHECK(p.is_object() && p.contains("best") && p.contains("bad_epochs") &&
                 p.at("bad_epochs").is_number_integer() && p.at("bad_epochs").get<std::int64_t>() >= 0 &&
                 p.contains("cooldown") && p.at("cooldown").is_number_integer() &&
                 p.at("cooldown").get<std::int64_t>() >= 0,
             FileError, path,
             ": checkpoint field \"plateau\" must be {\"best\": hex, \"bad_epochs\" >= 0, \"cooldown\" >= "
             "0}, got ",
             p.dump());
    c.plateau = {.best = double_of(unhex(p.at("best"), path, "plateau.best")),
                 .bad_epochs = p.at("bad_epochs").get<std::int64_t>(),
                 .cooldown = p.at("cooldown").get<std::int64_t>()};
  }
  const json& gens = need("generators");
  BP_CHECK(gens.is_object(), FileError, path, ": checkpoint field \"generators\" must be an object");
  for (const auto& [name, g] : gens.items()) {
    const std::string what = "generator '" + name + "'";
    BP_CHECK(g.is_object() && g.contains("s") && g.at("s").is_array() && g.at("s").size() == 4 &&
                 g.contains("seed") && g.contains("has_spare") && g.at("has_spare").is_boolean() &&
                 g.contains("spare"),
             FileError, path, ": checkpoint ", what,
             " must be {\"s\": [4 hex strings], \"seed\", \"has_spare\": bool, \"spare\"}, got ", g.dump());
    Generator::State st{};
    for (std::size_t i = 0; i < 4; ++i) st.s[i] = unhex(g.at("s")[i], path, what + " s");
    st.seed = unhex(g.at("seed"), path, what + " seed");
    st.has_spare = g.at("has_spare").get<bool>();
    st.spare = double_of(unhex(g.at("spare"), path, what + " spare"));
    c.generators.emplace(name, st);
  }
  for (const auto& [name, t] : file.tensors)
    if (name.rfind(kOptimizerPrefix, 0) == 0)
      c.optimizer.emplace(name.substr(std::strlen(kOptimizerPrefix)), t);
    else if (name.rfind(kBestStatePrefix, 0) == 0)
      c.best_state.emplace(name.substr(std::strlen(kBestStatePrefix)), detail::upgrade_state_tensor(name, t));
  return checkpoint;
}

std::string write_checkpoint(const std::string& dir, const Checkpoint& checkpoint, int keep) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  BP_CHECK(!ec, FileError, dir, ": cannot create the checkpoint directory: ", ec.message());
  char name[64];
  const train::TrainerState& c = checkpoint.trainer;
  if (c.partial.batches > 0)
    std::snprintf(name, sizeof name, "epoch-%04lld-step-%08lld.safetensors", static_cast<long long>(c.epoch),
                  static_cast<long long>(c.step));
  else
    std::snprintf(name, sizeof name, "epoch-%04lld.safetensors", static_cast<long long>(c.epoch));
  const std::string path = (fs::path(dir) / name).string();
  save_checkpoint(path, checkpoint);
  write_file_atomic((fs::path(dir) / "latest").string(), std::string(name) + "\n");
  if (keep > 0) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string f = entry.path().filename().string();
      if (f.rfind("epoch-", 0) == 0 && f.size() > 12 && f.ends_with(".safetensors")) files.push_back(f);
    }
    // By name without the suffix: epoch-0003 (the end of epoch 3) before epoch-0003-step-... (within epoch
    // 4).
    std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
      return a.substr(0, a.size() - 12) < b.substr(0, b.size() - 12);
    });
    for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < files.size(); ++i)
      if (files[i] != name) fs::remove(fs::path(dir) / files[i], ec);
  }
  return path;
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) && input_exists(path, "")) return path;
  BP_CHECK(
      fs::is_directory(path, ec), FileError, path,
      ": no such checkpoint file or run directory (expected RUN_DIR, RUN_DIR/checkpoints or a .safetensors "
      "checkpoint)");
  for (const fs::path& dir : {fs::path(path), fs::path(path) / "checkpoints"}) {
    const fs::path latest = dir / "latest";
    if (!input_exists(latest.string(), "")) continue;
    std::string name = read_file(latest.string(), 4096);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' '))
      name.pop_back();
    BP_CHECK(!name.empty() && name.find('/') == std::string::npos, FileError, latest.string(),
             ": expected the file name of a checkpoint, got \"", name, "\"");
    const fs::path target = dir / name;
    BP_CHECK(input_exists(target.string(), latest.string()), FileError, latest.string(), " names ", name,
             ", which does not exist in ", dir.string());
    return target.string();
  }
  throw FileError(path + ": no checkpoint found: neither " + (fs::path(path) / "latest").string() + " nor " +
                  (fs::path(path) / "checkpoints" / "latest").string() +
                  " exists (was the run started with --checkpoint-every N?)");
}

std::map<std::string, Generator::State> module_generators(nn::Module& model) {
  std::map<std::string, Generator::State> out;
  if (Generator* g = generator_of(model)) out.emplace("", g->state());
  for (const auto& [name, m] : model.named_modules())
    if (Generator* g = generator_of(*m)) out.emplace(name, g->state());
  return out;
}

void restore_module_generators(nn::Module& model, const std::map<std::string, Generator::State>& states) {
  std::map<std::string, Generator*> gens;
  if (Generator* g = generator_of(model)) gens.emplace("", g);
  for (const auto& [name, m] : model.named_modules())
    if (Generator* g = generator_of(*m)) gens.emplace(name, g);
  for (const auto& [name, st] : states)
    BP_CHECK(gens.count(name), FileError, "checkpoint: a generator state for module '", name,
             "', which has no generator of its own in this network");
  for (const auto& [name, g] : gens) {
    auto it = states.find(name);
    BP_CHECK(it != states.end(), FileError, "checkpoint: no generator state for module '", name, "'");
    g->set_state(it->second);
  }
}

}  // namespace backprop::io
