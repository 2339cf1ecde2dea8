// Internal: MPI error checks and dtype mapping shared by src/dist.
#pragma once

#include <mpi.h>

#include <backprop/dist.hpp>

namespace backprop::dist::detail {

/// Throws DistError naming the MPI call and MPI's message unless rc is MPI_SUCCESS.
void check(int rc, const char* call);
/// Throws DistError naming `what` unless init() has run (and finalize() has not).
void require_init(const char* what);
/// MPI_FLOAT or MPI_DOUBLE; DTypeError naming `what` for other dtypes.
MPI_Datatype mpi_type(DType dtype, const char* what);

}  // namespace backprop::dist::detail
