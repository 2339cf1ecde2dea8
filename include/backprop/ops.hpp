// backprop/ops.hpp — every differentiable operation.
//
// Each op checks its arguments, runs a CPU kernel and records a backward written with these same ops, so
// every gradient is itself differentiable (create_graph). Binary element-wise ops broadcast like NumPy; their
// backward sums the gradient over the broadcast dimensions. Both operands must have the same dtype.
// Arithmetic, reductions, linear algebra and nn functions take f32/f64 only: an i64 or bool_ operand is a
// DTypeError naming the op and the argument (no implicit promotion; convert with .to(bp::f32)). Shape and
// index ops, to_dtype, one_hot and the comparisons below work on every dtype.
//
// Example:
//   bp::Tensor h = bp::relu(bp::linear(x, w1, b1));          // x [N, 784], w1 [256, 784], b1 [256]
//   bp::Tensor logits = bp::linear(h, w2, b2);
//   bp::Tensor loss = bp::mean(bp::neg(bp::sum(onehot * bp::log_softmax(logits, 1), 1)));
#pragma once

#include <backprop/autograd.hpp>
#include <backprop/tensor.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace backprop {

// ---- element-wise, binary (broadcasting) ------------------------------------------------------------------
/// a + b.  d/da = 1, d/db = 1 (each summed back to its operand's shape).
Tensor add(const Tensor& a, const Tensor& b);
/// a - b.
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b.  d/da = b, d/db = a.
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b.  d/da = 1/b, d/db = -a/b^2.
Tensor div(const Tensor& a, const Tensor& b);
/// Element-wise max(a, b); the gradient goes to a where a >= b, else to b.
Tensor maximum(const Tensor& a, const Tensor& b);

// ---- element-wise with a scalar ---------------------------------------------------------------------------
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
/// b - a
Tensor rsub(const Tensor& a, double b);
/// b / a
Tensor rdiv(const Tensor& a, double b);

// ---- element-wise, unary ----------------------------------------------------------------------------------
Tensor neg(const Tensor& x);
/// exp(x); the backward keeps the output: d/dx = exp(x).
Tensor exp(const Tensor& x);
/// Natural log; d/dx = 1/x. Non-positive inputs give -inf/NaN as in IEEE arithmetic.
Tensor log(const Tensor& x);
/// x^p for a scalar p; d/dx = p x^(p-1).
Tensor pow(const Tensor& x, double p);
/// sqrt(x); d/dx = 1 / (2 sqrt(x)).
Tensor sqrt(const Tensor& x);
/// |x|; d/dx = sign(x) (0 at 0).
Tensor abs(const Tensor& x);
/// sign(x) in {-1, 0, 1}; gradient 0.
Tensor sign(const Tensor& x);
/// min(max(x, lo), hi); the gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
/// torch.clamp with tensor bounds: min(max(x, min), max), broadcasting x, min and max; either bound may be
/// undefined (Tensor()) for none. d/dx = dy where min <= x <= max; d/dmin = dy where x < min < max;
/// d/dmax = dy where x > max or max < min (the result is then max); each summed to its operand's shape.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);

// ---- selection by a condition -----------------------------------------------------------------------------
/// cond ? a : b element by element, broadcasting all three. cond may have any dtype: non-zero (NaN included)
/// counts as true. d/da = where(cond, dy, 0), d/db = where(cond, 0, dy), summed to each operand's shape; cond
/// takes no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// x with `value` where mask is non-zero; mask broadcasts to x's shape. Attention's masking step:
/// masked_fill(scores, causal_mask, -inf). d/dx = where(mask, 0, dy); a 0-dim tensor value gets the sum of dy
/// over the masked positions.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value);
/// 1 / (1 + exp(-x)); d/dx = y (1 - y).
Tensor sigmoid(const Tensor& x);
/// tanh(x); d/dx = 1 - y^2.
Tensor tanh(const Tensor& x);
/// max(x, 0); d/dx = 1 where x > 0.
Tensor relu(const Tensor& x);
/// x where x > 0, slope * x elsewhere.
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
/// x * mask * scale, with a constant mask (no gradient flows into the mask). Inverted dropout uses
/// scale = 1 / (1 - p).  d/dx = mask * scale.
Tensor masked_scale(const Tensor& x, const Tensor& mask, double scale = 1.0);

