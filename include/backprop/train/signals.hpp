// backprop/train/signals.hpp — SIGINT / SIGTERM as a request to stop training: finish the current update,
// save, and end with 128 + the signal (130 / 143), as `backprop train` does.
//
// While a StopOnSignals object lives, SIGINT and SIGTERM no longer end the process: the handler only records
// which signal came and sets an atomic flag (both async-signal-safe). Point FitOptions::stop at flag() and
// fit() returns after the update during which a signal came, with History::interrupted; save the Trainer's
// state then (ModelCheckpoint does). Further signals while it saves are recorded and ignored, so a second
// Ctrl-C cannot cut a save in half (SIGKILL still can; the save protocol of io survives that). The previous
// handlers come back when the object is destroyed. The handlers are the process's: one object at a time.
//
// Example:
//   bp::train::StopOnSignals signals;                     // from here on Ctrl-C stops training
//   bp::train::Trainer trainer(net, loss, opt, {.epochs = 10, .stop = signals.flag()});
//   const bp::train::History history = trainer.fit(train);
//   if (history.interrupted) std::cerr << "stopped by " << signals.name() << "\n";   // SIGINT
//   const int exit_code = history.interrupted ? signals.exit_code() : 0;             // 130
#pragma once

#include <atomic>
#include <string>

namespace backprop::train {

class StopOnSignals {
 public:
  /// Installs the handlers (sigaction, SA_RESTART so that interrupted reads and writes resume) and clears the
  /// flag.
  StopOnSignals();
  /// Restores the handlers that were installed before.
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  /// True once SIGINT or SIGTERM has arrived: what FitOptions::stop points at.
  const std::atomic<bool>* flag() const;
  /// The first signal received (SIGINT or SIGTERM), or 0.
  int signal() const;
  /// "SIGINT", "SIGTERM", or "a stop request" when no signal reached this process (another rank's, under
  /// MPI).
  std::string name() const;
  /// 128 + signal(): 130 for SIGINT, 143 for SIGTERM (143 when no signal reached this process).
  int exit_code() const;
};

/// The name StopOnSignals::name() gives `signal` (SIGINT, SIGTERM; "a stop request" for 0 or another).
std::string stop_signal_name(int signal);
/// The exit code StopOnSignals::exit_code() gives `signal`: 130 for SIGINT, else 143.
int stop_exit_code(int signal);

}  // namespace backprop::train
