// `backprop train` under `mpirun -np K`: the one place of the tool that knows about MPI.
//
// The tool holds an MPI session only when it was built with backprop::dist (BACKPROP_CLI_MPI) and launched by
// mpirun (OMPI_COMM_WORLD_SIZE / PMI_SIZE / PMIX_RANK in the environment): a plain `backprop train` never
// initialises MPI. Every rank runs the same command: it reads the same configuration and the same data (so
// every configuration error is raised identically everywhere), builds the same network from the same seed,
// and trains with a Trainer over dist::Collective, which splits each global batch (--batch-size) across the
// ranks. Rank 0 alone prints and writes files.
//
//   cli::Parallel mpi;                       // in main(): MPI_Init when launched by mpirun
//   bp::train::run(setup, {.collective = mpi.collective()});   // train_command.cpp
//
// Errors: a rank that throws while the others may be waiting in a collective cannot just return from main
// (MPI_Finalize would wait for them forever). Parallel::fail() prints the message (rank 0 as usual, another
// rank after a delay and with a "rank R:" prefix) and ends the whole job with MPI_Abort and the exit code.
#pragma once

#include <backprop/nn.hpp>
#include <backprop/train.hpp>
#include <memory>
#include <string>

namespace cli {

/// True when this process was started by mpirun / mpiexec (its environment names a rank count).
bool launched_by_mpirun();

/// The MPI session of a run, or a stand-in for one process. At most one exists at a time (it lives in main).
class Parallel {
 public:
  /// MPI_Init when built with MPI and launched_by_mpirun(); otherwise nothing (ranks() == 1).
  /// Throws DistError when MPI cannot start.
  Parallel(int& argc, char**& argv);
  ~Parallel();  // MPI_Finalize
  Parallel(const Parallel&) = delete;
  Parallel& operator=(const Parallel&) = delete;

  /// The session of this process (nullptr before main made one: library tests, other tools).
  static Parallel* current();

  bool active() const { return active_; }
  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  bool root() const { return rank_ == 0; }

  /// What the Trainer runs on: every rank (dist::Collective) when ranks() > 1, else one process. Its
  /// evaluate() splits the rows across the ranks and gives the global figures on every rank.
  std::shared_ptr<backprop::train::Collective> collective() const;
  /// dist::convert_sync_batchnorm: `net` with each BatchNorm1d / BatchNorm2d replaced by a SyncBatchNorm1d /
  /// SyncBatchNorm2d sharing its tensors (same state_dict names). Needs ranks() > 1.
  std::shared_ptr<backprop::nn::Sequential> sync_batchnorm(const backprop::nn::Sequential& net) const;

  /// Ends a failed run: prints "backprop COMMAND: KINDWHAT" and, under MPI, MPI_Abort(code), which makes
  /// mpirun kill every rank and exit with `code`. Rank 0 reports at once; another rank first waits 3 s, so
  /// that an error every rank raises alike (a bad value, a divergence) is reported once, by rank 0 (its abort
  /// ends the job during the wait), while an error of that rank alone is still reported, prefixed "rank R: ".
  /// Never returns.
  [[noreturn]] void fail(const std::string& command, const char* kind, const char* what, int code) const;

 private:
  bool active_ = false;
  int rank_ = 0, ranks_ = 1;
};

}  // namespace cli
