// bench_micro — Google Benchmark micro-benchmarks: what one op costs on tiny tensors (per-op overhead:
// checks, allocation, graph recording), kernel throughput on large ones, and the backward cost per recorded
// node.
//
//   build/release/bench/bench_micro                                  # everything
//   build/release/bench/bench_micro --benchmark_filter='Tiny'        # per-op overhead only
//
// Items/s on the throughput benchmarks are elements (element-wise) or FLOPs (matmul) per second.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <cstring>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/kernels.hpp"
#include "kernels/row_pool.hpp"
#include "kernels/sgemm_own.hpp"

namespace bp = backprop;

namespace {

// ---- per-op overhead on 1-element tensors, with and without graph recording -------------------------------

template <class Op>
void tiny(benchmark::State& state, Op op, bool record) {
  bp::set_num_threads(1);
  bp::Tensor a = bp::full({1}, 0.5), b = bp::full({1}, 0.25);
  if (record) a.requires_grad_();
  for (auto _ : state) {
    bp::Tensor y = op(a, b);
    benchmark::DoNotOptimize(y.raw_data());
  }
}

void BM_TinyAdd(benchmark::State& s) {
  tiny(
      s, [](auto& a, auto& b) { return a + b; }, s.range(0));
}
void BM_TinyMul(benchmark::State& s) {
  tiny(
      s, [](auto& a, auto& b) { return a * b; }, s.range(0));
}
void BM_TinyRelu(benchmark::State& s) {
  tiny(
      s, [](auto& a, auto&) { return bp::relu(a); }, s.range(0));
}
void BM_TinySigmoid(benchmark::State& s) {
  tiny(
      s, [](auto& a, auto&) { return bp::sigmoid(a); }, s.range(0));
}
void BM_TinyMatmul1x1(benchmark::State& s) {
  tiny(
      s,
      [](auto& a, auto& b) {
        return bp::matmul(a.reshape({1, 1}), b.reshape({1, 1}));
      },
      s.range(0));
}
BENCHMARK(BM_TinyAdd)->ArgName("grad")->Arg(0)->Arg(1);
BENCHMARK(BM_TinyMul)->ArgName("grad")->Arg(0)->Arg(1);
BENCHMARK(BM_TinyRelu)->ArgName("grad")->Arg(0)->Arg(1);
BENCHMARK(BM_TinySigmoid)->ArgName("grad")->Arg(0)->Arg(1);
BENCHMARK(BM_TinyMatmul1x1)->ArgName("grad")->Arg(0)->Arg(1);

// A tensor allocation alone (caching allocator hit).
void BM_TinyEmpty(benchmark::State& state) {
  for (auto _ : state) {
    bp::Tensor t({1}, bp::f32);
    benchmark::DoNotOptimize(t.raw_data());
  }
}
BENCHMARK(BM_TinyEmpty);

// ---- backward overhead per node: a chain of n tiny adds, then backward() ----------------------------------

void BM_BackwardChain(benchmark::State& state) {
  bp::set_num_threads(1);
  const std::int64_t n = state.range(0);
  bp::Tensor w = bp::full({1}, 0.5).requires_grad_();
  const bp::Tensor c = bp::full({1}, 1e-3);
  for (auto _ : state) {
    state.PauseTiming();
    bp::Tensor y = w;
    for (std::int64_t i = 0; i < n; ++i) y = y + c;
    w.zero_grad();
    state.ResumeTiming();
    y.backward();
  }
  state.SetItemsProcessed(state.iterations() * n);  // items/s = nodes per second
}
BENCHMARK(BM_BackwardChain)->Arg(100)->Arg(1000);

// ---- kernel throughput ------------------------------------------------------------------------------------

void BM_AddThroughput(benchmark::State& state) {
  bp::set_num_threads(static_cast<int>(state.range(1)));
  bp::Generator gen(1);
  const bp::Tensor a = bp::rand({state.range(0)}, gen), b = bp::rand({state.range(0)}, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = a + b;
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) * 12);
}
BENCHMARK(BM_AddThroughput)
    ->ArgNames({"n", "threads"})
    ->Args({1 << 12, 1})
    ->Args({1 << 16, 1})
    ->Args({1 << 16, 2})
    ->Args({1 << 18, 1})
    ->Args({1 << 18, 2})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2})
    ->UseRealTime();

