// backprop/nn/attention.hpp — multi-head scaled dot-product attention, built from ops.
//
// MultiheadAttention(E, H) projects query, key and value with one packed weight in_proj_weight [3E, E] (and
// in_proj_bias [3E]), splits E into H heads of E / H features, and per head computes
//   softmax(Q K^T / sqrt(E / H) + masks) V,
// then joins the heads and applies out_proj (a Linear E -> E). Parameter names and layout are PyTorch's, so a
// PyTorch state dict loads unchanged. Inputs are [N, L, E] (batch_first, the default) or [L, N, E].
// Masks have PyTorch's meaning: a bool mask blocks the positions where it is true (not allowed to attend); a
// float mask (of the layer's dtype) is added to the scores, so 0 keeps a position and -inf blocks it.
// attn_mask is [L, S] or [N * H, L, S]; key_padding_mask is [N, S]. A query whose keys are all blocked gets
// NaN weights, as in PyTorch.
// Called with one tensor it is self-attention and returns the output only; called with several it returns
// {output [N, L, E], weights [N, L, S] averaged over the heads}.
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::MultiheadAttention mha(16, 4, gen);
//   bp::Tensor x = bp::randn({2, 5, 16}, gen);                   // 2 sequences of 5 tokens
//   bp::Tensor y = mha(x);                                       // self-attention, [2, 5, 16]
//   bp::Tensor mem = bp::randn({2, 7, 16}, gen);
//   bp::Tensors out = mha(x, mem, mem);                          // {[2, 5, 16], weights [2, 5, 7]}
//   bp::Tensor pad = bp::zeros({2, 7}, bp::bool_);               // key_padding_mask: true blocks a key
//   bp::Tensors masked = mha.attend(x, mem, mem, pad);
//   bp::Tensor causal = bp::triu(bp::ones({5, 5}, bp::bool_), 1);  // token i sees tokens 0..i only
//   bp::Tensors decoded = mha.attend(x, x, x, {}, causal);
#pragma once

#include <backprop/generator.hpp>
#include <backprop/nn/linear.hpp>
#include <backprop/nn/module.hpp>
#include <cstdint>
#include <memory>
#include <string>

namespace backprop::nn {

struct MultiheadAttentionOptions {
  /// Biases in the input projection and in out_proj.
  bool bias = true;
  /// Inputs and outputs [N, L, E] when true, [L, N, E] when false.
  bool batch_first = true;
  DType dtype = f32;
};

class MultiheadAttention : public Module {
 public:
  /// Throws ValueError when embed_dim or num_heads is not positive or num_heads does not divide embed_dim.
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, Generator& gen,
                     MultiheadAttentionOptions options = {});
  /// The same with `out_proj` (an E -> E Linear with a bias when options.bias, of options.dtype) used as given,
  /// shared, instead of a new one. Throws ValueError when it does not fit.
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, Generator& gen,
                     MultiheadAttentionOptions options, std::shared_ptr<Linear> out_proj);

  /// Self-attention: attend(x, x, x)'s output.
  Tensor forward(const Tensor& x) override;
  /// {query, key, value} and optionally key_padding_mask and attn_mask (undefined tensors for none) ->
  /// {output, weights averaged over the heads}. Throws ValueError on another count.
  Tensors forward(const Tensors& inputs) override;
  /// query [N, L, E], key and value [N, S, E] (batch_first) -> {output [N, L, E], weights [N, L, S]}.
  /// Masks are bool (true blocks) or of the layer's dtype (added). Throws ShapeError naming the argument and
  /// its shape when a shape does not fit, DTypeError when a dtype differs from the layer's (or, for a mask,
  /// is neither bool nor the layer's).
  Tensors attend(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {});
  /// "MultiheadAttention(embed_dim=16, num_heads=4, bias=true, batch_first=true)"
  std::string repr() const override;

  std::int64_t embed_dim() const { return embed_dim_; }
  std::int64_t num_heads() const { return num_heads_; }
  const MultiheadAttentionOptions& options() const { return options_; }
  /// [3E, E]: the query, key and value projections stacked.
  const Tensor& in_proj_weight() const { return in_proj_weight_; }
  /// [3E], undefined without bias.
  const Tensor& in_proj_bias() const { return in_proj_bias_; }
  const std::shared_ptr<Linear>& out_proj() const { return out_proj_; }

 private:
  std::int64_t embed_dim_, num_heads_;
  MultiheadAttentionOptions options_;
  Tensor in_proj_weight_, in_proj_bias_;
  std::shared_ptr<Linear> out_proj_;
};

}  // namespace backprop::nn