// ---- reductions -------------------------------------------------------------------------------------------
/// Sum of all elements (0-d result).
Tensor sum(const Tensor& x);
/// Sum along `axis` (negative counts from the end); keepdim keeps it as size 1.
Tensor sum(const Tensor& x, std::int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::int64_t axis, bool keepdim = false);
/// Largest value along `axis`; the gradient goes to the first maximal element.
Tensor max(const Tensor& x, std::int64_t axis, bool keepdim = false);
/// Index of the largest value along `axis` (first on ties), as i64 indices; not differentiable.
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);

// ---- reductions over a set of dims (PyTorch's names and semantics) ---------------------------------------
// `dims` may be negative (counting from the end) and must not repeat a dim; an empty list means every dim.
// keepdim keeps each reduced dim as size 1. Write an empty list as Dims{}: a bare {} picks the one-axis
// overload of sum and mean (axis 0). Indices are returned as i64 tensors, as argmax does.
using Dims = std::vector<std::int64_t>;

/// Sum over `dims`.  d/dx = dy repeated over the reduced dims.
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim = false);
/// Mean over `dims` (n = product of their sizes; an empty reduction is an error).  d/dx = dy / n, repeated.
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim = false);
/// Largest value over `dims`. d/dx = dy / t at each of the t elements equal to the maximum (ties share
/// evenly, as in PyTorch), 0 elsewhere.
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// Smallest value over `dims`; gradient as amax.
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// log(sum(exp(x))) over `dims`, computed as m + log(sum(exp(x - m))) with m the maximum (0 where it is not
/// finite).  d/dx = softmax of x over `dims` times dy.
Tensor logsumexp(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// sum((x - mean)^2) / (n - correction) over `dims` (correction 1: the unbiased estimate; 0: the population
/// variance).  d/dx = 2 (x - mean) dy / (n - correction).
Tensor var(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
/// sqrt(var(x, dims, correction)).  d/dx = (x - mean) dy / ((n - correction) std), 0 where std is 0.
Tensor std(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
/// Vector p-norm over `dims` (all by default): p = 2 sqrt(sum x^2), p = 1 sum |x|, p = inf max |x|,
/// p = -inf min |x|, other p > 0 (sum |x|^p)^(1/p).  d/dx for p = 2: x dy / norm (0 where the norm is 0);
/// p = 1: sign(x) dy (0 at 0); p = +-inf: sign(x) dy shared among the elements reaching the extreme.
Tensor norm(const Tensor& x, double p = 2, const Dims& dims = {}, bool keepdim = false);

/// A value tensor and the i64 index tensor of where each value came from (max, min, topk).
struct ValuesIndices {
  Tensor values;
  Tensor indices;
};
/// PyTorch's torch.max(x, dim, keepdim): the largest value along `dim` and its first index (a NaN counts as
/// the largest). d/dvalues flows to that index only. (max(x, axis) above returns the values alone.)
ValuesIndices max_with_indices(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Smallest value along `dim`; the values alone. The gradient goes to the first minimal element.
Tensor min(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// PyTorch's torch.min(x, dim, keepdim): the smallest value along `dim` and its first index.
ValuesIndices min_with_indices(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Index of the smallest value along `dim` (first on ties), as i64 indices; not differentiable.
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// The k largest (or smallest) elements along `dim` and their indices, best first when `sorted` (ties in
/// index order), else in index order. Values are differentiable: d/dx puts dy back at the indices.
ValuesIndices topk(const Tensor& x, std::int64_t k, std::int64_t dim = -1, bool largest = true,
                   bool sorted = true);

/// Sums x down to `shape` (the reverse of broadcasting x from `shape`). Backward: broadcast_to.
Tensor sum_to(const Tensor& x, const Shape& shape);
/// Repeats x up to `shape` following the broadcasting rules: a view (repeated dims have stride 0; write to a
/// contiguous() copy). Backward: sum_to.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// ---- linear algebra ---------------------------------------------------------------------------------------
/// torch.matmul. 2-D x 2-D: [M, K] x [K, N] -> [M, N]. 1-D x 1-D: the dot product (0-d). A 1-D left operand
/// is a row [1, K] and a 1-D right operand a column [K, 1], whose dim is dropped from the result. With an
/// operand of rank >= 3 the dims before the last two are batch dims that broadcast: [2, 1, M, K] x [3, K, N]
/// -> [2, 3, M, N]; [..., M, K] x [K, N] is one product over all rows. Backward: mm's, summed over broadcast
/// batch dims. Throws ShapeError naming both shapes when K differs or the batch dims do not broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
/// Batched product [B, n, k] x [B, k, m] -> [B, n, m] (no broadcasting). d/da = dy b^T, d/db = a^T dy, each
/// again a bmm.
Tensor bmm(const Tensor& a, const Tensor& b);
/// torch.einsum: "bhqd,bhkd->bhqk", "bi,ij,bj->b", "ij->ji", "...ij,...jk->...ik", or an implicit output
/// ("ij,jk": the subscripts used once, in ASCII order, after the "..." dims). Operands are contracted left to
/// right, each pair as one matmul (batch dims first) after sum, expand, permute and reshape, so the backward
/// is theirs. Size-1 dims broadcast. A subscript repeated within one operand (a diagonal, "ii->i") is not
/// supported; it and any malformed equation throw ValueError naming the equation.
Tensor einsum(const std::string& equation, const Tensors& operands);
/// op(a) op(b), where op transposes when the flag is set; the transpose is handed to BLAS, never copied.
Tensor mm(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
/// x W^T + b for x [N, in], W [out, in], b [out] (b may be undefined): a dense layer in one fused GEMM.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
/// Transpose of a 2-D tensor (a view; matmul reads it as a transposed operand without a copy).
Tensor transpose(const Tensor& x);

// ---- shape ----------------------------------------------------------------------------------------------
// Dims may be negative (counted from the end). permute, transpose, narrow, slice, expand, squeeze and unsqueeze
// return views sharing x's storage (and its version counter); reshape, flatten and unflatten too when x's
// strides allow, else a contiguous copy. index_select, gather, cat, pad, ... copy. These ops work on every
// dtype. Index arguments are i64 tensors (whole numbers in f32/f64 are accepted too) or lists; an index out of
// range is an IndexError naming the index, its position, the dim and the dim's size.
Tensor reshape(const Tensor& x, const Shape& shape);
/// reshape that never copies: throws ShapeError naming the shape and strides when x's layout has no view of
/// that shape (as PyTorch's view). Backward: reshape back.
Tensor view(const Tensor& x, const Shape& shape);
/// Converts to `dtype` (the rules are Tensor::to's); the gradient is converted back. A result of dtype i64 or
/// bool_ is not recorded (it has no gradient).
Tensor to_dtype(const Tensor& x, DType dtype);
/// x with its dims reordered: output dim i is input dim dims[i]. Backward: permute by the inverse.
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// x with dims d0 and d1 swapped. Backward: transpose(dy, d0, d1).
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1);
/// x without its size-1 dims; squeeze(x, dim) removes dim only if its size is 1.
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, std::int64_t dim);
/// x with a size-1 dim inserted at `dim` (in [-(rank + 1), rank]).
Tensor unsqueeze(const Tensor& x, std::int64_t dim);
/// Dims start_dim..end_dim merged into one.
Tensor flatten(const Tensor& x, std::int64_t start_dim = 0, std::int64_t end_dim = -1);
/// Dim `dim` split into `sizes` (one entry may be -1).
Tensor unflatten(const Tensor& x, std::int64_t dim, const Shape& sizes);
/// Rows [start, start + length) of the first dimension (a view).
Tensor narrow(const Tensor& x, std::int64_t start, std::int64_t length);
/// Positions [start, start + length) of `dim`; a negative start counts from the end.
/// Backward: dy placed at those positions of a zero tensor (itself an op whose backward is narrow).
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
/// Positions start, start + step, ... below end of `dim` (Python's x[start:end:step]; start and end are
/// clamped to the dim, negatives count from the end; step > 0).
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// broadcast_to(x, shape) where an entry -1 keeps x's size.
Tensor expand(const Tensor& x, const Shape& shape);
/// Rows of x selected by `indices` along the first dimension (a copy); backward scatters-adds.
Tensor index_select(const Tensor& x, const std::vector<std::int64_t>& indices);
/// Positions `index` (0-D or 1-D, repeats allowed) of `dim`. Backward: index_add into zeros.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
Tensor index_select(const Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& index);
/// x with src's slices added at positions `index` of `dim` (repeats add up). src has x's shape with
/// size(dim) = len(index). Backward: dy to x, index_select(dy, dim, index) to src.
Tensor index_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& index,
                 const Tensor& src);
/// y[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and likewise for any dim); y has index's shape, which has
/// x's rank and is no larger than x off `dim`. Backward: scatter_add into zeros.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
/// x with src[i][j][k] added at [index[i][j][k]][j][k] for dim 0 (likewise any dim); src has index's shape.
/// Backward: dy to x, gather(dy, dim, index) to src.
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
/// Joins tensors along `dim` (all other sizes equal). Backward: narrow(dy, dim, offset, size) for each.
Tensor cat(const Tensors& xs, std::int64_t dim = 0);
/// Joins tensors along the first dimension: cat(xs, 0).
Tensor concat(const Tensors& xs);
/// Joins tensors of one shape along a new dim: cat of unsqueeze(x, dim).
Tensor stack(const Tensors& xs, std::int64_t dim = 0);
/// Pieces of `split_size` along `dim` (the last may be smaller), or pieces of the given sizes.
Tensors split(const Tensor& x, std::int64_t split_size, std::int64_t dim = 0);
Tensors split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim = 0);
/// `chunks` pieces of ceil(size / chunks) along `dim` (fewer when the size runs out first).
Tensors chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim = 0);
/// The lower (tril) or upper (triu) triangle of the last two dims: entries with col - row <= k (tril) or
/// >= k (triu) kept, the rest 0. Backward: the same triangle of dy.
Tensor tril(const Tensor& x, std::int64_t k = 0);
Tensor triu(const Tensor& x, std::int64_t k = 0);

enum class PadMode { constant, reflect };
/// Pads the last pads.size() / 2 dims, in F.pad's order: (last dim before, last dim after, the dim before it
/// before, after, ...). constant fills with `value` (negative pads crop); reflect mirrors without repeating the
/// edge (each pad below the dim's size). Backward: dy's entries added back where they were read from.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode = PadMode::constant,
           double value = 0.0);

// ---- neural-network functions -----------------------------------------------------------------------------
/// exp(x) / sum(exp(x)) along `axis`, computed stably (max subtracted). d/dx = y (dy - sum(dy y)).
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
/// x - logsumexp(x) along `axis`, computed stably. d/dx = dy - softmax(x) sum(dy).
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
/// Rows of `weight` [V, D] looked up by `indices` (whole numbers in [0, V), any shape; read through one
/// helper, so integer index tensors work the same): the result has shape indices.shape() + [D]. Rows at
/// `padding_idx` (negative counts from V) get no gradient. d/dweight = index_add of dy's rows into zeros
/// [V, D] (itself an op, so create_graph works); indices get no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx = {});
/// One-hot encoding of integer class labels (given as a tensor of whole numbers) into [N, classes].
Tensor one_hot(const Tensor& labels, std::int64_t classes, DType dtype = f32);

// ---- convolution and pooling (NCHW) -----------------------------------------------------------------------
// Images are [N, C, H, W] (a 3-D [C, H, W] input is taken as a batch of one and returned without the batch
// dim), sequences for conv1d [N, C, L]. Sizes given as one number apply to both spatial dims. The output size
// along a dim of size H is floor((H + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (ceil for pooling
// with ceil_mode, where the last window must start inside the input or its left padding). Every backward is
// written in ops: the input gradient of a convolution is a transposed convolution of dy with the same weight,
// the weight gradient a correlation of the input with dy, so second derivatives work (docs/ops.md).

/// A spatial size or step: one number for both dims, or {h, w}.
struct Size2 {
  std::int64_t h = 0, w = 0;
  Size2(std::int64_t both) : h(both), w(both) {}  // NOLINT(google-explicit-constructor): PyTorch's int args
  Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
};

/// A convolution's padding: a number, {h, w}, "valid" (0) or "same" (the output keeps the input's size,
/// stride 1 only; an odd total pad puts the extra row or column at the bottom or right, as PyTorch does).
struct ConvPadding {
  Size2 size = 0;
  bool same = false;
  ConvPadding(std::int64_t both) : size(both) {}  // NOLINT(google-explicit-constructor)
  ConvPadding(std::int64_t h, std::int64_t w) : size(h, w) {}
  ConvPadding(Size2 s) : size(s) {}  // NOLINT(google-explicit-constructor)
  template <std::size_t N>
  ConvPadding(const char (&mode)[N]) : ConvPadding(std::string(mode)) {}  // NOLINT: "same" or "valid"
  explicit ConvPadding(const std::string& mode);
};

/// 2-D cross-correlation: input [N, C, H, W], weight [O, C / groups, kh, kw], bias [O] (or undefined) ->
/// [N, O, OH, OW]; y[n, o] = b[o] + sum over the c of o's group and the window of w[o, c] x[n, c] (shifted by
/// stride, spread by dilation, zero outside the padded input). groups = C gives a depthwise convolution.
/// d/dx = conv_transpose2d(dy, w), d/dw = the correlation of x with dy, d/db = sum of dy over N, H, W.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1,
              ConvPadding padding = 0, Size2 dilation = 1, std::int64_t groups = 1);