void BM_ReluThroughput(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor a = bp::randn({state.range(0)}, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::relu(a);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ReluThroughput)->Arg(1 << 12)->Arg(1 << 20);

// permute(...).contiguous() of a 4-D tensor (permute is a view; contiguous() makes the copy) against a plain
// copy of the same bytes (clone), in one run: bytes/s counts each element read once and written once. Arg 0:
// NCHW -> NHWC (the input's last dim moves inward: tiled transposes); arg 1: [N, C, H, W] -> [C, N, H, W]
// (whole rows).
void BM_Permute4d(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({32, 64, 28, 28}, gen);
  const std::vector<std::int64_t> dims =
      state.range(0) == 0 ? std::vector<std::int64_t>{0, 2, 3, 1} : std::vector<std::int64_t>{1, 0, 2, 3};
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::permute(x, dims).contiguous();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_Permute4d)->ArgName("rows")->Arg(0)->Arg(1)->UseRealTime();

// transpose(x, 0, 1).contiguous() of an [n, n] f32 tensor (4 MB), bytes counted as BM_CopySameBytes counts
// them: n = 1000 (rows of 4000 bytes) and n = 1024 (rows of 4 KiB, a power-of-two stride whose lines compete
// for the same cache sets).
void BM_Transpose2d(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({state.range(0), state.range(0)}, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::transpose(x, 0, 1).contiguous();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_Transpose2d)->ArgName("n")->Arg(1000)->Arg(1024)->UseRealTime();

// BM_Permute4d/rows:0 (NCHW -> NHWC of [32, 64, 28, 28]) with each variant of the transpose kernels, forced
// through set_kernel_config: isa 0 baseline (SSE2 4 x 4 of f32, 2 x 2 of f64), 1 AVX2 (8 x 8, 4 x 4), 2 AVX-512
// (16 x 16 of f32, f64 as AVX2); f64 1 for f64 elements (12.8 MB).
void BM_Permute4dIsa(benchmark::State& state) {
  const bp::Isa isa = state.range(0) == 0   ? bp::Isa::baseline
                      : state.range(0) == 1 ? bp::Isa::avx2
                                            : bp::Isa::avx512;
  if (!bp::cpu_supports(isa)) {
    state.SkipWithError("this CPU cannot run the variant");
    return;
  }
  bp::set_num_threads(1);
  const bp::KernelConfig saved = bp::kernel_config();
  bp::KernelConfig config = saved;
  config.isa = isa;
  bp::set_kernel_config(config);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({32, 64, 28, 28}, gen, state.range(1) == 1 ? bp::f64 : bp::f32);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::permute(x, {0, 2, 3, 1}).contiguous();
    benchmark::DoNotOptimize(y.raw_data());
  }
  bp::set_kernel_config(saved);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_Permute4dIsa)->ArgNames({"isa", "f64"})->ArgsProduct({{0, 1, 2}, {0, 1}})->UseRealTime();

// A clone of the f64 [32, 64, 28, 28] tensor: the plain copy BM_Permute4dIsa/f64:1 compares with.
void BM_CopySameBytesF64(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({32, 64, 28, 28}, gen, bp::f64);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = x.clone();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_CopySameBytesF64)->UseRealTime();

// An element-wise op on a transposed view (arg 1; the op reads a contiguous copy) against the same op on a
// contiguous tensor (arg 0): the ratio is the price of copying instead of a strided kernel.
void BM_UnaryOnView(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({1024, 1024}, gen, bp::f32, -1.0, 1.0);
  const bp::Tensor in = state.range(0) == 0 ? x : x.t();
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::exp(in);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_UnaryOnView)->ArgName("transposed")->Arg(0)->Arg(1)->UseRealTime();

void BM_BinaryOnView(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor a = bp::rand({1024, 1024}, gen), b = bp::rand({1024, 1024}, gen);
  const bp::Tensor in = state.range(0) == 0 ? a : a.t();
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::add(in, b);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(a.nbytes()) * 3);
}
BENCHMARK(BM_BinaryOnView)->ArgName("transposed")->Arg(0)->Arg(1)->UseRealTime();

