// One row per differentiable op. Inputs are kept away from the op's kinks (|x| at 0 for abs and relu, the
// bounds of clamp) so central differences do not straddle a corner; ops defined only for positive inputs draw
// from a positive range.
#include "ops/op_table.hpp"

#include <cmath>

namespace optest {

namespace {

using T = bp::Tensor;
using Ts = bp::Tensors;

InputSpec in(bp::Shape shape, double lo = -1.0, double hi = 1.0) {
  return {.shape = std::move(shape), .lo = lo, .hi = hi};
}
InputSpec away_from(bp::Shape shape, std::vector<double> kinks) {
  return {.shape = std::move(shape), .lo = -1.0, .hi = 1.0, .kinks = std::move(kinks)};
}

/// A fixed 0/1 mask for masked_scale, in the dtype of the tensor it is applied to.
T mask_like(const T& x) {
  std::vector<double> m(static_cast<std::size_t>(x.numel()));
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = (i * 7 + 3) % 5 < 3 ? 1.0 : 0.0;
  return bp::from_vector(m, x.shape(), x.dtype());
}

std::vector<OpCase> build() {
  std::vector<OpCase> t;
  auto add = [&t](OpCase c) { t.push_back(std::move(c)); };

  // ---- binary, broadcasting -------------------------------------------------------------------------------
  add({"add", [](const Ts& x) { return bp::add(x[0], x[1]); }, {in({2, 3}), in({2, 3})}});
  add({"add_bcast_3x1x4_2x1", [](const Ts& x) { return x[0] + x[1]; }, {in({3, 1, 4}), in({2, 1})}});
  add({"add_bcast_rank0", [](const Ts& x) { return x[0] + x[1]; }, {in({}), in({2, 3})}});
  add({"add_bcast_col_row", [](const Ts& x) { return x[0] + x[1]; }, {in({4, 1}), in({1, 3})}});
  add({"sub", [](const Ts& x) { return bp::sub(x[0], x[1]); }, {in({2, 3}), in({2, 3})}});
  add({"sub_bcast_row", [](const Ts& x) { return x[0] - x[1]; }, {in({2, 3}), in({3})}});
  add({"sub_bcast_rank0", [](const Ts& x) { return x[0] - x[1]; }, {in({2, 2}), in({})}});
  add({"mul", [](const Ts& x) { return bp::mul(x[0], x[1]); }, {in({2, 3}), in({2, 3})}});
  add({"mul_bcast_3x1x4_2x1", [](const Ts& x) { return x[0] * x[1]; }, {in({3, 1, 4}), in({2, 1})}});
  add({"mul_bcast_col_row", [](const Ts& x) { return x[0] * x[1]; }, {in({4, 1}), in({1, 3})}});
  add({"mul_bcast_rank0", [](const Ts& x) { return x[0] * x[1]; }, {in({}), in({3})}});
  add({"mul_same_tensor", [](const Ts& x) { return x[0] * x[0]; }, {in({5})}});
  add({"div", [](const Ts& x) { return bp::div(x[0], x[1]); }, {in({2, 3}), in({2, 3}, 0.5, 2.0)}});
  add({"div_bcast_3x1x4_2x1",
       [](const Ts& x) { return x[0] / x[1]; },
       {in({3, 1, 4}), in({2, 1}, 0.5, 2.0)}});
  add({"div_bcast_rank0", [](const Ts& x) { return x[0] / x[1]; }, {in({2, 3}), in({}, 0.5, 2.0)}});
  add({"maximum", [](const Ts& x) { return bp::maximum(x[0], x[1]); }, {in({3, 4}), in({3, 4})}});
  add({"maximum_bcast", [](const Ts& x) { return bp::maximum(x[0], x[1]); }, {in({3, 1}), in({1, 4})}});

  // ---- with a scalar --------------------------------------------------------------------------------------
  add({"add_scalar", [](const Ts& x) { return bp::add(x[0], 1.5); }, {in({2, 3})}});
  add({"mul_scalar", [](const Ts& x) { return bp::mul(x[0], -2.5); }, {in({2, 3})}});
  add({"rsub_scalar", [](const Ts& x) { return 2.0 - x[0]; }, {in({2, 3})}});
  add({"rdiv_scalar", [](const Ts& x) { return 3.0 / x[0]; }, {in({2, 3}, 0.5, 2.0)}});
  add({"div_by_scalar", [](const Ts& x) { return x[0] / 4.0; }, {in({2, 3})}});
  add({"sub_scalar", [](const Ts& x) { return x[0] - 0.5; }, {in({2, 3})}});

  // ---- unary ----------------------------------------------------------------------------------------------
  add({"neg", [](const Ts& x) { return -x[0]; }, {in({2, 3})}});
  add({"exp", [](const Ts& x) { return bp::exp(x[0]); }, {in({2, 3})}});
  add({"log", [](const Ts& x) { return bp::log(x[0]); }, {in({2, 3}, 0.2, 2.0)}});
  add({"pow_3", [](const Ts& x) { return bp::pow(x[0], 3.0); }, {in({2, 3})}});
  add({"pow_2", [](const Ts& x) { return bp::pow(x[0], 2.0); }, {in({2, 3})}});
  add({"pow_1", [](const Ts& x) { return bp::pow(x[0], 1.0); }, {in({2, 3})}});
  add({"pow_half", [](const Ts& x) { return bp::pow(x[0], 0.5); }, {in({2, 3}, 0.2, 2.0)}});
  add({"pow_neg_1_5", [](const Ts& x) { return bp::pow(x[0], -1.5); }, {in({2, 3}, 0.3, 2.0)}});
  add({"sqrt", [](const Ts& x) { return bp::sqrt(x[0]); }, {in({2, 3}, 0.2, 2.0)}});
  add({"abs", [](const Ts& x) { return bp::abs(x[0]); }, {away_from({2, 3}, {0.0})}});
  add({"mul_sign", [](const Ts& x) { return x[0] * bp::sign(x[0]); }, {away_from({2, 3}, {0.0})}});
  add({"clamp", [](const Ts& x) { return bp::clamp(x[0], -0.5, 0.5); }, {away_from({3, 4}, {-0.5, 0.5})}});
  add({"sigmoid", [](const Ts& x) { return bp::sigmoid(x[0]); }, {in({2, 3}, -3.0, 3.0)}});
  add({"tanh", [](const Ts& x) { return bp::tanh(x[0]); }, {in({2, 3}, -2.0, 2.0)}});
  add({"relu", [](const Ts& x) { return bp::relu(x[0]); }, {away_from({3, 4}, {0.0})}});
  add({"leaky_relu", [](const Ts& x) { return bp::leaky_relu(x[0], 0.1); }, {away_from({3, 4}, {0.0})}});
  add({"masked_scale",
       [](const Ts& x) { return bp::masked_scale(x[0], mask_like(x[0]), 1.25); },
       {in({3, 4})}});

  // ---- reductions -----------------------------------------------------------------------------------------
  add({"sum", [](const Ts& x) { return bp::sum(x[0]); }, {in({3, 4})}});
  add({"sum_axis0", [](const Ts& x) { return bp::sum(x[0], 0); }, {in({3, 4})}});
  add({"sum_axis_last_keepdim", [](const Ts& x) { return bp::sum(x[0], -1, true); }, {in({2, 3, 4})}});
  add({"sum_axis1_of_3d", [](const Ts& x) { return bp::sum(x[0], 1); }, {in({2, 3, 4})}});
  add({"mean", [](const Ts& x) { return bp::mean(x[0]); }, {in({3, 4})}});
  add({"mean_axis1", [](const Ts& x) { return bp::mean(x[0], 1); }, {in({3, 4})}});
  add({"mean_axis0_keepdim", [](const Ts& x) { return bp::mean(x[0], 0, true); }, {in({3, 4})}});
  add({"max_axis1", [](const Ts& x) { return bp::max(x[0], 1); }, {in({3, 4})}});
  add({"max_axis0_keepdim", [](const Ts& x) { return bp::max(x[0], 0, true); }, {in({3, 4})}});
  add({"max_axis1_of_3d", [](const Ts& x) { return bp::max(x[0], 1); }, {in({2, 3, 4})}});
  add({"sum_to", [](const Ts& x) { return bp::sum_to(x[0], {3, 1}); }, {in({2, 3, 4})}});
  add({"sum_to_scalar", [](const Ts& x) { return bp::sum_to(x[0], {}); }, {in({2, 3})}});
  add({"broadcast_to", [](const Ts& x) { return bp::broadcast_to(x[0], {2, 3, 4}); }, {in({3, 1})}});
  add({"broadcast_to_from_rank0", [](const Ts& x) { return bp::broadcast_to(x[0], {2, 3}); }, {in({})}});
  add({"tensor_sum_method", [](const Ts& x) { return x[0].sum(); }, {in({2, 3})}});
  add({"tensor_mean_method", [](const Ts& x) { return x[0].mean(); }, {in({2, 3})}});

  // ---- linear algebra -------------------------------------------------------------------------------------
  add({"matmul", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({3, 4}), in({4, 2})}});
  add({"mm_nn", [](const Ts& x) { return bp::mm(x[0], x[1], false, false); }, {in({3, 4}), in({4, 2})}});
  add({"mm_tn", [](const Ts& x) { return bp::mm(x[0], x[1], true, false); }, {in({4, 3}), in({4, 2})}});
  add({"mm_nt", [](const Ts& x) { return bp::mm(x[0], x[1], false, true); }, {in({3, 4}), in({2, 4})}});
  add({"mm_tt", [](const Ts& x) { return bp::mm(x[0], x[1], true, true); }, {in({4, 3}), in({2, 4})}});
  add({"matmul_batched", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({2, 3, 4}), in({2, 4, 2})}});
  add({"mm_batched_tn",
       [](const Ts& x) { return bp::mm(x[0], x[1], true, false); },
       {in({2, 4, 3}), in({2, 4, 2})}});
  add({"mm_batched_nt",
       [](const Ts& x) { return bp::mm(x[0], x[1], false, true); },
       {in({2, 3, 4}), in({2, 2, 4})}});
  add({"mm_batched_tt",
       [](const Ts& x) { return bp::mm(x[0], x[1], true, true); },
       {in({2, 4, 3}), in({2, 2, 4})}});
  add({"linear",
       [](const Ts& x) { return bp::linear(x[0], x[1], x[2]); },
       {in({4, 3}), in({2, 3}), in({2})}});
  add({"linear_no_bias", [](const Ts& x) { return bp::linear(x[0], x[1]); }, {in({4, 3}), in({2, 3})}});
  add({"linear_constant_input",
       [](const Ts& x) { return bp::linear(x[0], x[1], x[2]); },
       {{.shape = {4, 3}, .requires_grad = false}, in({2, 3}), in({2})}});
  add({"transpose", [](const Ts& x) { return bp::transpose(x[0]); }, {in({3, 4})}});
  add({"tensor_t_method", [](const Ts& x) { return x[0].t(); }, {in({2, 5})}});

