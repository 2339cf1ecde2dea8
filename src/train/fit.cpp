// evaluate(), predict() and the helpers the training loop shares with them (train/trainer.cpp).
#include <backprop/ops.hpp>
#include <backprop/train.hpp>
#include <backprop/train/metrics.hpp>
#include <cmath>
#include <map>

#include "kernels/kernels.hpp"

namespace backprop::train {

Tensors penalised_weights(const nn::Module& model) {
  Tensors weights;
  for (const auto& [name, p] : model.named_parameters())
    if (p.dim() >= 2 && name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0)
      weights.push_back(p);
  return weights;
}

bool all_finite(const Tensor& t) {
  return kernels::all_finite(t);
}

double accuracy(const Tensor& outputs, const Tensor& targets) {
  const std::int64_t correct = kernels::count_argmax_matches(outputs, targets);
  if (outputs.size(0) == 0) return kNone;
  return static_cast<double>(correct) / static_cast<double>(outputs.size(0));
}

RegressionMetrics regression_metrics(const Tensor& predictions, const Tensor& targets) {
  BP_CHECK(predictions.numel() == targets.numel(), ShapeError, "regression_metrics: predictions ",
           predictions.shape(), " and targets ", targets.shape(), " differ in their number of elements");
  RegressionMetrics r;
  const std::vector<double> y = targets.to_vector();
  const std::vector<double> p = predictions.to_vector();
  if (y.empty()) return r;
  const auto n = static_cast<double>(y.size());
  double se = 0, ae = 0, mean = 0, ss = 0;
  for (double v : y) mean += v / n;
  for (std::size_t i = 0; i < y.size(); ++i) {
    se += (p[i] - y[i]) * (p[i] - y[i]);
    ae += std::abs(p[i] - y[i]);
    ss += (y[i] - mean) * (y[i] - mean);
  }
  r.rmse = std::sqrt(se / n);
  r.mae = ae / n;
  if (ss > 0) r.r2 = 1 - se / ss;
  return r;
}

Tensor model_input(const nn::Module& model, const Tensor& x) {
  if (!x.defined() || x.dim() <= 2) return x;
  const nn::Module* first = &model;
  while (const auto* seq = dynamic_cast<const nn::Sequential*>(first)) {
    if (seq->size() == 0) return x;
    first = (*seq)[0].get();
  }
  const bool dense = dynamic_cast<const nn::Linear*>(first) != nullptr ||
                     dynamic_cast<const nn::DropConnect*>(first) != nullptr;
  return dense ? x.reshape({x.size(0), -1}) : x;
}

Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                    std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "evaluate: batch_size must be >= 1, got ", batch_size);
  Evaluation result;
  result.examples = data.size();
  if (data.size() == 0) return result;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const bool classification = data.task == data::Task::classification;
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::int64_t start = 0; start < data.size(); start += batch_size) {
    const std::int64_t rows = std::min(batch_size, data.size() - start);
    const Tensor x = model_input(model, narrow(data.features, start, rows));
    const Tensor y = narrow(data.targets, start, rows);
    const Tensor out = model(x);
    loss_sum += loss(out, y).item() * static_cast<double>(rows);
    if (!classification) continue;
    const std::int64_t classes = std::max<std::int64_t>(data.num_classes, out.size(1));
    if (result.confusion.empty())
      result.confusion.assign(static_cast<std::size_t>(classes), std::vector<std::int64_t>(classes, 0));
    const Tensor predicted = argmax(out, 1);
    for (std::int64_t i = 0; i < rows; ++i) {
      const auto t = static_cast<std::size_t>(y.flat(i));
      const auto p = static_cast<std::size_t>(predicted.flat(i));
      correct += t == p;
      if (t < result.confusion.size() && p < result.confusion.size()) ++result.confusion[t][p];
    }
  }
  result.loss = loss_sum / static_cast<double>(data.size());
  if (classification) {
    result.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
    for (std::size_t c = 0; c < result.confusion.size(); ++c) {
      std::int64_t total = 0;
      for (std::int64_t v : result.confusion[c]) total += v;
      result.per_class_accuracy.push_back(
          total ? static_cast<double>(result.confusion[c][c]) / static_cast<double>(total) : kNone);
    }
  }
  model.train(was_training);
  return result;
}

Tensor predict(nn::Module& model, const Tensor& features, std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "predict: batch_size must be >= 1, got ", batch_size);
  BP_CHECK(features.dim() >= 2, ShapeError, "predict: expected features [N, D] or images [N, C, H, W], got ",
           features.shape());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Tensors parts;
  for (std::int64_t start = 0; start < features.size(0); start += batch_size)
    parts.push_back(
        model(model_input(model, narrow(features, start, std::min(batch_size, features.size(0) - start)))));
  model.train(was_training);
  BP_CHECK(!parts.empty(), ValueError, "predict: no rows to predict");
  return parts.size() == 1 ? parts[0] : concat(parts);
}

}  // namespace backprop::train