// The same reduction, sum over C of [N, C, H, W], on the contiguous tensor (arg 0) and as sum over dim 0 of
// its [C, N, H, W] permuted view (arg 1, reduced from a contiguous copy).
void BM_SumDimOfPermuted(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({32, 64, 28, 28}, gen);
  const bp::Tensor p = bp::permute(x, {1, 0, 2, 3});
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = state.range(0) == 0 ? bp::sum(x, bp::Dims{1}) : bp::sum(p, bp::Dims{0});
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()));
}
BENCHMARK(BM_SumDimOfPermuted)->ArgName("permuted")->Arg(0)->Arg(1)->UseRealTime();

void BM_CopySameBytes(benchmark::State& state) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  const bp::Tensor x = bp::rand({32, 64, 28, 28}, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = x.clone();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()) * 2);
}
BENCHMARK(BM_CopySameBytes)->UseRealTime();

// Matmul through the op (checks, allocation, row-block split, BLAS): items/s = FLOP/s.
void BM_Matmul(benchmark::State& state) {
  bp::set_num_threads(static_cast<int>(state.range(1)));
  const std::int64_t n = state.range(0);
  bp::Generator gen(1);
  const bp::Tensor a = bp::rand({n, n}, gen), b = bp::rand({n, n}, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = bp::matmul(a, b);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * 2 * n * n * n);
}
BENCHMARK(BM_Matmul)
    ->ArgNames({"n", "threads"})
    ->Args({16, 1})
    ->Args({128, 1})
    ->Args({512, 1})
    ->Args({512, 2});

// Attention's batched product next to one 2-D product of the same FLOPs, through the ops: bmm of
// [64, 64, 64] x [64, 64, 64] (B * H = 64 heads of 64 x 64 scores) against matmul [256, 256] x [256, 256]
// (both 2^24 multiply-adds), f32. Items/s = FLOP/s; range(1) = threads.
void BM_BmmAttention(benchmark::State& state) {
  bp::set_num_threads(static_cast<int>(state.range(1)));
  bp::Generator gen(1);
  const bool batched = state.range(0) == 1;
  const bp::Shape s = batched ? bp::Shape{64, 64, 64} : bp::Shape{256, 256};
  const bp::Tensor a = bp::rand(s, gen), b = bp::rand(s, gen);
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y = batched ? bp::bmm(a, b) : bp::matmul(a, b);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * 2 * (std::int64_t{1} << 24));
  state.SetLabel(batched ? "bmm 64 x [64x64]x[64x64]" : "matmul [256x256]x[256x256]");
}
BENCHMARK(BM_BmmAttention)
    ->ArgNames({"bmm", "threads"})
    ->Args({1, 1})
    ->Args({0, 1})
    ->Args({1, 2})
    ->Args({0, 2})
    ->UseRealTime();

// ---- sgemm side by side: OpenBLAS (cblas_sgemm, one thread) vs backprop's own AVX-512 kernels ---------
// The products of a linear layer at the MLPs' shapes: forward x W^T (NT), dX = dY W (NN), dW = dY^T X (TN).
// Items/s = FLOP/s. gemm_raw's dispatch (kernels::use_own_sgemm) follows what these measure.

struct SgemmShape {
  bool ta, tb;
  int m, n, k;
};
const SgemmShape kSgemmShapes[] = {
    // 784-256-128-10 at batch 32
    {false, true, 32, 256, 784},
    {false, true, 32, 128, 256},
    {false, false, 32, 256, 128},
    {true, false, 256, 784, 32},
    {true, false, 128, 256, 32},
    // at batch 128
    {false, true, 128, 256, 784},
    {false, true, 128, 128, 256},
    {false, false, 128, 256, 128},
    {false, false, 128, 128, 10},
    {true, false, 256, 784, 128},
    {true, false, 128, 256, 128},
    {true, false, 10, 128, 128},
    // batch 1, and the wide net's dX / dW at batch 512
    {false, false, 1, 256, 128},
    {true, false, 256, 784, 1},
    {false, false, 512, 1024, 1024},
    {true, false, 1024, 1024, 512},
};

