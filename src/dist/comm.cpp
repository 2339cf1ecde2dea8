// The process group (init, rank, size) and the collectives on tensors that data-parallel training is built
// from.
#include <algorithm>
#include <backprop/ops.hpp>
#include <cmath>

#include "dist/mpi_util.hpp"

namespace backprop::dist {

namespace {
bool we_initialised = false;  // finalize() only undoes an init() of ours
}  // namespace

namespace detail {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw DistError(backprop::detail::cat("dist: ", call, " failed on rank ", is_initialized() ? rank() : -1,
                                        ": ", std::string(text, static_cast<std::size_t>(len))));
}

void require_init(const char* what) {
  BP_CHECK(is_initialized(), dist::DistError, what,
           ": MPI is not initialised; call backprop::dist::init() (or hold a dist::Session) first");
}

MPI_Datatype mpi_type(DType dtype, const char* what) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i64:
      return MPI_INT64_T;  // counters such as BatchNorm's num_batches_tracked
    case DType::bool_:
      break;
  }
  throw DTypeError(backprop::detail::cat(what, ": expected an f32, f64 or i64 tensor, got ", dtype));
}

}  // namespace detail

using detail::check;

void init() {
  int argc = 0;
  char** argv = nullptr;
  init(argc, argv);
}

void init(int& argc, char**& argv) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  BP_CHECK(!finalized, dist::DistError,
           "dist::init: MPI was already finalised in this process; it cannot start again");
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    // Only the thread that calls backward talks to MPI (OpenMP workers never do): funneled is enough.
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    we_initialised = true;
  }
  check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
}

void finalize() {
  if (!we_initialised || !is_initialized()) return;
  MPI_Finalize();
  we_initialised = false;
}

bool is_initialized() {
  int initialised = 0, finalized = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalized);
  return initialised && !finalized;
}

int rank() {
  detail::require_init("dist::rank");
  int r = 0;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "MPI_Comm_rank");
  return r;
}

int size() {
  detail::require_init("dist::size");
  int k = 0;
  check(MPI_Comm_size(MPI_COMM_WORLD, &k), "MPI_Comm_size");
  return k;
}

bool is_root() {
  return rank() == 0;
}

void barrier() {
  detail::require_init("dist::barrier");
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void broadcast_(Tensor& t, int root) {
  detail::require_init("dist::broadcast_");
  BP_CHECK(root >= 0 && root < size(), ValueError, "dist::broadcast_: root must be in [0, ", size(),
           "), got ", root);
  const MPI_Datatype type = detail::mpi_type(t.dtype(), "dist::broadcast_");
  // Shapes first, so a mismatch is an error with both shapes rather than a truncated message.
  std::vector<std::int64_t> shape(t.shape().begin(), t.shape().end());
  std::int64_t dims = static_cast<std::int64_t>(shape.size());
  check(MPI_Bcast(&dims, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
  std::vector<std::int64_t> root_shape = shape;
  root_shape.resize(static_cast<std::size_t>(dims));
  check(MPI_Bcast(root_shape.data(), static_cast<int>(dims), MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
  const bool same = root_shape == shape;
  int all_same = same;
  check(MPI_Allreduce(MPI_IN_PLACE, &all_same, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD), "MPI_Allreduce");
  BP_CHECK(same, ShapeError, "dist::broadcast_: rank ", rank(), " holds a tensor of shape ", t.shape(),
           " but root rank ", root, " holds ", Shape(root_shape.begin(), root_shape.end()));
  BP_CHECK(all_same, ShapeError,
           "dist::broadcast_: another rank holds a tensor of a different shape than root rank ", root, "'s ",
           t.shape());
  ++t.storage()->version;
  check(MPI_Bcast(t.raw_data(), static_cast<int>(t.numel()), type, root, MPI_COMM_WORLD), "MPI_Bcast");
}

void all_reduce_sum_(Tensor& t) {
  detail::require_init("dist::all_reduce_sum_");
  const MPI_Datatype type = detail::mpi_type(t.dtype(), "dist::all_reduce_sum_");
  ++t.storage()->version;
  check(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), type, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce");
}

double all_reduce_sum(double v) {
  detail::require_init("dist::all_reduce_sum");
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  return v;
}

double all_reduce_max(double v) {
  detail::require_init("dist::all_reduce_max");
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return v;
}

Tensor all_reduce_sum(const Tensor& x) {
  Tensor y = x.detach().clone();
  all_reduce_sum_(y);
  // y = sum_s x_s on every rank; the total cost is sum_s L_s(y), so dL/dx_r = sum_s dL_s/dy: all-reduce dy.
  return record("all_reduce_sum", y, {x}, [](const Tensor& dy) { return Tensors{all_reduce_sum(dy)}; });
}

void broadcast_state(nn::Module& model, int root) {
  NoGradGuard guard;
  for (auto& [name, t] : model.named_parameters()) broadcast_(t, root);
  for (auto& [name, t] : model.named_buffers()) broadcast_(t, root);
}

double max_divergence(const nn::Module& model, int root) {
  NoGradGuard guard;
  double worst = 0.0;
  auto compare = [&](const std::vector<std::pair<std::string, Tensor>>& named) {
    for (const auto& [name, t] : named) {
      Tensor theirs = t.detach().clone();
      broadcast_(theirs, root);
      worst = std::max(worst, max_abs_diff(t, theirs));
    }
  };
  compare(model.named_parameters());
  compare(model.named_buffers());
  return all_reduce_max(worst);
}

Shard shard_of(std::int64_t rows, int r, int k) {
  BP_CHECK(k >= 1 && r >= 0 && r < k, ValueError, "dist::shard_of: rank ", r, " is outside [0, ", k, ")");
  BP_CHECK(rows >= 0, ValueError, "dist::shard_of: rows must be >= 0, got ", rows);
  return {.begin = rows * r / k, .end = rows * (r + 1) / k};
}

data::Batch shard(const data::Batch& batch) {
  const std::int64_t rows = batch.features.size(0);
  const Shard s = shard_of(rows, rank(), size());
  return {.features = narrow(batch.features, s.begin, s.rows()),
          .targets = narrow(batch.targets, s.begin, s.rows())};
}

double shard_scale(std::int64_t shard_rows, std::int64_t global_rows, train::GradReduction reduction) {
  BP_CHECK(global_rows >= 1 && shard_rows >= 0 && shard_rows <= global_rows, ValueError,
           "dist::shard_scale: a shard of ", shard_rows, " rows does not fit a global batch of ",
           global_rows);
  return reduction == train::GradReduction::mean
             ? static_cast<double>(shard_rows) / static_cast<double>(global_rows)
             : static_cast<double>(shard_rows);
}

}  // namespace backprop::dist