  // ---- shape ----------------------------------------------------------------------------------------------
  add({"reshape", [](const Ts& x) { return bp::reshape(x[0], {3, -1}); }, {in({2, 6})}});
  add({"tensor_view_method", [](const Ts& x) { return x[0].view({-1}); }, {in({2, 3})}});
  add({"to_dtype_round_trip",
       [](const Ts& x) { return bp::to_dtype(bp::to_dtype(x[0], bp::f32) * 3.0, bp::f64); },
       {in({2, 3})},
       /*tol=*/1e-3,
       /*eps=*/1e-3});
  add({"tensor_to_method",
       [](const Ts& x) { return x[0].to(bp::f32).to(bp::f64); },
       {in({4})},
       /*tol=*/1e-3,
       /*eps=*/1e-3});
  add({"clone", [](const Ts& x) { return x[0].clone() * x[0]; }, {in({2, 3})}});
  add({"narrow", [](const Ts& x) { return bp::narrow(x[0], 1, 2); }, {in({4, 3})}});
  add({"narrow_3d", [](const Ts& x) { return bp::narrow(x[0], 0, 1); }, {in({2, 2, 3})}});
  add({"index_select_repeats",
       [](const Ts& x) {
         return bp::index_select(x[0], {2, 0, 2, 3});
       },
       {in({4, 3})}});
  add({"concat",
       [](const Ts& x) {
         return bp::concat({x[0], x[1], x[2]});
       },
       {in({2, 3}), in({1, 3}), in({3, 3})}});
  add({"concat_partly_constant",
       [](const Ts& x) {
         return bp::concat({x[0], x[1]});
       },
       {in({2, 2}), {.shape = {1, 2}, .requires_grad = false}}});

