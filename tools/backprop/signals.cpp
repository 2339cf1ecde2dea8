// The SIGINT / SIGTERM handler of `backprop train` (see signals.hpp).
#include "signals.hpp"

#include <signal.h>

namespace cli {

namespace {

// Written by the handler: a lock-free atomic and a sig_atomic_t are all it may touch.
std::atomic<bool> stop_requested{false};
volatile sig_atomic_t first_signal = 0;
struct sigaction previous_int, previous_term;

static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag must be usable from a signal handler");

extern "C" void on_stop_signal(int sig) {
  if (first_signal == 0) first_signal = sig;
  stop_requested.store(true);
}

}  // namespace

StopSignals::StopSignals() {
  stop_requested.store(false);
  first_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

const std::atomic<bool>* StopSignals::flag() const {
  return &stop_requested;
}

int StopSignals::signal() const {
  return first_signal;
}

std::string StopSignals::name() const {
  return first_signal == SIGINT ? "SIGINT" : first_signal == SIGTERM ? "SIGTERM" : "a stop request";
}

int StopSignals::exit_code() const {
  return 128 + (first_signal == SIGINT ? SIGINT : SIGTERM);
}

}  // namespace cli
