// MultiheadAttention: packed input projection, heads as a batch of matrix products, softmax, output
// projection; every step an op, so gradients (and gradients of gradients) flow through.
#include <backprop/nn/attention.hpp>
#include <backprop/nn/init.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <limits>

namespace backprop::nn {

namespace {
std::shared_ptr<Linear> new_out_proj(std::int64_t embed_dim, Generator& gen,
                                     const MultiheadAttentionOptions& options) {
  BP_CHECK(embed_dim > 0, ValueError, "MultiheadAttention: embed_dim must be positive, got ", embed_dim);
  auto out = std::make_shared<Linear>(embed_dim, embed_dim, gen,
                                      LinearOptions{.bias = options.bias, .dtype = options.dtype});
  if (options.bias) {
    NoGradGuard guard;
    Tensor(out->bias()).fill_(0.0);  // PyTorch's initialisation: zero biases
  }
  return out;
}

void check_mask_dtype(const char* name, const Tensor& mask, DType layer) {
  BP_CHECK(mask.dtype() == bool_ || mask.dtype() == layer, DTypeError, "MultiheadAttention: ", name, " is ",
           mask.dtype(), "; expected bool (true = not allowed to attend) or the layer's ", layer,
           " (added to the scores)");
}

// A bool mask blocks the positions where it is true (the score becomes -inf, as PyTorch does); a float mask
// is added to the scores.
Tensor apply_mask(const Tensor& scores, const Tensor& mask) {
  if (mask.dtype() == bool_) return masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
  return add(scores, mask);
}
}  // namespace

MultiheadAttention::MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, Generator& gen,
                                       MultiheadAttentionOptions options)
    : MultiheadAttention(embed_dim, num_heads, gen, options, new_out_proj(embed_dim, gen, options)) {}

MultiheadAttention::MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, Generator& gen,
                                       MultiheadAttentionOptions options, std::shared_ptr<Linear> out_proj)
    : embed_dim_(embed_dim), num_heads_(num_heads), options_(options), out_proj_(std::move(out_proj)) {
  BP_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, ValueError,
           "MultiheadAttention: embed_dim (", embed_dim, ") and num_heads (", num_heads,
           ") must be positive, and num_heads must divide embed_dim");
  BP_CHECK(out_proj_ != nullptr && out_proj_->in_features() == embed_dim &&
               out_proj_->out_features() == embed_dim && out_proj_->bias().defined() == options.bias &&
               out_proj_->weight().dtype() == options.dtype,
           ValueError, "MultiheadAttention: out_proj must be Linear(in=", embed_dim, ", out=", embed_dim,
           ", bias=", options.bias ? "true" : "false", ") of ", options.dtype, ", got ",
           out_proj_ ? out_proj_->repr() : std::string("a null pointer"));
  // PyTorch's initialisation: Xavier-uniform packed projection, zero biases.
  in_proj_weight_ = register_parameter(
      "in_proj_weight", init::xavier_uniform(empty({3 * embed_dim, embed_dim}, options.dtype), gen));
  if (options.bias) in_proj_bias_ = register_parameter("in_proj_bias", zeros({3 * embed_dim}, options.dtype));
  register_module("out_proj", out_proj_);
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return attend(x, x, x)[0];
}

Tensors MultiheadAttention::forward(const Tensors& in) {
  BP_CHECK(in.size() >= 3 && in.size() <= 5, ValueError,
           "MultiheadAttention: expected {query, key, value[, key_padding_mask[, attn_mask]]}, got ",
           in.size(), " inputs");
  return attend(in[0], in[1], in[2], in.size() > 3 ? in[3] : Tensor(), in.size() > 4 ? in[4] : Tensor());
}

