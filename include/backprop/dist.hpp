// backprop/dist.hpp — data-parallel training over MPI (optional: link backprop::dist, built when MPI is
// found).
//
// Every rank (process) holds the whole model. Rank 0's parameters and buffers are broadcast to the others,
// each global mini-batch of B rows is split into K disjoint shards (one per rank, same shuffle everywhere
// because the seed is the same), each rank runs forward and backward on its shard, and the gradients are
// summed across ranks with MPI_Iallreduce in size-bounded buckets that start while the rest of backward is
// still running. Each rank scales its shard's loss by (its rows / B) for a mean reduction, or by its rows for
// a sum, before backward, so the summed gradient is exactly the gradient one process computes on the B rows
// (up to floating-point summation order: see docs/distributed.md for the measured difference).
//
// Run with mpirun -np 4 ./my_training; in main():
//
// Example:
//   bp::dist::Session mpi;                                     // MPI_Init ... MPI_Finalize
//   bp::Generator gen(42);                                     // same seed on every rank
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 10, gen)};
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
//   bp::loss::CrossEntropy loss;
//   bp::dist::fit(net, loss, opt, train, {.epochs = 10, .batch_size = 128});
//   auto every_rank = std::make_shared<bp::dist::Collective>();  // or a Trainer over every rank
//   bp::train::Trainer trainer(net, loss, opt, {.epochs = 20, .batch_size = 128}, every_rank);
//   trainer.fit(train);
//   if (bp::dist::is_root()) { /* save the model, write the report: rank 0 only */ }
//
// Errors: MPI failures are reported as DistError naming the MPI call and MPI's own message (the communicator
// uses MPI_ERRORS_RETURN). A rank that dies ends the job through mpirun (it kills the others), so no rank is
// left waiting in a collective.
#pragma once

#include <backprop/data.hpp>
#include <backprop/error.hpp>
#include <backprop/loss.hpp>
#include <backprop/nn.hpp>
#include <backprop/optim.hpp>
#include <backprop/tensor.hpp>
#include <backprop/train.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace backprop::dist {

/// An MPI call failed, or the library was used before init() / after finalize().
class DistError : public Error {
 public:
  using Error::Error;
};

// ---- the process group
// ------------------------------------------------------------------------------------------

/// Initialises MPI (MPI_Init_thread, funneled) unless already initialised, and switches MPI_COMM_WORLD to
/// MPI_ERRORS_RETURN so failures become DistError. argc/argv may be changed (MPI removes its own arguments).
/// Throws DistError when MPI was already finalised.
void init(int& argc, char**& argv);
/// The same without command-line arguments.
void init();
/// Calls MPI_Finalize if init() initialised MPI. Safe to call twice.
void finalize();
/// True between init() and finalize().
bool is_initialized();
/// This process's rank in [0, size()) and the number of ranks. Throw DistError before init().
int rank();
int size();
/// rank() == 0: the rank that prints and writes files.
bool is_root();