/// 1-D cross-correlation: input [N, C, L], weight [O, C / groups, k] -> [N, O, OL]; conv2d with H = 1.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, std::int64_t stride = 1,
              ConvPadding padding = 0, std::int64_t dilation = 1, std::int64_t groups = 1);
/// The adjoint of conv2d in its input ("deconvolution"): input [N, C, H, W], weight [C, O / groups, kh, kw]
/// -> [N, O, (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1, ...] (output_padding <
/// stride or dilation picks among the sizes that conv2d maps back to H). d/dx = conv2d(dy, w), d/dw = the
/// correlation of dy with x, d/db = sum of dy over N, H, W.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1,
                        Size2 padding = 0, Size2 output_padding = 0, std::int64_t groups = 1,
                        Size2 dilation = 1);
/// Largest value of each window (stride 0 means stride = kernel_size; padding <= kernel_size / 2 is filled
/// with -inf; a NaN counts as the largest) and its flat position h * W + w in the input plane, as f64
/// indices. d/dx puts dy at those positions (adding where windows overlap), an op whose backward gathers.
ValuesIndices max_pool2d_with_indices(const Tensor& input, Size2 kernel_size, Size2 stride = 0,
                                      Size2 padding = 0, Size2 dilation = 1, bool ceil_mode = false);
