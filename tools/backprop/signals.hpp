// SIGINT / SIGTERM during `backprop train`: finish the current update, save, exit 130 / 143.
//
// While a StopSignals object lives, SIGINT and SIGTERM no longer end the process: the handler only records
// which signal came and sets an atomic flag (both async-signal-safe), and fit() polls the flag after every
// update (FitOptions::stop) and returns. The command then saves a checkpoint of exactly that point and exits
// with 128 + the signal number. Further signals while it saves are recorded and ignored, so a second Ctrl-C
// cannot cut a save in half (SIGKILL still can; the save protocol of io survives that). The previous
// handlers come back when the object is destroyed.
//
//   StopSignals signals;
//   options.stop = signals.flag();
//   auto history = fit(..., options);
//   if (history.interrupted) { save(); return signals.exit_code(); }
#pragma once

#include <atomic>
#include <string>

namespace cli {

class StopSignals {
 public:
  /// Installs the handlers (sigaction, SA_RESTART so that interrupted reads and writes resume).
  StopSignals();
  /// Restores the handlers that were installed before.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// True once SIGINT or SIGTERM has arrived.
  const std::atomic<bool>* flag() const;
  /// The first signal received (SIGINT or SIGTERM), or 0.
  int signal() const;
  /// "SIGINT", "SIGTERM", or "a stop request" when no signal reached this process (another rank's, under
  /// MPI).
  std::string name() const;
  /// 128 + signal(): 130 for SIGINT, 143 for SIGTERM (143 when no signal reached this process).
  int exit_code() const;
};

}  // namespace cli
