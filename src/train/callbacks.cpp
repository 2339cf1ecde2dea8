// The library's callbacks: progress bar / epoch lines, the metrics log and checkpoints.
#include <unistd.h>

#include <backprop/train/callbacks.hpp>
#include <cmath>
#include <string>

namespace backprop::train {

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

ProgressBar::ProgressBar(std::FILE* out) : ProgressBar(out, ::isatty(::fileno(out)) != 0) {}

ProgressBar::ProgressBar(std::FILE* out, bool tty) : out_(out), tty_(tty) {}

void ProgressBar::on_train_begin(std::int64_t epochs, std::int64_t batches_per_epoch) {
  epochs_ = epochs;
  batches_ = batches_per_epoch;
  first_epoch_ = trainer().epoch();
  batches_done_ = samples_ = 0;
  start_ = last_draw_ = Clock::now();
}

void ProgressBar::on_epoch_begin(std::int64_t) {
  loss_sum_ = correct_ = 0;
  seen_ = 0;
}

void ProgressBar::on_batch_end(const StepInfo& info) {
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

bool ProgressBar::on_epoch_end(const EpochMetrics& m) {
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

MetricsLog::MetricsLog(io::MetricsWriter& writer) : writer_(writer) {}

void MetricsLog::on_grad_flow(const GradFlowRecord& record) {
  writer_.grad_flow(record);
}

bool MetricsLog::on_epoch_end(const EpochMetrics& m) {
  writer_.epoch(m);
  return false;
}

ModelCheckpoint::ModelCheckpoint(std::string dir, io::ModelFile model, CheckpointOptions options)
    : dir_(std::move(dir)), model_(std::move(model)), options_(std::move(options)) {
  BP_CHECK(options_.every >= 0, ValueError, "ModelCheckpoint: every must be >= 0, got ", options_.every);
  BP_CHECK(options_.keep >= 0, ValueError, "ModelCheckpoint: keep must be >= 0, got ", options_.keep);
}

void ModelCheckpoint::save() {
  last_path_ = io::write_checkpoint(dir_, {.model = model_, .trainer = trainer().state()}, options_.keep);
  ++written_;
}

bool ModelCheckpoint::on_epoch_end(const EpochMetrics& m) {
  if (!options_.best_model.empty() && m.val_loss < best_) {
    best_ = m.val_loss;
    io::ModelFile best = model_;
    best.state = trainer().model().state_dict();
    io::save_model(options_.best_model, best);
  }
  const std::int64_t every = options_.every;
  if (every > 0 && (m.epoch % every == 0 || m.epoch == trainer().options().epochs)) save();
  return false;
}

void ModelCheckpoint::on_train_end(const History& history) {
  // Interrupted: exactly the point fit() stopped at (mid-epoch, with the epoch's running sums), so that a
  // resumed run ends bit-identical to an uninterrupted one.
  if (history.interrupted) save();
}

}  // namespace backprop::train