  // ---- neural-network functions ---------------------------------------------------------------------------
  add({"softmax_last", [](const Ts& x) { return bp::softmax(x[0], -1); }, {in({3, 4}, -2.0, 2.0)}});
  add({"softmax_axis0", [](const Ts& x) { return bp::softmax(x[0], 0); }, {in({3, 4}, -2.0, 2.0)}});
  add({"softmax_middle_of_3d", [](const Ts& x) { return bp::softmax(x[0], 1); }, {in({2, 3, 2}, -2.0, 2.0)}});
  add({"log_softmax_last", [](const Ts& x) { return bp::log_softmax(x[0], -1); }, {in({3, 4}, -2.0, 2.0)}});
  add({"log_softmax_axis0", [](const Ts& x) { return bp::log_softmax(x[0], 0); }, {in({3, 4}, -2.0, 2.0)}});

  // ---- compositions the engine must get right: shared subexpressions, a dense layer and its cost ----------
  add({"dense_sigmoid_mse",
       [](const Ts& x) {
         const T a = bp::sigmoid(bp::linear(x[0], x[1], x[2]));
         return bp::mean(bp::pow(a - x[3], 2.0)) * 0.5;
       },
       {in({4, 3}), in({2, 3}), in({2}), {.shape = {4, 2}, .lo = 0.0, .hi = 1.0, .requires_grad = false}}});
  add({"cross_entropy",
       [](const Ts& x) {
         const T onehot = bp::one_hot(bp::tensor({2, 0, 1}), 4, x[0].dtype());
         return bp::mean(-bp::sum(onehot * bp::log_softmax(x[0], 1), 1));
       },
       {in({3, 4}, -2.0, 2.0)}});
  add({"shared_subexpression",
       [](const Ts& x) {
         const T h = bp::tanh(x[0]);
         return h * bp::exp(h) + h;  // h reaches the output along three paths
       },
       {in({2, 3})}});