// range(0): index into kSgemmShapes; range(1): 0 = OpenBLAS, 1 = own kernel for AVX-512, 2 = own kernel for
// AVX2 + FMA.
void BM_Sgemm(benchmark::State& state) {
  const SgemmShape s = kSgemmShapes[state.range(0)];
  const bool own = state.range(1) != 0;
  const bp::Isa isa = state.range(1) == 1 ? bp::Isa::avx512 : bp::Isa::avx2;
  if (own && (!bp::cpu_supports(isa) || !bp::kernels::own_sgemm_supports(s.ta, s.tb))) {
    state.SkipWithError("own kernel not available for this CPU or transpose combination");
    return;
  }
  const auto own_sgemm = isa == bp::Isa::avx512 ? &bp::kernels::avx512::sgemm : &bp::kernels::avx2::sgemm;
  const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  std::vector<float> a(static_cast<std::size_t>((s.ta ? s.k : s.m) * lda), 0.5f);
  std::vector<float> b(static_cast<std::size_t>((s.tb ? s.n : s.k) * ldb), 0.25f);
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);  // OpenBLAS's OpenMP build reads this on every call
  for (auto _ : state) {
    if (own)
      own_sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
    else
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n,
                  s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
    benchmark::DoNotOptimize(c.data());
  }
  omp_set_num_threads(saved);
  state.SetItemsProcessed(state.iterations() * 2 * std::int64_t{s.m} * s.n * s.k);
  state.SetLabel(std::string(s.ta ? "T" : "N") + (s.tb ? "T " : "N ") + std::to_string(s.m) + "x" +
                 std::to_string(s.n) + "x" + std::to_string(s.k) +
                 (own ? std::string(" own ") + bp::isa_name(isa) : std::string(" openblas")));
}
// OpenBLAS and the own kernels side by side for each shape, so that drifting load hits them alike.
BENCHMARK(BM_Sgemm)->ArgNames({"shape", "own"})->Apply([](benchmark::internal::Benchmark* b) {
  for (int i = 0; i < static_cast<int>(std::size(kSgemmShapes)); ++i)
    b->Args({i, 0})->Args({i, 1})->Args({i, 2});
});

// ---- fork-join: what one OpenMP parallel region costs (the reason for the parallel thresholds) ---
// Run with OMP_WAIT_POLICY=PASSIVE (how the tests run) and without it (OpenMP's default, how bench_mlp runs).
void BM_ForkJoin(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  int sink = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += omp_get_thread_num();
    benchmark::DoNotOptimize(sink);
  }
}
BENCHMARK(BM_ForkJoin)->Arg(2)->UseRealTime();

// The same for backprop's own helping parallel-for (src/kernels/row_pool.hpp), which now runs every split:
// 2 pieces of no work on 2 threads, back to back (the helper stays awake between them).
void BM_PoolForkJoin(benchmark::State& state) {
  std::atomic<int> sink{0};
  for (auto _ : state)
    bp::kernels::parallel_chunks(2, 2, [&](std::int64_t i) { sink += static_cast<int>(i); });
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_PoolForkJoin)->UseRealTime();

// Reductions of a contiguous [N, C] f32 tensor over the last axis and over axis 0, one thread, beside a
// memcpy of the same bytes in the same run. Bytes/s counts the input once (a copy also writes it; softmax
// writes an output of the same size).
enum ReduceBench { kCopy, kSum, kAmax, kLogsumexp, kSoftmax };
const char* const kReduceNames[] = {"memcpy", "sum", "amax", "logsumexp", "softmax"};