/// init() for its lifetime, finalize() after (RAII), for main().
class Session {
 public:
  Session(int& argc, char**& argv) { init(argc, argv); }
  Session() { init(); }
  ~Session() { finalize(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// ---- collectives on tensors
// ---------------------------------------------------------------------------------------

/// Waits until every rank has called it.
void barrier();
/// Overwrites t (f32 or f64) with rank `root`'s values, in place. Every rank must pass the same shape and
/// dtype; throws ShapeError (naming both shapes) when they differ from root's, DTypeError for other dtypes.
void broadcast_(Tensor& t, int root = 0);
/// Replaces t's values by their sum over ranks, in place and outside the graph.
void all_reduce_sum_(Tensor& t);
/// sum over ranks of v.
double all_reduce_sum(double v);
/// max over ranks of v.
double all_reduce_max(double v);
/// y = sum over ranks of x (the same y on every rank), as a differentiable op. The total cost is the sum of
/// every rank's cost, and each rank's y depends on every rank's x, so dL/dx_r = sum_s dL_s/dy_s: the backward
/// is the same all-reduce applied to dy. Every rank must call it (and its backward) in the same order.
Tensor all_reduce_sum(const Tensor& x);

/// Overwrites every parameter and buffer of `model` with rank `root`'s (after construction, after loading a
/// checkpoint on root only). Throws ShapeError / DTypeError when ranks hold differently shaped models.
void broadcast_state(nn::Module& model, int root = 0);
/// Largest |w - w_root| over all parameters and buffers and all ranks (0 when the ranks agree exactly).
double max_divergence(const nn::Module& model, int root = 0);

// ---- sharding
// ------------------------------------------------------------------------------------------------------

/// Rows [begin, end) of a global batch of `rows` that rank `r` of `k` works on: contiguous, disjoint,
/// covering every row, sizes differing by at most one (begin = floor(rows r / k)).
struct Shard {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t rows() const { return end - begin; }
};
/// Throws ValueError unless 0 <= r < k.
Shard shard_of(std::int64_t rows, int r, int k);
/// This rank's rows of a batch (features and targets narrowed to shard_of(rows, rank(), size())).
data::Batch shard(const data::Batch& batch);
/// The factor each rank multiplies its shard's mean loss by so that the sum over ranks is the global
/// objective: shard_rows / global_rows for mean (the global batch mean), shard_rows for sum.
double shard_scale(std::int64_t shard_rows, std::int64_t global_rows, train::GradReduction reduction);

// ---- gradient all-reduce
// ---------------------------------------------------------------------------------------

struct DataParallelOptions {
  /// Upper bound on one bucket's gradient bytes (a larger parameter gets a bucket of its own).
  std::int64_t bucket_bytes = 1 << 20;
  /// Start each bucket's all-reduce as soon as its gradients are final (during backward). false: all buckets
  /// start after backward (for measuring what overlap saves).
  bool overlap = true;
  /// Broadcast rank 0's parameters and buffers on construction.
  bool broadcast = true;
};

/// Time and traffic of the gradient all-reduce, summed over backward() calls since the last reset.
struct CommStats {
  double wait_seconds = 0.0;  // time backward() spent waiting for all-reduces after the local backward ended
  double backward_seconds = 0.0;  // whole backward() calls: local backward + launches + waits
  std::int64_t bytes = 0;         // gradient bytes all-reduced (per rank)
  std::int64_t calls = 0;         // backward() calls
  std::int64_t buckets = 0;       // buckets per call
  std::int64_t overlapped = 0;    // buckets whose all-reduce started before the local backward had ended
};

/// Sums the gradients of a model's parameters over ranks, bucket by bucket, overlapping backward.
/// The buckets follow the parameters in reverse registration order (the last layer's gradients are ready
/// first), split by dtype. Every rank must build it for the same model shape and call backward() in step.
class DataParallel {
 public:
  /// Throws DistError before init(); ValueError when bucket_bytes < 1 or the model has no parameters.
  explicit DataParallel(nn::Module& model, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  /// objective.backward(), with every parameter's .grad() then holding the sum over ranks of each rank's
  /// gradient of its `objective` (scale each rank's objective by shard_scale() first). objective must be a
  /// scalar. A parameter no rank's objective reaches keeps an undefined grad.
  void backward(const Tensor& objective);

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  std::int64_t num_buckets() const;

 private:
  struct State;
  nn::Module& model_;
  std::unique_ptr<State> state_;
  CommStats stats_;
};

// ---- synchronised batch normalisation
// -----------------------------------------------------------------------

namespace detail {
/// What SyncBatchNorm1d and SyncBatchNorm2d share: bn's tensors under bn's names, and the normalisation.
class SyncBatchNorm : public nn::Module {
 protected:
  SyncBatchNorm(const nn::Module& bn, std::int64_t features, const nn::BatchNormOptions& options);
  /// x normalised per channel over `dims` (all axes but 1) and over every rank in training.
  Tensor normalize(const Tensor& x, const std::vector<std::int64_t>& dims, const Shape& channel,
                   const std::string& who);

  std::int64_t features_;
  nn::BatchNormOptions options_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};
}  // namespace detail

/// BatchNorm1d with statistics over the global batch: in training, the per-feature sum of the rows of every
/// rank is all-reduced into the global mean, then the sum of squared deviations from it into the global
/// biased variance (all_reduce_sum, so the backward sums across ranks too): the statistics one process
/// computes on the whole batch. The running statistics move towards those (unbiased with the global row
/// count). Eval mode is BatchNorm1d's. It shares its tensors with the BatchNorm1d it was made from, and its
/// state_dict() names are the same, so checkpoints and model files are interchangeable.
class SyncBatchNorm1d : public detail::SyncBatchNorm {
 public:
  /// Shares `bn`'s parameters and buffers. eps and momentum are bn's.
  explicit SyncBatchNorm1d(const nn::BatchNorm1d& bn);
  /// x [N_r, C] -> [N_r, C]. Every rank must call it in step. Throws ShapeError unless x is [N, C];
  /// ValueError in training when the global batch has fewer than 2 rows.
  Tensor forward(const Tensor& x) override;
  /// "SyncBatchNorm1d(256, eps=1e-05, momentum=0.1, affine=true)"
  std::string repr() const override;
};

/// BatchNorm2d with statistics over the global batch: channel c's mean and biased variance are taken over
/// N, H and W of every rank's images (n = the global N H W), by the same all-reduces as SyncBatchNorm1d, so
/// forward, backward and the running statistics are those of one BatchNorm2d on the whole batch (up to the
/// order of floating-point sums). Eval mode is BatchNorm2d's, without communication. It shares its tensors
/// and state_dict() names with the BatchNorm2d it was made from: a model trained with it saves and loads as
/// a plain BatchNorm2d.
class SyncBatchNorm2d : public detail::SyncBatchNorm {
 public:
  /// Shares `bn`'s parameters and buffers. eps, momentum and affine are bn's.
  explicit SyncBatchNorm2d(const nn::BatchNorm2d& bn);
  /// x [N_r, C, H, W] -> the same shape. Every rank must call it in step. Throws ShapeError unless x is 4-D
  /// with C channels; DTypeError when x's dtype differs from the layer's; ValueError in training when the
  /// global batch has fewer than 2 values per channel.
  Tensor forward(const Tensor& x) override;
  /// "SyncBatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)", as BatchNorm2d.
  std::string repr() const override;
};

/// A Sequential with the same children, except that every BatchNorm1d is replaced by a SyncBatchNorm1d and
/// every BatchNorm2d by a SyncBatchNorm2d (in nested Sequentials too), each sharing its tensors. Layer names
/// and state_dict() keys are unchanged, so the result trains the original model's tensors: save `model`
/// (or the result's state_dict()) as usual.
std::shared_ptr<nn::Sequential> convert_sync_batchnorm(const nn::Sequential& model);

// ---- the training loop
// ----------------------------------------------------------------------------------------------

/// Every rank of the MPI job as a train::Collective: a Trainer built with it splits each global batch of
/// options.batch_size rows into shards (shard()), sums the gradients with DataParallel (overlapping the
/// backward) and scales each rank's objective by shard_scale(), so that K ranks take exactly the step one
/// process takes on the whole batch. Metrics (train loss and accuracy, validation) are all-reduced, the stop
/// flag is the maximum over ranks (one MPI_Allreduce of an int after every update), times are rank 0's, and
/// callbacks run on rank 0 only, so every rank takes the same branches. Every rank must build the same
/// Trainer (model shape, options, dataset, seed). A state saved on K ranks resumes on any number: the
/// progress sums are global.
///
///   auto comm = std::make_shared<bp::dist::Collective>();
///   bp::train::Trainer trainer(net, loss, opt, {.epochs = 10, .batch_size = 512}, comm);
///   trainer.fit(train);                       // the same history on every rank
class Collective : public train::Collective {
 public:
  /// Throws DistError before init().
  explicit Collective(DataParallelOptions options = {});
  ~Collective() override;
  int rank() const override;
  int size() const override;
  /// Broadcasts rank 0's parameters and buffers and prepares the gradient all-reduce for `model`.
  void start(nn::Module& model) override;
  data::Batch shard(const data::Batch& global) override;
  void backward(const Tensor& objective) override;
  void sum(double* values, int count) override;
  bool any(bool flag) override;
  double from_root(double value) override;
  train::Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                             std::int64_t batch_size) override;
  /// Time and traffic of the gradient all-reduce since start().
  CommStats stats() const;

 private:
  DataParallelOptions options_;
  std::unique_ptr<DataParallel> dp_;
  nn::Module* model_ = nullptr;
};

/// train::fit() over MPI: a train::Trainer with a dist::Collective (see there). Throws ValueError when a
/// global batch has fewer rows than ranks, DivergedError like fit(), DistError on MPI failures.
train::History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
                   const data::TensorDataset& train, const train::FitOptions& options = {},
                   DataParallelOptions parallel = {});

/// train::evaluate() with the rows split across ranks and the sums all-reduced: every rank gets the global
/// loss, accuracy and confusion matrix.
train::Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                           std::int64_t batch_size = 1000);

/// The CommStats of the most recent fit() on this thread (communication share of the step time).
CommStats last_fit_comm_stats();

}  // namespace backprop::dist
