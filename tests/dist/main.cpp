// test_dist runs under `mpirun -np 2` (see tests/CMakeLists.txt): MPI starts before the tests and ends after.
#include <gtest/gtest.h>

#include <backprop/dist.hpp>

int main(int argc, char** argv) {
  backprop::dist::Session mpi(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  // Only rank 0 reports, so the log is not printed twice; failures on other ranks still fail the exit code.
  if (!backprop::dist::is_root()) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  // Any rank's failure fails the job on every rank.
  failed = backprop::dist::all_reduce_max(failed) > 0 ? 1 : 0;
  return failed;
}
