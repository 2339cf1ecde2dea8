// bench_micro — Google Benchmark micro-benchmarks: what one op costs on tiny tensors (per-op overhead:
// checks, allocation, graph recording), kernel throughput on large ones, and the backward cost per recorded
// node.
//
//   build/release/bench/bench_micro                                  # everything
//   build/release/bench/bench_micro --benchmark_filter='Tiny'        # per-op overhead only
//
// Items/s on the throughput benchmarks are elements (element-wise) or FLOPs (matmul) per second.
#include <benchmark/benchmark.h>

#include <backprop/backprop.hpp>

#include "kernels/kernels.hpp"

namespace bp = backprop;

namespace {

// ---- per-op overhead on 1-element tensors, with and without graph recording
// ---------------------------------

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

// ---- backward overhead per node: a chain of n tiny adds, then backward()
// --------------------------------------

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

// ---- kernel throughput
// ---------------------------------------------------------------------------------------

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
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2});

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

}  // namespace

BENCHMARK_MAIN();
