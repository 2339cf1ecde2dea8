// bench_sgemm — the machine's sgemm ceiling: GFLOP/s of OpenBLAS cblas_sgemm (called directly, nothing of
// backprop in between) on large squares and on the shapes of the benchmark MLPs, printed as one JSON object.
//
//   bench_sgemm --threads 1            # OpenBLAS threads for the calls
//
// Each shape is timed as the median of several repetitions after a warm-up; FLOPs = 2 m n k. Also the FMA
// peak: 12 independent chains of AVX-512 FMAs in registers (no memory traffic) on `threads` threads at once,
// total GFLOP/s ("fma_peak_gflops"; null without AVX-512). Its 2-thread / 1-thread ratio says how much a
// second thread can add at all on this machine at this moment (a core shared with other work gives ~1).
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace {

struct Shape {
  const char* name;
  int m, n, k;
  bool ta, tb;
};

double gflops(const Shape& s) {
  std::vector<float> a(static_cast<std::size_t>(s.m) * s.k, 0.5f),
      b(static_cast<std::size_t>(s.k) * s.n, 0.25f), c(static_cast<std::size_t>(s.m) * s.n, 0.0f);
  const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n,
                s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
  };
  const double flop = 2.0 * s.m * s.n * s.k;
  const int reps = std::max(1, static_cast<int>(2e9 / flop));  // about 2 GFLOP per sample
  call();
  std::vector<double> samples;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) call();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    samples.push_back(flop * reps / dt / 1e9);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

__attribute__((target("avx512f"))) float fma_chains(std::int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + static_cast<float>(i) * 1e-7f);
  const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  for (std::int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  alignas(64) float out[16];
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  _mm512_store_ps(out, sum);
  return out[0];
}

// Total GFLOP/s of `threads` threads each running the FMA chains (median of 5 samples of ~0.2 s).
double fma_peak(int threads) {
  const std::int64_t iters = 20'000'000;
  std::vector<double> samples;
  std::vector<float> sink(static_cast<std::size_t>(threads));
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&sink, t, iters] { sink[static_cast<std::size_t>(t)] = fma_chains(iters); });
    for (auto& th : pool) th.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    samples.push_back(static_cast<double>(threads) * static_cast<double>(iters) * 12.0 * 32.0 / dt / 1e9);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2] + 0.0 * static_cast<double>(sink[0]);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--threads") threads = std::atoi(argv[i + 1]);
  openblas_set_num_threads(threads);
  // Forward y = x W^T (NT), backward dx = dy W (NN), dW = dy^T x (TN): the three products of a linear layer.
  const Shape shapes[] = {
      {"square_1024", 1024, 1024, 1024, false, false},   {"square_2048", 2048, 2048, 2048, false, false},
      {"mlp128_fc1_fwd", 128, 256, 784, false, true},    {"mlp128_fc1_dw", 256, 784, 128, true, false},
      {"mlp128_fc2_fwd", 128, 128, 256, false, true},    {"wide512_fc1_fwd", 512, 1024, 784, false, true},
      {"wide512_fc1_dw", 1024, 784, 512, true, false},   {"wide512_fc2_fwd", 512, 1024, 1024, false, true},
      {"wide512_fc2_dx", 512, 1024, 1024, false, false}, {"wide512_fc2_dw", 1024, 1024, 512, true, false},
  };
  std::cout << "{\"impl\": \"openblas\", \"threads\": " << threads << ", \"fma_peak_gflops\": ";
  if (__builtin_cpu_supports("avx512f"))
    std::cout << fma_peak(threads);
  else
    std::cout << "null";
  double wide_flop = 0, wide_time = 0;
  for (const Shape& s : shapes) {
    const double g = gflops(s);
    std::cout << ", \"" << s.name << "\": " << g;
    if (std::string(s.name).rfind("wide512", 0) == 0) {
      const double f = 2.0 * s.m * s.n * s.k;
      wide_flop += f;
      wide_time += f / g;
    }
  }
  // FLOP-weighted rate over the wide net's big products: the ceiling its training step could reach.
  std::cout << ", \"wide512_gflops\": " << wide_flop / wide_time << "}\n";
  return 0;
}
