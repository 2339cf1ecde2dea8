// The MPI session of `backprop train` (see parallel.hpp). Without backprop::dist this file keeps the same
// interface for one process, so the rest of the tool never tests the build configuration itself.
#include "parallel.hpp"

#include <backprop/error.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#ifdef BACKPROP_CLI_MPI
#include <mpi.h>

#include <backprop/dist.hpp>
#endif

namespace cli {

namespace bp = backprop;

namespace {

Parallel* the_session = nullptr;

}  // namespace

bool launched_by_mpirun() {
  // OpenMPI, MPICH / Hydra and PMIx launchers each export one of these to every rank.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

Parallel* Parallel::current() {
  return the_session;
}

#ifdef BACKPROP_CLI_MPI

Parallel::Parallel(int& argc, char**& argv) {
  the_session = this;
  if (!launched_by_mpirun()) return;
  bp::dist::init(argc, argv);
  active_ = true;
  rank_ = bp::dist::rank();
  ranks_ = bp::dist::size();
}

Parallel::~Parallel() {
  if (active_) bp::dist::finalize();
  the_session = nullptr;
}

std::shared_ptr<bp::train::Collective> Parallel::collective() const {
  if (ranks_ > 1) return std::make_shared<bp::dist::Collective>();
  return std::make_shared<bp::train::Collective>();
}

std::shared_ptr<bp::nn::Sequential> Parallel::sync_batchnorm(const bp::nn::Sequential& net) const {
  return bp::dist::convert_sync_batchnorm(net);
}

void Parallel::fail(const std::string& command, const char* kind, const char* what, int code) const {
  std::string prefix;
  if (!root()) {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // see parallel.hpp: rank 0 speaks first
    prefix = "rank " + std::to_string(rank_) + ": ";
  }
  std::fprintf(stderr, "backprop%s%s: %s%s%s\n", command.empty() ? "" : " ", command.c_str(), prefix.c_str(),
               kind, what);
  std::fflush(stderr);
  if (active_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

#else  // one process only

namespace {

[[noreturn]] void unavailable(const char* what) {
  throw bp::ValueError(
      std::string(what) +
      ": this backprop was built without MPI (backprop::dist); rebuild with OpenMPI installed");
}

}  // namespace

Parallel::Parallel(int&, char**&) {
  the_session = this;
}

Parallel::~Parallel() {
  the_session = nullptr;
}

std::shared_ptr<bp::train::Collective> Parallel::collective() const {
  return std::make_shared<bp::train::Collective>();
}

std::shared_ptr<bp::nn::Sequential> Parallel::sync_batchnorm(const bp::nn::Sequential&) const {
  unavailable("--sync-batchnorm over ranks");
}

void Parallel::fail(const std::string& command, const char* kind, const char* what, int code) const {
  std::fprintf(stderr, "backprop%s%s: %s%s\n", command.empty() ? "" : " ", command.c_str(), kind, what);
  std::fflush(stderr);
  std::_Exit(code);
}

#endif

}  // namespace cli