void BM_Reduce(benchmark::State& state) {
  bp::set_num_threads(1);
  const auto op = static_cast<ReduceBench>(state.range(0));
  const std::int64_t axis = state.range(1), rows = state.range(2), cols = state.range(3);
  bp::Generator gen(1);
  const bp::Tensor x = bp::randn({rows, cols}, gen);
  bp::Tensor copy = bp::empty({rows, cols});
  bp::NoGradGuard guard;
  for (auto _ : state) {
    bp::Tensor y;
    switch (op) {
      case kCopy:
        std::memcpy(copy.raw_data(), x.raw_data(), x.nbytes());
        y = copy;
        break;
      case kSum:
        y = bp::sum(x, axis);
        break;
      case kAmax:
        y = bp::amax(x, {axis});
        break;
      case kLogsumexp:
        y = bp::logsumexp(x, {axis});
        break;
      case kSoftmax:
        y = bp::softmax(x, axis);
        break;
    }
    benchmark::DoNotOptimize(y.raw_data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(kReduceNames[op]);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()));
}
BENCHMARK(BM_Reduce)->ArgNames({"op", "axis", "N", "C"})->Apply([](benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{4096, 1024}, {128, 10}}) {
    b->Args({kCopy, 0, rows, cols});
    for (const std::int64_t op : {kSum, kAmax, kLogsumexp, kSoftmax})
      for (const std::int64_t axis : {1, 0}) b->Args({op, axis, rows, cols});
  }
});

// The CNN's memory-bound kernels at the BatchNorm CNN's first and second layers ([128, 32, 28, 28] and
// [128, 64, 14, 14] f32, 12.8 and 6.4 MB), with the bytes each must move at least (every input read once,
// every output written once; max pooling's indices are f64) as its GB/s, next to a memcpy of the same input
// measured the same way (read + write). batch_norm2d_relu_max_pool is the fused training op of the three
// layers; its backward reads x and the pooled gradient and writes dx.
enum CnnOpBench {
  kCnnCopy,
  kPoolForward,
  kPoolBackward,
  kBnForward,
  kBnBackward,
  kBnPoolForward,
  kBnPoolBackward
};
const char* const kCnnOpNames[] = {"memcpy",
                                   "max_pool2d",
                                   "max_pool2d_backward",
                                   "batch_norm2d",
                                   "batch_norm2d_backward",
                                   "batch_norm2d_relu_max_pool",
                                   "batch_norm2d_relu_max_pool_backward"};