/// The values of max_pool2d_with_indices.
Tensor max_pool2d(const Tensor& input, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0,
                  Size2 dilation = 1, bool ceil_mode = false);
/// Mean of each window. With count_include_pad (PyTorch's default) the divisor counts the padded positions
/// inside the window (not those a ceil_mode window adds past the padding); without, only the input's.
/// d/dx spreads dy / divisor over each window: the adjoint pooling, an op whose backward is avg_pool2d.
Tensor avg_pool2d(const Tensor& input, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);
/// Mean over output_size windows: output row i averages input rows [floor(i H / OH), ceil((i + 1) H / OH)),
/// likewise for columns. Backward as avg_pool2d's.
Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size);

// ---- comparisons (not differentiable; return 0/1 masks of the inputs' dtype) ------------------------------
Tensor greater(const Tensor& a, double b);
Tensor equal(const Tensor& a, const Tensor& b);

// ---- comparisons and logic on any dtype (not differentiable; return bool_ tensors) -----------------------
// Tensor operands broadcast; operands of different dtypes are compared in f64 (i64 when neither is a float).
// A scalar is compared with each element converted to double. NaN compares unequal to everything.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
/// Element-wise logic; any dtype, read as x != 0 (as PyTorch's logical_* do).
Tensor logical_not(const Tensor& x);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
/// Number of elements that are not 0 (true for bool_).
std::int64_t count_nonzero(const Tensor& x);

// ---- operators --------------------------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator-(const Tensor& a) {
  return neg(a);
}
inline Tensor operator+(const Tensor& a, double b) {
  return add(a, b);
}
inline Tensor operator+(double a, const Tensor& b) {
  return add(b, a);
}
inline Tensor operator-(const Tensor& a, double b) {
  return add(a, -b);
}
inline Tensor operator-(double a, const Tensor& b) {
  return rsub(b, a);
}
inline Tensor operator*(const Tensor& a, double b) {
  return mul(a, b);
}
inline Tensor operator*(double a, const Tensor& b) {
  return mul(b, a);
}
inline Tensor operator/(const Tensor& a, double b) {
  return mul(a, 1.0 / b);
}
inline Tensor operator/(double a, const Tensor& b) {
  return rdiv(b, a);
}

}  // namespace backprop
