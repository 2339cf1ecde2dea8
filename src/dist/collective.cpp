// dist::Collective: the MPI side of train::Trainer (shards, gradient all-reduce, global sums), dist::fit()
// and dist::evaluate().
#include <backprop/ops.hpp>
#include <chrono>
#include <cmath>
#include <map>

#include "dist/mpi_util.hpp"

namespace backprop::dist {

namespace {

using Clock = std::chrono::steady_clock;
thread_local CommStats last_stats;

}  // namespace

CommStats last_fit_comm_stats() {
  return last_stats;
}

train::Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                           std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "dist::evaluate: batch_size must be >= 1, got ", batch_size);
  train::Evaluation result;
  result.examples = data.size();
  if (data.size() == 0) return result;
  const Shard mine = shard_of(data.size(), rank(), size());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const bool classification = data.task == data::Task::classification;
  double loss_sum = 0.0;
  std::vector<double> confusion;  // flattened [true][predicted], summed over ranks below
  std::int64_t classes = classification ? data.num_classes : 0;
  for (std::int64_t start = mine.begin; start < mine.end; start += batch_size) {
    const std::int64_t rows = std::min(batch_size, mine.end - start);
    const Tensor x = narrow(data.features, start, rows);
    const Tensor y = narrow(data.targets, start, rows);
    const Tensor out = model(x);
    loss_sum += loss(out, y).item() * static_cast<double>(rows);
    if (!classification) continue;
    BP_CHECK(out.size(1) <= classes, ValueError, "dist::evaluate: the model outputs ", out.size(1),
             " classes but the dataset declares ", classes);
    if (confusion.empty()) confusion.assign(static_cast<std::size_t>(classes * classes), 0.0);
    const Tensor predicted = argmax(out, 1);
    for (std::int64_t i = 0; i < rows; ++i) {
      const auto t = static_cast<std::int64_t>(y.flat(i));
      const auto p = static_cast<std::int64_t>(predicted.flat(i));
      if (t >= 0 && t < classes && p >= 0 && p < classes)
        confusion[static_cast<std::size_t>(t * classes + p)] += 1;
    }
  }
  result.loss = all_reduce_sum(loss_sum) / static_cast<double>(data.size());
  if (classification) {
    confusion.resize(static_cast<std::size_t>(classes * classes), 0.0);
    Tensor c = from_vector(confusion, {classes, classes}, f64);
    all_reduce_sum_(c);
    std::int64_t correct = 0;
    result.confusion.assign(static_cast<std::size_t>(classes), std::vector<std::int64_t>(classes, 0));
    for (std::int64_t t = 0; t < classes; ++t) {
      std::int64_t total = 0;
      for (std::int64_t p = 0; p < classes; ++p) {
        const auto v = static_cast<std::int64_t>(c.flat(t * classes + p));
        result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)] = v;
        total += v;
      }
      correct += result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(t)];
      result.per_class_accuracy.push_back(
          total ? static_cast<double>(
                      result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(t)]) /
                      static_cast<double>(total)
                : train::kNone);
    }
    result.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  }
  model.train(was_training);
  return result;
}

Collective::Collective(DataParallelOptions options) : options_(options) {
  detail::require_init("dist::Collective");
}

Collective::~Collective() = default;

int Collective::rank() const {
  return dist::rank();
}

int Collective::size() const {
  return dist::size();
}

void Collective::start(nn::Module& model) {
  if (model_ == &model && dp_) return;  // a second fit() of the same Trainer
  model_ = &model;
  dp_ = std::make_unique<DataParallel>(model, options_);  // broadcasts rank 0's weights
}

data::Batch Collective::shard(const data::Batch& global) {
  return dist::shard(global);
}

void Collective::backward(const Tensor& objective) {
  BP_CHECK(dp_ != nullptr, ValueError, "dist::Collective: backward() before start()");
  dp_->backward(objective);
}

void Collective::sum(double* values, int count) {
  detail::check(MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce");
}

bool Collective::any(bool flag) {
  int v = flag ? 1 : 0;
  detail::check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return v != 0;
}

double Collective::from_root(double value) {
  detail::check(MPI_Bcast(&value, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return value;
}

train::Evaluation Collective::evaluate(nn::Module& model, const loss::Loss& loss,
                                       const data::TensorDataset& data, std::int64_t batch_size) {
  return dist::evaluate(model, loss, data, batch_size);
}

CommStats Collective::stats() const {
  return dp_ ? dp_->stats() : CommStats{};
}

train::History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
                   const data::TensorDataset& train, const train::FitOptions& options,
                   DataParallelOptions parallel) {
  auto comm = std::make_shared<Collective>(parallel);
  train::History history = train::Trainer(model, loss, optimizer, options, comm).fit(train);
  last_stats = comm->stats();
  return history;
}

}  // namespace backprop::dist