Tensors MultiheadAttention::attend(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask, const Tensor& attn_mask) {
  const std::int64_t E = embed_dim_, H = num_heads_, hd = E / H;
  const char* order = options_.batch_first ? "[N, L, E]" : "[L, N, E]";
  for (const auto& [name, t] : {std::pair{"query", &query}, {"key", &key}, {"value", &value}}) {
    BP_CHECK(t->defined() && t->dim() == 3 && t->size(2) == E, ShapeError, "MultiheadAttention: ", name,
             " must be ", order, " with E = ", E, ", got ", t->defined() ? t->shape() : Shape{});
    BP_CHECK(t->dtype() == in_proj_weight_.dtype(), DTypeError, "MultiheadAttention: ", name, " is ",
             t->dtype(), " but the layer is ", in_proj_weight_.dtype());
  }
  // Batch first from here on.
  const Tensor q = options_.batch_first ? query : transpose(query, 0, 1);
  const Tensor k = options_.batch_first ? key : transpose(key, 0, 1);
  const Tensor v = options_.batch_first ? value : transpose(value, 0, 1);
  const std::int64_t N = q.size(0), L = q.size(1), S = k.size(1);
  BP_CHECK(k.size(0) == N && v.size(0) == N && v.size(1) == S, ShapeError, "MultiheadAttention: query ",
           query.shape(), ", key ", key.shape(), " and value ", value.shape(),
           " must share the batch size, and key and value the length");

  // [N, T, E] -> projection rows [part * E, (part + 1) * E) -> heads [N * H, T, hd].
  auto project = [&](const Tensor& x, std::int64_t part) {
    const std::int64_t T = x.size(1);
    const Tensor w = narrow(in_proj_weight_, 0, part * E, E);
    const Tensor b = in_proj_bias_.defined() ? narrow(in_proj_bias_, 0, part * E, E) : Tensor();
    const Tensor y = linear(reshape(x, {N * T, E}), w, b);
    return reshape(permute(reshape(y, {N, T, H, hd}), {0, 2, 1, 3}), {N * H, T, hd});
  };
  // As PyTorch 1.13: the query is scaled before the product.
  const Tensor qh = mul(project(q, 0), 1.0 / std::sqrt(static_cast<double>(hd)));
  const Tensor kh = project(k, 1), vh = project(v, 2);

  // Scores [N, H, L, S]; a 3-D matmul per head batch (bmm's job once it exists).
  Tensor scores = reshape(matmul(qh, transpose(kh, 1, 2)), {N, H, L, S});
  if (attn_mask.defined()) {
    const bool two_d = attn_mask.dim() == 2 && attn_mask.size(0) == L && attn_mask.size(1) == S;
    const bool three_d = attn_mask.dim() == 3 && attn_mask.size(0) == N * H && attn_mask.size(1) == L &&
                         attn_mask.size(2) == S;
    BP_CHECK(two_d || three_d, ShapeError, "MultiheadAttention: attn_mask must be [L, S] = [", L, ", ", S,
             "] or [N * H, L, S] = [", N * H, ", ", L, ", ", S, "], got ", attn_mask.shape());
    check_mask_dtype("attn_mask", attn_mask, scores.dtype());
    scores = apply_mask(scores, two_d ? attn_mask : reshape(attn_mask, {N, H, L, S}));
  }
  if (key_padding_mask.defined()) {
    BP_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == N && key_padding_mask.size(1) == S,
             ShapeError, "MultiheadAttention: key_padding_mask must be [N, S] = [", N, ", ", S, "], got ",
             key_padding_mask.shape());
    check_mask_dtype("key_padding_mask", key_padding_mask, scores.dtype());
    scores = apply_mask(scores, reshape(key_padding_mask, {N, 1, 1, S}));
  }
  const Tensor weights = softmax(scores, -1);                        // [N, H, L, S]
  const Tensor heads = matmul(reshape(weights, {N * H, L, S}), vh);  // [N * H, L, hd]
  const Tensor joined = reshape(permute(reshape(heads, {N, H, L, hd}), {0, 2, 1, 3}), {N * L, E});
  Tensor out = reshape(out_proj_->forward(joined), {N, L, E});
  if (!options_.batch_first) out = transpose(out, 0, 1);
  return {out, mean(weights, 1)};
}

std::string MultiheadAttention::repr() const {
  return detail::cat("MultiheadAttention(embed_dim=", embed_dim_, ", num_heads=", num_heads_,
                     ", bias=", options_.bias ? "true" : "false",
                     ", batch_first=", options_.batch_first ? "true" : "false", ")");
}

}  // namespace backprop::nn
