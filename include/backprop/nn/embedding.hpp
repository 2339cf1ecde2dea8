// backprop/nn/embedding.hpp — a lookup table of learned vectors, one row per token id.
//
// Embedding(num_embeddings, embedding_dim) holds weight [V, D], drawn from N(0, 1) as in PyTorch; the
// forward maps indices of any shape (whole numbers in [0, V)) to their rows, so [N, L] token ids become
// [N, L, D]. With padding_idx, that row starts at zero and gets no gradient (a "no token" slot). The gradient
// of the weight is the output gradient's rows added at their indices (backprop::embedding, in ops).
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Embedding emb(100, 16, gen, {.padding_idx = 0});           // 100 tokens, 16 features, 0 = pad
//   bp::Tensor ids = bp::from_vector(std::vector<double>{5, 7, 0, 3, 3, 9}, {2, 3});
//   bp::Tensor vecs = emb(ids);                                        // [2, 3, 16]
//   bp::Tensor doc = bp::mean(vecs, 1);                                // [2, 16]: mean over the tokens
//   bp::nn::Linear head(16, 100, gen, {.bias = false});
//   head.share_parameter("weight", emb.weight());                      // tied weights: one tensor
#pragma once

#include <backprop/generator.hpp>
#include <backprop/nn/module.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace backprop::nn {

struct EmbeddingOptions {
  /// The row of this index (negative counts from V) starts at zero and gets no gradient.
  std::optional<std::int64_t> padding_idx;
  DType dtype = f32;
};

class Embedding : public Module {
 public:
  /// Throws ValueError when num_embeddings or embedding_dim is not positive, IndexError when padding_idx is
  /// outside [-num_embeddings, num_embeddings).
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen,
            EmbeddingOptions options = {});

  /// indices (any shape, whole numbers in [0, V)) -> indices.shape() + [D]. Throws IndexError naming the index
  /// and its position when one is out of range, ValueError when one is not a whole number.
  Tensor forward(const Tensor& indices) override;
  /// "Embedding(100, 16, padding_idx=0)"
  std::string repr() const override;

  /// [V, D]
  const Tensor& weight() const { return weight_; }
  std::int64_t num_embeddings() const { return weight_.size(0); }
  std::int64_t embedding_dim() const { return weight_.size(1); }
  /// In [0, V) when set (a negative option is stored counted from V).
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }

 protected:
  bool on_parameter_shared(const std::string& name, const Tensor& t) override;

 private:
  std::optional<std::int64_t> padding_idx_;
  Tensor weight_;
};

}  // namespace backprop::nn
