// Embedding: a weight [V, D] looked up by token ids through backprop::embedding.
#include <backprop/nn/embedding.hpp>
#include <backprop/ops.hpp>

namespace backprop::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen,
                     EmbeddingOptions options) {
  BP_CHECK(num_embeddings > 0 && embedding_dim > 0, ValueError,
           "Embedding: num_embeddings and embedding_dim must be positive, got ", num_embeddings, " and ",
           embedding_dim);
  if (options.padding_idx) {
    const std::int64_t p = *options.padding_idx;
    BP_CHECK(p >= -num_embeddings && p < num_embeddings, IndexError, "Embedding: padding_idx ", p,
             " is out of range for ", num_embeddings, " embeddings");
    padding_idx_ = p < 0 ? p + num_embeddings : p;
  }
  Tensor w = randn({num_embeddings, embedding_dim}, gen, options.dtype);
  if (padding_idx_) {
    dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* row = w.data<T>() + *padding_idx_ * embedding_dim;
      for (std::int64_t j = 0; j < embedding_dim; ++j) row[j] = T(0);
    });
  }
  weight_ = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) {
  return embedding(indices, weight_, padding_idx_);
}

std::string Embedding::repr() const {
  return detail::cat("Embedding(", num_embeddings(), ", ", embedding_dim(),
                     padding_idx_ ? detail::cat(", padding_idx=", *padding_idx_) : std::string(), ")");
}

bool Embedding::on_parameter_shared(const std::string& name, const Tensor& t) {
  if (name != "weight") return false;
  weight_ = t;
  return true;
}

}  // namespace backprop::nn
