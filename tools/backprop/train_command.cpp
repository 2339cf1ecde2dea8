// `backprop train`: the run is train::run (backprop/train/run.hpp); this file picks its options from the
// flags, prints its outcome and turns it into an exit code.
#include <backprop/config.hpp>
#include <backprop/train/run.hpp>
#include <backprop/train/signals.hpp>
#include <iostream>

#include "cli.hpp"
#include "parallel.hpp"

namespace cli {

namespace bp = backprop;

int run_train(const TrainArgs& args) {
  // Under mpirun every rank runs the same command (parallel.hpp); rank 0 alone prints and writes files.
  const Parallel* mpi = Parallel::current();
  const bool root = mpi == nullptr || mpi->root();
  // Every rank reads (and, resuming, validates) the configuration and the checkpoint.
  const bp::train::RunConfig setup = bp::train::run_config(
      {.config_file = args.config_file, .resume = args.resume, .overrides = args.overrides});
  if (args.print_config) {
    if (root) std::cout << bp::config::to_toml(setup.config);
    return kOk;
  }
  bp::train::RunOptions options{.out = args.out,
                                .overwrite = args.overwrite,
                                .log = args.quiet || args.json ? nullptr : stderr,
                                .notices = stderr,
                                .stop_on_signals = true};
  if (mpi != nullptr) {
    options.collective = mpi->collective();
    options.sync_batchnorm = [mpi](const bp::nn::Sequential& net) { return mpi->sync_batchnorm(net); };
  }
  const bp::train::RunResult result = bp::train::run(setup, options);
  if (result.end == bp::train::RunEnd::diverged) throw bp::DivergedError(result.message);  // exit 4
  if (root && args.json)
    std::cout << result.summary_json << "\n";
  else if (root && !args.quiet && result.end == bp::train::RunEnd::finished)
    std::cout << result.summary_text;
  // Interrupted: every rank leaves with 128 + signal (run() returns once rank 0 has saved).
  return result.end == bp::train::RunEnd::finished ? kOk : bp::train::stop_exit_code(result.signal);
}

}  // namespace cli
