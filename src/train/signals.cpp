// The SIGINT / SIGTERM handler that stops training (backprop/train/signals.hpp).
#include <signal.h>

#include <backprop/train/signals.hpp>

namespace backprop::train {

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

StopOnSignals::StopOnSignals() {
  stop_requested.store(false);
  first_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

const std::atomic<bool>* StopOnSignals::flag() const {
  return &stop_requested;
}

int StopOnSignals::signal() const {
  return first_signal;
}

std::string StopOnSignals::name() const {
  return stop_signal_name(first_signal);
}

int StopOnSignals::exit_code() const {
  return stop_exit_code(first_signal);
}

std::string stop_signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a stop request";
}

int stop_exit_code(int signal) {
  return 128 + (signal == SIGINT ? SIGINT : SIGTERM);
}

}  // namespace backprop::train