  // ---- reductions over a set of dims, max/min/topk on any dim, softmax on any dim -------------------------
  add({"sum_dims_0_2", [](const Ts& x) { return bp::sum(x[0], bp::Dims{0, 2}); }, {in({2, 3, 4})}});
  add({"sum_dims_neg_keepdim", [](const Ts& x) { return bp::sum(x[0], {-1, 1}, true); }, {in({2, 3, 4})}});
  add({"sum_dims_all", [](const Ts& x) { return bp::sum(x[0], bp::Dims{}, true); }, {in({2, 3})}});
  add({"mean_dims_1_2", [](const Ts& x) { return bp::mean(x[0], bp::Dims{1, 2}); }, {in({2, 3, 4})}});
  add({"amax_dims_0_2", [](const Ts& x) { return bp::amax(x[0], {0, 2}); }, {in({2, 3, 4})}});
  add({"amax_all", [](const Ts& x) { return bp::amax(x[0]); }, {in({3, 4})}});
  add({"amin_dim1_keepdim", [](const Ts& x) { return bp::amin(x[0], {1}, true); }, {in({2, 3, 4})}});
  add({"logsumexp_dim1", [](const Ts& x) { return bp::logsumexp(x[0], {1}); }, {in({3, 4}, -2.0, 2.0)}});
  add({"logsumexp_dims_0_2_keepdim",
       [](const Ts& x) {
         return bp::logsumexp(x[0], {0, 2}, true);
       },
       {in({2, 3, 4}, -2.0, 2.0)}});
  add({"var_dim0", [](const Ts& x) { return bp::var(x[0], {0}); }, {in({4, 3})}});
  add({"var_all_population", [](const Ts& x) { return bp::var(x[0], {}, 0.0); }, {in({2, 3})}});
  add({"std_dims_1_2_keepdim",
       [](const Ts& x) {
         return bp::std(x[0], {1, 2}, 1.0, true);
       },
       {in({2, 3, 4})}});
  add({"norm_2_all", [](const Ts& x) { return bp::norm(x[0]); }, {in({3, 4})}});
  add({"norm_2_dim1", [](const Ts& x) { return bp::norm(x[0], 2, {-1}); }, {in({3, 4})}});
  add({"norm_1_dim0", [](const Ts& x) { return bp::norm(x[0], 1, {0}); }, {away_from({3, 4}, {0.0})}});
  add({"norm_inf_dims_0_2",
       [](const Ts& x) {
         return bp::norm(x[0], INFINITY, {0, 2});
       },
       {away_from({2, 3, 4}, {0.0})}});
  add({"norm_3_dim1", [](const Ts& x) { return bp::norm(x[0], 3, {1}); }, {away_from({3, 4}, {0.0})}});
  add({"max_with_indices_dim0",
       [](const Ts& x) { return bp::max_with_indices(x[0], 0).values; },
       {in({3, 4})}});
  add({"max_with_indices_middle_keepdim",
       [](const Ts& x) { return bp::max_with_indices(x[0], 1, true).values; },
       {in({2, 3, 4})}});
  add({"min_dim_last", [](const Ts& x) { return bp::min(x[0], -1); }, {in({2, 3, 4})}});
  add({"min_with_indices_dim0",
       [](const Ts& x) { return bp::min_with_indices(x[0], 0).values; },
       {in({3, 4})}});
  add({"topk_last", [](const Ts& x) { return bp::topk(x[0], 2).values; }, {in({3, 5})}});
  add({"topk_dim0_smallest", [](const Ts& x) { return bp::topk(x[0], 2, 0, false).values; }, {in({4, 3})}});
  add({"topk_middle_unsorted",
       [](const Ts& x) { return bp::topk(x[0], 3, 1, true, false).values; },
       {in({2, 4, 3})}});
  add({"softmax_first_of_4d",
       [](const Ts& x) { return bp::softmax(x[0], 0); },
       {in({3, 2, 2, 2}, -2.0, 2.0)}});
  add({"log_softmax_middle_of_3d",
       [](const Ts& x) { return bp::log_softmax(x[0], 1); },
       {in({2, 4, 3}, -2.0, 2.0)}});
  // ---- shape and indexing ops on any dim (index tensors hold whole numbers, built in the input's dtype) -------
  const auto idx = [](std::vector<double> v, bp::Shape s, const T& like) {
    return bp::from_vector(v, s, like.dtype());
  };
  add({"permute_4d", [](const Ts& x) { return bp::permute(x[0], {2, 0, 3, 1}); }, {in({2, 3, 2, 2})}});
  add({"transpose_dims", [](const Ts& x) { return bp::transpose(x[0], 0, -1); }, {in({2, 3, 4})}});
  add({"squeeze_unsqueeze",
       [](const Ts& x) { return bp::unsqueeze(bp::squeeze(x[0]), -1) * bp::squeeze(x[0], 1).sum(); },
       {in({2, 1, 3})}});
  add({"flatten_unflatten",
       [](const Ts& x) {
         return bp::unflatten(bp::flatten(x[0], 1, 2), 1, {3, -1}) * x[0];
       },
       {in({2, 3, 2, 2})}});
  add({"narrow_dim", [](const Ts& x) { return bp::narrow(x[0], -1, 1, 2); }, {in({2, 3, 4})}});
  add({"slice_step", [](const Ts& x) { return bp::slice(x[0], 1, 0, 5, 2); }, {in({2, 5, 2})}});
  add({"expand", [](const Ts& x) { return bp::expand(x[0], {2, -1, 3}); }, {in({4, 1})}});
  add({"cat_dim1", [](const Ts& x) { return bp::cat({x[0], x[1]}, 1); }, {in({2, 1, 3}), in({2, 2, 3})}});
  add({"stack_last",
       [](const Ts& x) {
         return bp::stack({x[0], x[1], x[0]}, -1);
       },
       {in({2, 3}), in({2, 3})}});
  add({"split_chunk",
       [](const Ts& x) {
         const Ts a = bp::split(x[0], 2, 1), b = bp::chunk(x[0], 2, 0);
         return bp::cat({a[1] * a[0], bp::cat({b[1], b[0]}, 0)}, 1);  // [4, 2] beside [4, 3]
       },
       {in({4, 3})}});
  add({"split_sizes", [](const Ts& x) { return bp::split(x[0], {1, 3}, -1)[1] * 2.0; }, {in({2, 4})}});
  add({"index_select_dim1",
       [idx](const Ts& x) {
         return bp::index_select(x[0], 1, idx({3, 0, 3}, {3}, x[0]));
       },
       {in({2, 4, 2})}});
  add({"index_add_dim1",
       [idx](const Ts& x) {
         return bp::index_add(x[0], 1, idx({2, 0, 2}, {3}, x[0]), x[1]);
       },
       {in({2, 4}), in({2, 3})}});
  add({"gather_dim1",
       [idx](const Ts& x) {
         return bp::gather(x[0], 1, idx({0, 2, 2, 1, 1, 0}, {2, 3}, x[0]));
       },
       {in({2, 3})}});
  add({"gather_dim0_squared",
       [idx](const Ts& x) {
         return bp::pow(bp::gather(x[0], 0, idx({1, 0, 1, 1}, {2, 2}, x[0])), 2.0);
       },
       {in({2, 3})}});
  add({"scatter_add_dim1",
       [idx](const Ts& x) {
         return bp::scatter_add(x[0], 1, idx({0, 2, 2, 1}, {2, 2}, x[0]), x[1]);
       },
       {in({2, 3}), in({2, 2})}});
  add({"scatter_add_times_src",
       [idx](const Ts& x) {
         return bp::scatter_add(x[0], 0, idx({1, 0, 1}, {1, 3}, x[0]), x[1]) * x[0];
       },
       {in({2, 3}), in({1, 3})}});
  add({"tril", [](const Ts& x) { return bp::tril(x[0], 0); }, {in({2, 3, 4})}});
  add({"triu_k1", [](const Ts& x) { return bp::triu(x[0], 1); }, {in({3, 4})}});
  add({"pad_constant",
       [](const Ts& x) {
         return bp::pad(x[0], {1, 2, 0, 1}, bp::PadMode::constant, 0.5);
       },
       {in({2, 2, 3})}});
  add({"pad_reflect",
       [](const Ts& x) {
         return bp::pad(x[0], {2, 1, 1, 1}, bp::PadMode::reflect);
       },
       {in({1, 3, 4})}});
  add({"pad_crop", [](const Ts& x) { return bp::pad(x[0], {-1, 1}); }, {in({2, 3})}});
  // Convolution and pooling: every option on small shapes (gradgradcheck covers the transposed convolution
  // and the weight correlation that the first backward records).
  add({"conv2d_bias",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], x[2]); },
       {in({2, 2, 4, 4}), in({3, 2, 3, 3}), in({3})}});
  add({"conv2d_stride2_pad1",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], x[2], 2, 1); },
       {in({1, 2, 5, 4}), in({2, 2, 3, 3}), in({2})}});
  add({"conv2d_dilation2_asym",
       [](const Ts& x) {
         return bp::conv2d(x[0], x[1], {}, {1, 2}, {2, 1}, 2);
       },
       {in({1, 1, 6, 6}), in({2, 1, 2, 3})}});
  add({"conv2d_groups2",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], x[2], 1, 1, 1, 2); },
       {in({1, 4, 3, 3}), in({4, 2, 3, 3}), in({4})}});
  add({"conv2d_depthwise",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], {}, 2, 1, 1, 3); },
       {in({2, 3, 4, 4}), in({3, 1, 3, 3})}});
  add({"conv2d_same_even_kernel",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], {}, 1, "same"); },
       {in({1, 2, 4, 3}), in({2, 2, 2, 2})}});
  add({"conv2d_pointwise",
       [](const Ts& x) { return bp::conv2d(x[0], x[1], x[2]); },
       {in({2, 3, 2, 3}), in({2, 3, 1, 1}), in({2})}});
  add({"conv2d_squared",
       [](const Ts& x) { return bp::pow(bp::conv2d(x[0], x[1], {}, 1, 1), 2.0); },
       {in({1, 2, 3, 3}), in({2, 2, 3, 3})}});
  add({"conv1d_stride2_pad1",
       [](const Ts& x) { return bp::conv1d(x[0], x[1], x[2], 2, 1); },
       {in({2, 2, 6}), in({3, 2, 3}), in({3})}});
  add({"conv_transpose2d_stride2",
       [](const Ts& x) { return bp::conv_transpose2d(x[0], x[1], x[2], 2, 1, 1); },
       {in({1, 2, 3, 3}), in({2, 3, 3, 3}), in({3})}});
  add({"conv_transpose2d_groups_dilation",
       [](const Ts& x) {
         return bp::conv_transpose2d(x[0], x[1], {}, {1, 2}, {0, 1}, {0, 1}, 2, {2, 1});
       },
       {in({1, 4, 3, 2}), in({4, 1, 2, 3})}});
  add({"max_pool2d_2x2", [](const Ts& x) { return bp::max_pool2d(x[0], 2); }, {in({2, 2, 4, 4})}});
  add({"max_pool2d_pad_ceil_squared",
       [](const Ts& x) { return bp::pow(bp::max_pool2d(x[0], 3, 2, 1, 1, true), 2.0); },
       {in({1, 2, 5, 5})}});
  add({"max_pool2d_dilation",
       [](const Ts& x) {
         return bp::max_pool2d(x[0], {2, 3}, {1, 2}, 0, {2, 1});
       },
       {in({1, 1, 6, 6})}});
  add({"avg_pool2d_2x2", [](const Ts& x) { return bp::avg_pool2d(x[0], 2); }, {in({2, 2, 4, 4})}});
  add({"avg_pool2d_pad_ceil_squared",
       [](const Ts& x) { return bp::pow(bp::avg_pool2d(x[0], 3, 2, 1, true), 2.0); },
       {in({1, 2, 5, 5})}});
  add({"avg_pool2d_exclude_pad",
       [](const Ts& x) {
         return bp::avg_pool2d(x[0], {3, 2}, {1, 2}, 1, false, false);
       },
       {in({1, 1, 5, 6})}});
  add({"adaptive_avg_pool2d_3x2",
       [](const Ts& x) {
         return bp::pow(bp::adaptive_avg_pool2d(x[0], {3, 2}), 2.0);
       },
       {in({2, 2, 5, 7})}});

  // ---- where, masked_fill, clamp with tensor bounds, broadcasting matmul, bmm, einsum ---------------------
  // A fixed condition in the inputs' dtype; 0/1 values and one other non-zero value (which counts as true).
  const auto cond = [](bp::Shape s, const T& like) {
    std::vector<double> v(static_cast<std::size_t>(bp::numel(s)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 3 == 0 ? 0.0 : (i % 3 == 1 ? 1.0 : -2.5);
    return bp::from_vector(v, s, like.dtype());
  };
  const std::vector<double> bounds = {-0.3, -0.25, -0.2, 0.2, 0.25, 0.3};  // the bounds' ranges below
  add({"where_bcast",
       [cond](const Ts& x) {
         return bp::where(cond({3, 1}, x[0]), x[0], x[1]) * x[0];
       },
       {in({3, 4}), in({4})}});
  add({"where_cond_full",
       [cond](const Ts& x) {
         return bp::where(cond({2, 3}, x[0]), x[0], x[1]);
       },
       {in({2, 3}), in({})}});
  add({"masked_fill",
       [cond](const Ts& x) {
         return bp::masked_fill(x[0], cond({1, 4}, x[0]), -2.0) * x[0];
       },
       {in({3, 4})}});
  add({"masked_fill_tensor_value",
       [cond](const Ts& x) {
         return bp::masked_fill(x[0], cond({2, 1, 3}, x[0]), x[1]);
       },
       {in({2, 2, 3}), in({})}});
  add({"clamp_tensor_bounds",
       [](const Ts& x) { return bp::clamp(x[0], x[1], x[2]); },
       {away_from({3, 4}, bounds), in({4}, -0.3, -0.2), in({3, 1}, 0.2, 0.3)}});
  add({"clamp_tensor_min_only",
       [](const Ts& x) { return bp::clamp(x[0], x[1], T()) * x[0]; },
       {away_from({2, 3}, bounds), in({3}, -0.3, -0.2)}});
  add({"clamp_tensor_max_only",
       [](const Ts& x) { return bp::clamp(x[0], T(), x[1]); },
       {away_from({2, 3}, bounds), in({2, 1}, 0.2, 0.3)}});
  add({"clamp_tensor_min_above_max",
       [](const Ts& x) { return bp::clamp(x[0], x[1], x[2]); },
       {in({2, 3}), in({3}, 0.5, 0.7), in({}, -0.2, 0.0)}});
  add({"matmul_bcast_batch",
       [](const Ts& x) { return bp::matmul(x[0], x[1]); },
       {in({2, 1, 3, 4}), in({3, 4, 2})}});
  add({"matmul_3d_2d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({2, 3, 4}), in({4, 2})}});
  add({"matmul_2d_3d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({3, 4}), in({2, 4, 2})}});
  add({"matmul_1d_1d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({4}), in({4})}});
  add({"matmul_1d_2d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({4}), in({4, 3})}});
  add({"matmul_2d_1d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({3, 4}), in({4})}});
  add({"matmul_1d_3d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({4}), in({2, 4, 3})}});
  add({"matmul_4d_1d", [](const Ts& x) { return bp::matmul(x[0], x[1]); }, {in({2, 1, 3, 4}), in({4})}});
  add({"bmm", [](const Ts& x) { return bp::bmm(x[0], x[1]); }, {in({2, 3, 4}), in({2, 4, 2})}});
  add({"einsum_bmm",
       [](const Ts& x) {
         return bp::einsum("bij,bjk->bik", {x[0], x[1]});
       },
       {in({2, 3, 4}), in({2, 4, 2})}});
  add({"einsum_attention_scores",
       [](const Ts& x) {
         return bp::einsum("bhqd,bhkd->bhqk", {x[0], x[1]});
       },
       {in({2, 2, 3, 4}), in({2, 2, 2, 4})}});
  add({"einsum_attention_values",
       [](const Ts& x) {
         return bp::einsum("bhqk,bhkd->bhqd", {x[0], x[1]});
       },
       {in({2, 2, 3, 2}), in({2, 2, 2, 4})}});
  add({"einsum_bilinear",
       [](const Ts& x) {
         return bp::einsum("bi,ij,bj->b", {x[0], x[1], x[2]});
       },
       {in({3, 4}), in({4, 2}), in({3, 2})}});
  add({"einsum_transpose", [](const Ts& x) { return bp::einsum("ij->ji", {x[0]}) * 2.0; }, {in({2, 3})}});
  add({"einsum_ellipsis_bcast",
       [](const Ts& x) {
         return bp::einsum("...ij,...jk->...ik", {x[0], x[1]});
       },
       {in({2, 1, 3, 4}), in({3, 4, 2})}});
  add({"einsum_implicit_and_sum",
       [](const Ts& x) {
         return bp::einsum("ij,jk", {x[0], x[1]}) * bp::einsum("ij->i", {x[0]}).sum();
       },
       {in({3, 4}), in({4, 2})}});
  add({"einsum_outer_times_dot",
       [](const Ts& x) {
         return bp::einsum("i,j->ij", {x[0], x[1]}) * bp::einsum("i,i->", {x[0], x[0]});
       },
       {in({3}), in({2})}});
  // ---- views: chains of them, and ops reading a view --------------------------------------------------------
  add({"view_transpose_narrow_expand",
       [](const Ts& x) {
         return bp::expand(bp::narrow(bp::transpose(x[0], 0, 1), 0, 1, 2), {3, 2, 2});
       },
       {in({2, 4})}});
  add({"view_slice_permute_reshape",  // reshape of a non-contiguous view: a copy
       [](const Ts& x) {
         return bp::reshape(bp::permute(bp::slice(x[0], 2, 0, 4, 2), {2, 0, 1}), {4, -1});
       },
       {in({2, 3, 4})}});
  add({"view_of_permuted_split_dim",  // view merging dims that stay contiguous under the permute
       [](const Ts& x) {
         return bp::view(bp::permute(x[0], {2, 0, 1}), {2, 2, 6}) * 2.0;
       },
       {in({2, 3, 4})}});
  add({"contiguous_of_transpose",
       [](const Ts& x) { return x[0].t().contiguous() * x[0].t(); },
       {in({3, 2})}});
  add({"matmul_transposed_views",
       [](const Ts& x) { return bp::matmul(x[0].t(), x[1].t()); },
       {in({3, 2}), in({4, 3})}});
  add({"unary_binary_on_views",
       [](const Ts& x) { return bp::exp(bp::transpose(x[0], 0, 1)) * bp::slice(x[1], 0, 0, 4, 2); },
       {in({3, 2}), in({4, 3})}});
  add({"sum_dim_of_permuted",
       [](const Ts& x) {
         return bp::sum(bp::permute(x[0], {1, 2, 0}), {0, 2});
       },
       {in({2, 3, 4})}});
  add({"squeeze_unsqueeze_of_expand",
       [](const Ts& x) {
         return bp::unsqueeze(bp::squeeze(bp::expand(x[0], {3, 1, 4}), 1), 0) * 1.5;
       },
       {in({1, 1, 4})}});
  // embedding: squared so the second derivative is not zero; a repeated index sums its rows' gradients.
  add({"embedding_i64_indices",
       [](const Ts& x) {
         return bp::pow(bp::embedding(bp::tensor({{2, 0, 3}, {3, 3, 1}}, bp::i64), x[0]), 2.0);
       },
       {in({4, 3})}});
  // padding_idx -1 names the last row, a constant here (its gradient is zero by definition, not by
  // derivative, so it takes no part in gradcheck); the other rows' gradients are unaffected.
  add({"embedding_padding_idx",
       [](const Ts& x) {
         const T weight = bp::cat({x[0], bp::full({1, 2}, 0.5, x[0].dtype())}, 0);
         return bp::embedding(bp::tensor({1, 3, 0, 3, 1}, bp::i64), weight, -1) * x[0].sum();
       },
       {in({3, 2})}});
  return t;
}

}  // namespace

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = build();
  return table;
}

bp::Tensors make_inputs(const OpCase& c, bp::DType dtype, bp::Generator& gen) {
  bp::Tensors xs;
  for (const InputSpec& s : c.inputs) {
    std::vector<double> v(static_cast<std::size_t>(bp::numel(s.shape)));
    for (double& e : v) {
      auto near_kink = [&](double x) {
        for (double k : s.kinks)
          if (std::abs(x - k) < 0.05) return true;
        return false;
      };
      do e = gen.uniform(s.lo, s.hi);
      while (near_kink(e));
    }
    bp::Tensor x = bp::from_vector(v, s.shape, dtype);
    if (s.shape.empty()) x = x.reshape({});  // from_vector treats an empty shape as 1-D
    if (s.requires_grad) x.requires_grad_();
    xs.push_back(x);
  }
  return xs;
}

}  // namespace optest
