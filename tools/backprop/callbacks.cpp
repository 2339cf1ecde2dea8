// Progress bar / epoch lines, the metrics log and checkpoints, as fit() callbacks.
#include "callbacks.hpp"

#include <cmath>
#include <string>

namespace cli {

namespace bp = backprop;

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

Progress::Progress(std::FILE* out, bool tty, std::int64_t first_epoch)
    : out_(out), tty_(tty), first_epoch_(first_epoch) {}

void Progress::on_train_begin(std::int64_t epochs, std::int64_t batches_per_epoch) {
  epochs_ = epochs;
  batches_ = batches_per_epoch;
  start_ = last_draw_ = Clock::now();
}

void Progress::on_epoch_begin(std::int64_t) {
  loss_sum_ = correct_ = 0;
  seen_ = 0;
}

void Progress::on_batch_end(const bp::train::StepInfo& info) {
  ++batches_done_;
  samples_ += info.batch_size;
  seen_ += info.batch_size;
  loss_sum_ += info.loss * static_cast<double>(info.batch_size);
  if (!std::isnan(info.accuracy)) correct_ += info.accuracy * static_cast<double>(info.batch_size);
  if (!tty_) return;
  const auto now = Clock::now();
  const bool last = info.batch + 1 == info.num_batches;
  if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double total = static_cast<double>((epochs_ - first_epoch_) * batches_);
  const double eta =
      elapsed / static_cast<double>(batches_done_) * (total - static_cast<double>(batches_done_));
  constexpr int width = 24;
  const int filled = static_cast<int>(width * (info.batch + 1) / info.num_batches);
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(width, ' ');
  std::string acc;
  if (!std::isnan(info.accuracy)) {
    char a[32];
    std::snprintf(a, sizeof a, "  acc %5.1f%%", 100.0 * correct_ / static_cast<double>(seen_));
    acc = a;
  }
  std::fprintf(out_, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  loss %.4f%s  %.0f samples/s  ETA %s",
               static_cast<long long>(info.epoch), static_cast<long long>(epochs_), bar.c_str(),
               static_cast<long long>(info.batch + 1), static_cast<long long>(info.num_batches),
               loss_sum_ / static_cast<double>(seen_), acc.c_str(),
               elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0, clock_text(eta).c_str());
  std::fflush(out_);
  drawn_ = true;
}

bool Progress::on_epoch_end(const bp::train::EpochMetrics& m) {
  std::string line;
  char buf[96];
  std::snprintf(buf, sizeof buf, "epoch %3lld/%lld  loss %.4f", static_cast<long long>(m.epoch),
                static_cast<long long>(epochs_), m.train_loss);
  line += buf;
  if (!std::isnan(m.train_accuracy)) {
    std::snprintf(buf, sizeof buf, "  acc %6.2f%%", 100 * m.train_accuracy);
    line += buf;
  }
  if (!std::isnan(m.val_loss)) {
    std::snprintf(buf, sizeof buf, "  val_loss %.4f", m.val_loss);
    line += buf;
  }
  if (!std::isnan(m.val_accuracy)) {
    std::snprintf(buf, sizeof buf, "  val_acc %6.2f%%", 100 * m.val_accuracy);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, "  lr %.4g  %.1fs  %.0f samples/s", m.lr, m.seconds, m.samples_per_second);
  line += buf;
  std::fprintf(out_, "%s%s\n", tty_ && drawn_ ? "\r\033[K" : "", line.c_str());
  std::fflush(out_);
  drawn_ = false;
  return false;
}

MetricsLogger::MetricsLogger(bp::io::MetricsWriter& writer) : writer_(writer) {}

void MetricsLogger::on_grad_flow(const bp::train::GradFlowRecord& r) {
  bp::io::GradFlowEntry e{.epoch = r.epoch, .step = r.step};
  for (const bp::train::LayerFlow& l : r.layers)
    e.layers.push_back({.name = l.name,
                        .grad_norm = l.grad_norm,
                        .weight_norm = l.weight_norm,
                        .activation = l.activation,
                        .saturated_fraction = l.saturated_fraction,
                        .dead_fraction = l.dead_fraction});
  writer_.grad_flow(e);
}

bool MetricsLogger::on_epoch_end(const bp::train::EpochMetrics& m) {
  writer_.epoch({.epoch = m.epoch,
                 .train_loss = m.train_loss,
                 .train_accuracy = m.train_accuracy,
                 .val_loss = m.val_loss,
                 .val_accuracy = m.val_accuracy,
                 .lr = m.lr,
                 .updates = m.updates,
                 .seconds = m.seconds,
                 .samples_per_second = m.samples_per_second});
  return false;
}

Checkpointer::Checkpointer(std::string dir, std::int64_t every, std::int64_t last_epoch,
                           std::int64_t start_step, bp::train::EarlyStoppingState early,
                           std::int64_t patience, std::map<std::string, bp::Tensor> best_state, Maker make,
                           Snapshot snapshot)
    : dir_(std::move(dir)),
      every_(every),
      last_epoch_(last_epoch),
      step_(start_step),
      early_(early),
      patience_(patience),
      best_state_(std::move(best_state)),
      make_(std::move(make)),
      snapshot_(std::move(snapshot)) {}

void Checkpointer::on_batch_end(const bp::train::StepInfo& info) {
  step_ = info.step;
}

bool Checkpointer::on_epoch_end(const bp::train::EpochMetrics& m) {
  if (!std::isnan(m.val_loss)) {
    if (m.val_loss < early_.best_val_loss) {
      early_.best_val_loss = m.val_loss;
      early_.best_epoch = m.epoch;
      early_.since_best = 0;
      if (patience_ > 0 && every_ > 0) best_state_ = snapshot_();
    } else if (patience_ > 0) {
      ++early_.since_best;
    }
  }
  if (every_ <= 0 || (m.epoch % every_ != 0 && m.epoch != last_epoch_)) return false;
  bp::io::Checkpoint c = make_();
  c.epoch = m.epoch;
  c.step = step_;
  c.best_val_loss = early_.best_val_loss;
  c.best_epoch = early_.best_epoch;
  c.since_best = early_.since_best;
  c.best_state = best_state_;
  bp::io::write_checkpoint(dir_, c);
  ++written_;
  return false;
}

}  // namespace cli
