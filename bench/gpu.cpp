// bench_gpu: what the CUDA backend runs today, timed on GPU 0: MLP inference (Linear = cuBLAS product +
// broadcasting add, ReLU), a large f32 product and an element-wise add. bench/torch_gpu.py times the same
// workloads in PyTorch; scripts/gpu-check prints both side by side. Prints one line per workload:
//   NAME us_per_call
// (the median of 5 timed runs of `calls` calls each, after a warm-up), or why it cannot run.
#include <algorithm>
#include <backprop/backprop.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

namespace bp = backprop;

namespace {

double median_us(const std::function<void()>& call, int calls, bp::Device dev) {
  for (int i = 0; i < calls; ++i) call();  // warm-up: the allocator's cache and cuBLAS's plans fill here
  bp::cuda::synchronize(dev);
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) call();
    bp::cuda::synchronize(dev);
    runs.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / calls);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

bp::nn::Sequential mlp(const std::vector<std::int64_t>& hidden, bp::Generator& gen) {
  bp::nn::Sequential net;
  std::int64_t in = 784;
  for (std::int64_t h : hidden) {
    net.push_back(bp::nn::Linear(in, h, gen));
    net.push_back(bp::nn::ReLU());
    in = h;
  }
  net.push_back(bp::nn::Linear(in, 10, gen));
  return net;
}

}  // namespace

int main() {
  if (bp::cuda::device_count() == 0) {
    std::fprintf(stderr, "bench_gpu: no CUDA device: %s\n", bp::cuda::unavailable_reason().c_str());
    return 3;
  }
  const bp::Device dev = bp::Device::cuda(0);
  bp::Generator gen(0);
  bp::NoGradGuard no_grad;
  struct Mlp {
    const char* name;
    std::vector<std::int64_t> hidden;
    std::int64_t batch;
  };
  for (const Mlp& m : {Mlp{"mlp_forward_b128", {256, 128}, 128}, Mlp{"mlp_forward_b32", {256, 128}, 32},
                       Mlp{"wide_forward_b512", {1024, 1024}, 512}}) {
    bp::nn::Sequential net = mlp(m.hidden, gen);
    net.to(dev);
    const bp::Tensor x = bp::rand({m.batch, 784}, gen, bp::f32, 0.0, 1.0, dev);
    std::printf("%s %.2f\n", m.name, median_us([&] { net(x); }, 200, dev));
  }
  const bp::Tensor a = bp::randn({2048, 2048}, gen, bp::f32, 0.0, 1.0, dev);
  std::printf("sgemm_2048 %.2f\n", median_us([&] { bp::matmul(a, a); }, 20, dev));
  const bp::Tensor v = bp::rand({1 << 20}, gen, bp::f32, 0.0, 1.0, dev);
  std::printf("add_1m %.2f\n", median_us([&] { bp::add(v, v); }, 200, dev));
  return 0;
}