void BM_CnnOp(benchmark::State& state) {
  bp::set_num_threads(static_cast<int>(state.range(1)));
  const auto op = static_cast<CnnOpBench>(state.range(0));
  const bool second = state.range(2) == 2;
  const std::int64_t c = second ? 64 : 32, h = second ? 14 : 28;
  bp::Generator gen(1);
  const bp::Tensor x = bp::randn({128, c, h, h}, gen), dy = bp::randn({128, c, h, h}, gen);
  const bp::Tensor gamma = bp::ones({c}), beta = bp::zeros({c});
  const bp::kernels::PoolGeom pg{
      .planes = 128 * c, .h = h, .w = h, .oh = h / 2, .ow = h / 2, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
  const bp::Shape pooled = {128, c, h / 2, h / 2};
  bp::Tensor values, indices, mean, var, invstd, dx, dgamma, dbeta, copy = bp::empty(x.shape());
  bp::kernels::max_pool2d(x, pg, pooled, values, indices);
  const bp::Tensor dpooled = bp::randn(pooled, gen);
  (void)bp::kernels::batch_norm_forward(x, gamma, beta, 1e-5, mean, var, invstd);
  const std::int64_t in = static_cast<std::int64_t>(x.nbytes()), out = in / 4;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    switch (op) {
      case kCnnCopy:
        std::memcpy(copy.raw_data(), x.raw_data(), x.nbytes());
        bytes = 2 * in;
        break;
      case kPoolForward:
        bp::kernels::max_pool2d(x, pg, pooled, values, indices);
        bytes = in + out + 2 * out;
        break;
      case kPoolBackward:
        dx = bp::kernels::pool_scatter(dpooled, indices, x.shape());
        bytes = out + 2 * out + in;
        break;
      case kBnForward:
        dx = bp::kernels::batch_norm_forward(x, gamma, beta, 1e-5, mean, var, invstd);
        bytes = 2 * in;
        break;
      case kBnBackward:
        bp::kernels::batch_norm_backward(dy, x, gamma, beta, mean, invstd, dx, dgamma, dbeta);
        bytes = 3 * in;
        break;
      case kBnPoolForward:
        dx = bp::kernels::batch_norm_forward(x, gamma, beta, 1e-5, mean, var, invstd,
                                             bp::kernels::BnEpilogue::relu_max_pool);
        bytes = in + out;
        break;
      case kBnPoolBackward:
        bp::kernels::batch_norm_backward(dpooled, x, gamma, beta, mean, invstd, dx, dgamma, dbeta,
                                         bp::kernels::BnEpilogue::relu_max_pool);
        bytes = 2 * in + out;
        break;
    }
    benchmark::DoNotOptimize(copy.raw_data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(kCnnOpNames[op]);
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_CnnOp)
    ->ArgNames({"op", "threads", "layer"})
    ->UseRealTime()
    ->Apply([](benchmark::internal::Benchmark* b) {
      for (const std::int64_t layer : {1, 2})
        for (const std::int64_t threads : {1, 2})
          for (const std::int64_t op : {kCnnCopy, kPoolForward, kPoolBackward, kBnForward, kBnBackward,
                                        kBnPoolForward, kBnPoolBackward})
            b->Args({op, threads, layer});
    });

// One training step of the small MLP at batch 1 and 128 (forward, cross-entropy, backward, SGD).
void BM_MlpStep(benchmark::State& state) {
  bp::set_num_threads(1);
  const std::int64_t batch = state.range(0);
  bp::Generator gen(1);
  bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 128, gen),
                         bp::nn::ReLU(), bp::nn::Linear(128, 10, gen)};
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9});
  bp::loss::CrossEntropy ce;
  const bp::Tensor x = bp::rand({batch, 784}, gen);
  bp::Tensor y({batch}, bp::f32);
  for (std::int64_t i = 0; i < batch; ++i) y.data<float>()[i] = static_cast<float>(i % 10);
  for (auto _ : state) {
    opt.zero_grad();
    bp::Tensor loss = ce(net(x), y);
    loss.backward();
    opt.step();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_MlpStep)->Arg(1)->Arg(32)->Arg(128);

// One optimiser step on a 256 x 784 f32 parameter (200,704 elements), one thread (docs/optim.md).
template <class Opt, class Options>
void optimizer_step(benchmark::State& state, Options options) {
  bp::set_num_threads(1);
  bp::Generator gen(1);
  bp::Tensor w = bp::randn({256, 784}, gen).requires_grad_();
  w.set_grad(bp::randn({256, 784}, gen));
  Opt opt({w}, options);
  for (auto _ : state) {
    opt.step();
    benchmark::DoNotOptimize(w.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * w.numel());
}
void BM_StepSGD(benchmark::State& s) {
  optimizer_step<bp::optim::SGD>(s, bp::optim::SGDOptions{.lr = 1e-3});
}
void BM_StepMomentum(benchmark::State& s) {
  optimizer_step<bp::optim::SGD>(s, bp::optim::SGDOptions{.lr = 1e-3, .momentum = 0.9});
}
void BM_StepAdam(benchmark::State& s) {
  optimizer_step<bp::optim::Adam>(s, bp::optim::AdamOptions{.lr = 1e-3});
}
void BM_StepRMSprop(benchmark::State& s) {
  optimizer_step<bp::optim::RMSprop>(s, bp::optim::RMSpropOptions{.lr = 1e-3});
}
void BM_StepRprop(benchmark::State& s) {
  optimizer_step<bp::optim::Rprop>(s, bp::optim::RpropOptions{});
}
BENCHMARK(BM_StepSGD);
BENCHMARK(BM_StepMomentum);
BENCHMARK(BM_StepAdam);
BENCHMARK(BM_StepRMSprop);
BENCHMARK(BM_StepRprop);

}  // namespace

BENCHMARK_MAIN();
