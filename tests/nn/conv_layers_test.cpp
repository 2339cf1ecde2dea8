// Convolution, pooling, BatchNorm2d and Dropout2d layers: a small CNN equals PyTorch's (tests/nn/torch_conv.py)
// to 1e-10 in f64 (outputs, every gradient, three SGD steps, running statistics, eval mode); reprs as PyTorch
// prints them; errors naming the layer; a save/load round trip with bit-identical output; the kernels give the
// same bits on 1 and 2 threads; a small CNN learns Fashion-MNIST.
#include <gtest/gtest.h>
#include <unistd.h>

#include <backprop/backprop.hpp>
#include <backprop/data/idx.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "nn/torch_compare.hpp"
#include "util/require.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;

namespace {

void expect_near_all(const bp::Tensor& got, const std::vector<double>& want, double tol,
                     const std::string& what) {
  const std::vector<double> v = got.to_vector();
  ASSERT_EQ(v.size(), want.size()) << what;
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], want[i], tol) << what << " element " << i;
}

bool same_bits(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

nn::Sequential small_cnn(bp::Generator& gen, bp::DType dtype) {
  return nn::Sequential{nn::Conv2d(2, 4, 3, gen, {.padding = 1, .dtype = dtype}),
                        nn::BatchNorm2d(4, {.dtype = dtype}),
                        nn::ReLU(),
                        nn::MaxPool2d(2),
                        nn::Conv2d(4, 6, 3, gen, {.padding = "same", .groups = 2, .dtype = dtype}),
                        nn::Tanh(),
                        nn::ConvTranspose2d(6, 3, 2, gen, {.stride = 2, .dtype = dtype}),
                        nn::AvgPool2d(3, {.stride = 2, .padding = 1}),
                        nn::AdaptiveAvgPool2d({2, 3})};
}

/// torch_conv.py's output, computed once for the tests that compare with it.
const std::map<std::string, std::vector<double>>& torch_reference(std::string& err) {
  static std::string error;
  static const auto ref = torchcmp::run_torch("cnn", error, "torch_conv.py");
  err = error;
  return ref;
}

}  // namespace

TEST(ConvLayers, SmallCnnEqualsPyTorch) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto& ref = torch_reference(err);
  ASSERT_FALSE(ref.empty()) << err;

  bp::Generator gen(0);
  nn::Sequential net = small_cnn(gen, bp::f64);
  {
    bp::NoGradGuard guard;
    int j = 0;
    for (auto& [name, p] : net.named_parameters()) p.copy_(torchcmp::filled(p.shape(), double(j++), 0.5));
  }
  bp::Tensor x = torchcmp::filled({3, 2, 6, 6}, 10.0);
  x.requires_grad_();
  const bp::Tensor v = torchcmp::filled({3, 3, 2, 3}, 20.0);
  const bp::Tensor y = net(x);
  bp::sum(bp::mul(y, v)).backward();
  expect_near_all(y, ref.at("y"), 1e-10, "y");
  expect_near_all(x.grad(), ref.at("dx"), 1e-10, "dx");
  for (const auto& [name, p] : net.named_parameters()) {
    ASSERT_TRUE(ref.contains("grad." + name)) << name << " is not a PyTorch parameter name";
    expect_near_all(p.grad(), ref.at("grad." + name), 1e-10, "grad." + name);
  }

  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    const bp::Tensor loss = bp::sum(bp::mul(net(x), v));
    loss.backward();
    opt.step();
    EXPECT_NEAR(loss.item(), ref.at("loss" + std::to_string(step)).at(0), 1e-9) << "step " << step;
  }
  for (const auto& [name, t] : net.state_dict()) {
    ASSERT_TRUE(ref.contains(name)) << name << " is not in PyTorch's state_dict";
    expect_near_all(t, ref.at(name), 1e-9, name);
  }
  net.eval();
  expect_near_all(net(x), ref.at("eval_y"), 1e-9, "eval_y");
}

TEST(ConvLayers, Conv1dEqualsPyTorch) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto& ref = torch_reference(err);
  ASSERT_FALSE(ref.empty()) << err;
  bp::Generator gen(0);
  nn::Conv1d conv(3, 4, 3, gen, {.stride = 2, .padding = 1, .dtype = bp::f64});
  {
    bp::NoGradGuard guard;
    bp::Tensor(conv.weight()).copy_(torchcmp::filled(conv.weight().shape(), 30.0));
    bp::Tensor(conv.bias()).copy_(torchcmp::filled(conv.bias().shape(), 31.0));
  }
  bp::Tensor s = torchcmp::filled({2, 3, 7}, 32.0);
  s.requires_grad_();
  const bp::Tensor z = conv(s);
  bp::sum(bp::mul(z, torchcmp::filled(z.shape(), 33.0))).backward();
  expect_near_all(z, ref.at("conv1d.y"), 1e-12, "y");
  expect_near_all(s.grad(), ref.at("conv1d.dx"), 1e-12, "dx");
  expect_near_all(conv.weight().grad(), ref.at("conv1d.dweight"), 1e-12, "dweight");
}

TEST(ConvLayers, ReprAsPyTorchPrintsIt) {
  bp::Generator gen(0);
  EXPECT_EQ(nn::Conv2d(1, 32, 3, gen, {.padding = 1}).repr(),
            "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
  EXPECT_EQ(nn::Conv2d(4, 8, {3, 5}, gen, {.stride = 2, .dilation = 2, .groups = 4, .bias = false}).repr(),
            "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), groups=4, bias=False)");
  EXPECT_EQ(nn::Conv2d(2, 2, 3, gen, {.padding = "same"}).repr(),
            "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same)");
  EXPECT_EQ(nn::Conv1d(4, 8, 3, gen).repr(), "Conv1d(4, 8, kernel_size=(3,), stride=(1,))");
  EXPECT_EQ(nn::ConvTranspose2d(16, 8, 2, gen, {.stride = 2, .output_padding = 1}).repr(),
            "ConvTranspose2d(16, 8, kernel_size=(2, 2), stride=(2, 2), output_padding=(1, 1))");
  EXPECT_EQ(nn::MaxPool2d(2).repr(),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(nn::AvgPool2d(3, {.stride = 2, .padding = 1}).repr(),
            "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  EXPECT_EQ(nn::AdaptiveAvgPool2d(1).repr(), "AdaptiveAvgPool2d(output_size=1)");
  EXPECT_EQ(nn::AdaptiveAvgPool2d({2, 3}).repr(), "AdaptiveAvgPool2d(output_size=(2, 3))");
  EXPECT_EQ(nn::BatchNorm2d(32).repr(),
            "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(nn::Dropout2d(0.5, gen).repr(), "Dropout2d(p=0.5)");
}

TEST(ConvLayers, DefaultInitIsPyTorchsUniformBound) {
  bp::Generator gen(3);
  nn::Conv2d conv(8, 16, 3, gen, {.groups = 2});
  const double bound = 1.0 / std::sqrt(4.0 * 9.0);  // fan_in = in / groups * kh * kw
  double lo = 1, hi = -1;
  for (double w : conv.weight().to_vector()) lo = std::min(lo, w), hi = std::max(hi, w);
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.9 * bound);  // spread over the whole range, not a narrower one
  EXPECT_GT(hi, 0.9 * bound);
  for (double b : conv.bias().to_vector()) EXPECT_LE(std::abs(b), bound);
}

TEST(ConvLayers, ErrorsNameTheLayerAndTheShapes) {
  bp::Generator gen(0);
  nn::Conv2d conv(3, 4, 3, gen);
  try {
    conv(bp::zeros({2, 1, 8, 8}));
    FAIL() << "a channel mismatch was accepted";
  } catch (const bp::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d(3, 4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 1, 8, 8]"), std::string::npos) << e.what();
  }
  try {
    conv(bp::zeros({1, 3, 2, 2}));
    FAIL() << "a kernel larger than the input was accepted";
  } catch (const bp::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the padded input"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::Conv2d(3, 4, 3, gen, {.groups = 2}), bp::ValueError);
  EXPECT_THROW(nn::Conv2d(3, 3, 3, gen, {.stride = 2, .padding = "same"}), bp::ValueError);
  EXPECT_THROW(nn::ConvTranspose2d(3, 3, 3, gen, {.stride = 2, .output_padding = 2}), bp::ValueError);
  EXPECT_THROW(nn::MaxPool2d(2, {.padding = 2}), bp::ValueError);
  EXPECT_THROW(bp::conv2d(bp::zeros({1, 4, 5, 5}), bp::zeros({6, 2, 3, 3}), {}, 1, 0, 1, 3), bp::ShapeError);
  EXPECT_THROW(bp::max_pool2d(bp::zeros({1, 1, 2, 2}), 3), bp::ShapeError);
  EXPECT_THROW(bp::conv2d(bp::zeros({4, 5}), bp::zeros({1, 1, 1, 1})), bp::ShapeError);
  EXPECT_THROW(bp::ConvPadding(std::string("full")), bp::ValueError);
  EXPECT_THROW(nn::BatchNorm2d(4)(bp::zeros({2, 3, 2, 2})), bp::ShapeError);
}

TEST(ConvLayers, BatchNorm2dGradcheckAndGradgradcheckThroughBatchStatistics) {
  bp::Generator gen(23);
  bp::Tensor x = bp::randn({3, 2, 2, 3}, gen, bp::f64).requires_grad_();
  nn::BatchNorm2d bn(2, {.dtype = bp::f64});
  {
    bp::NoGradGuard guard;
    bp::Tensor(bn.weight()).copy_(bp::randn({2}, gen, bp::f64, 1.0, 0.2));
    bp::Tensor(bn.bias()).copy_(bp::randn({2}, gen, bp::f64));
  }
  // The layer's own gamma and beta are inputs of the check (perturbed in place), x the third.
  auto fn = [&](const bp::Tensors& in) { return bp::pow(bn(in[0]), 2.0); };
  bp::gradcheck(fn, {x, bn.weight(), bn.bias()});
  bp::gradgradcheck(fn, {x, bn.weight(), bn.bias()});
}

TEST(ConvLayers, Dropout2dDropsWholeChannels) {
  bp::Generator gen(5);
  nn::Dropout2d drop(0.5, gen);
  const bp::Tensor x = bp::ones({16, 8, 3, 3});
  const bp::Tensor y = drop(x);
  int kept = 0;
  for (std::int64_t n = 0; n < 16; ++n)
    for (std::int64_t c = 0; c < 8; ++c) {
      const double first = y.at({n, c, 0, 0});
      EXPECT_TRUE(first == 0.0 || first == 2.0) << first;
      kept += first != 0.0;
      for (std::int64_t i = 0; i < 9; ++i) EXPECT_EQ(y.at({n, c, i / 3, i % 3}), first);
    }
  EXPECT_GT(kept, 32);  // about half of 128 channels kept
  EXPECT_LT(kept, 96);
  drop.eval();
  EXPECT_TRUE(same_bits(drop(x), x));
}

TEST(ConvLayers, BatchNorm2dRunningStatisticsUseAllPixels) {
  nn::BatchNorm2d bn(2, {.momentum = 1.0, .dtype = bp::f64});
  bp::Generator gen(2);
  const bp::Tensor x = bp::randn({3, 2, 4, 5}, gen, bp::f64);
  const bp::Tensor y = bn(x);
  for (std::int64_t c = 0; c < 2; ++c) {
    const bp::Tensor xc = bp::narrow(x, 1, c, 1), yc = bp::narrow(y, 1, c, 1);
    EXPECT_NEAR(bp::mean(yc).item(), 0.0, 1e-12);
    EXPECT_NEAR(bp::var(yc, bp::Dims{}, 0).item(), 1.0, 1e-4);  // eps = 1e-5
    EXPECT_NEAR(bn.running_mean().at({c}), bp::mean(xc).item(), 1e-12);
    EXPECT_NEAR(bn.running_var().at({c}), bp::var(xc, bp::Dims{}, 1).item(), 1e-12);  // unbiased, n = 60
  }
}

TEST(ConvLayers, SaveLoadRoundTripIsBitIdentical) {
  bp::Generator gen(7);
  auto cnn = std::make_shared<nn::Sequential>(small_cnn(gen, bp::f32));
  auto seq = std::make_shared<nn::Sequential>(nn::Conv1d(3, 2, 2, gen, {.padding = "same"}),
                                              nn::Dropout2d(0.3, gen));
  const bp::Tensor x = bp::randn({4, 2, 6, 6}, gen), s = bp::randn({4, 3, 7}, gen);
  (*cnn)(x);  // move BatchNorm2d's running statistics away from their start
  cnn->eval();
  seq->eval();
  for (const auto& [net, in] : {std::pair{cnn, x}, std::pair{seq, s}}) {
    const bp::Tensor before = (*net)(in);
    const auto path =
        std::filesystem::temp_directory_path() / ("bp_conv_" + std::to_string(::getpid()) + ".safetensors");
    bp::io::save_model(path.string(), *net);
    const nn::ModulePtr back = bp::io::load_module(path.string());
    std::filesystem::remove(path);
    EXPECT_EQ(back->repr(), net->repr());
    EXPECT_TRUE(same_bits(back->forward(in), before)) << net->repr();
    const auto state = back->state_dict();
    ASSERT_EQ(state.size(), net->state_dict().size());
    for (const auto& [name, t] : net->state_dict()) EXPECT_TRUE(same_bits(state.at(name), t)) << name;
  }
}

TEST(ConvLayers, KernelsGiveTheSameBitsOnOneAndTwoThreads) {
  bp::Generator gen(11);
  const bp::Tensor x = bp::randn({16, 8, 20, 20}, gen), w = bp::randn({16, 8, 3, 3}, gen);
  const bp::Tensor b = bp::randn({16}, gen);
  auto run = [&](int threads) {
    bp::set_num_threads(threads);
    bp::Tensor xi = x.detach(), wi = w.detach();
    xi.requires_grad_();
    wi.requires_grad_();
    const bp::Tensor y = bp::conv2d(xi, wi, b, 1, 1);
    bp::sum(bp::mul(y, y)).backward();
    return bp::Tensors{y, xi.grad(), wi.grad()};
  };
  const int saved = bp::get_num_threads();
  const bp::Tensors one = run(1), two = run(2);
  bp::set_num_threads(saved);
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(same_bits(one[i], two[i])) << "result " << i;
}

TEST(ConvLayers, SmallCnnLearnsFashionMnist) {
  namespace bpd = bp::data;
  const std::string dir = bpd::FashionMNIST::default_dir;
  REQUIRE_INSTALLED(std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz"), "fashion-mnist",
                    "Fashion-MNIST in " + dir);
  const bpd::TensorDataset train = bpd::FashionMNIST::load(dir, bpd::Split::train, 2000);
  const bpd::TensorDataset test = bpd::FashionMNIST::load(dir, bpd::Split::test, 1000);
  const bp::Tensor xtr = bp::reshape(train.features, {-1, 1, 28, 28});
  const bp::Tensor xte = bp::reshape(test.features, {-1, 1, 28, 28});
  bp::Generator gen(0);
  nn::Sequential net{nn::Conv2d(1, 8, 3, gen, {.padding = 1}),
                     nn::BatchNorm2d(8),
                     nn::ReLU(),
                     nn::MaxPool2d(2),
                     nn::Conv2d(8, 16, 3, gen),
                     nn::ReLU(),
                     nn::MaxPool2d(2),
                     nn::Flatten(),
                     nn::Linear(16 * 6 * 6, 10, gen)};
  bp::optim::Adam opt(net.parameters(), {.lr = 3e-3});
  bp::loss::CrossEntropy ce;
  const std::int64_t batch = 50;
  for (int epoch = 0; epoch < 2; ++epoch)
    for (std::int64_t i = 0; i + batch <= xtr.size(0); i += batch) {
      opt.zero_grad();
      ce(net(bp::narrow(xtr, 0, i, batch)), bp::narrow(train.targets, 0, i, batch)).backward();
      opt.step();
    }
  net.eval();
  bp::NoGradGuard guard;
  const bp::Tensor pred = bp::argmax(net(xte), 1);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < pred.numel(); ++i) correct += pred.flat(i) == test.targets.flat(i);
  const double accuracy = static_cast<double>(correct) / static_cast<double>(pred.numel());
  EXPECT_GT(accuracy, 0.70) << "held-out accuracy after 2 epochs on 2,000 images (chance: 0.10)";
}

// The 2x2 stride-2 max pool's fast row kernel (four windows at a time in f32) against the windows' definition:
// the first of equal maxima in row-major order, NaN taking over (the last NaN), only positions inside the
// input (ceil_mode's last window is cut); every width from 2 to 11 and 28, f32 and f64.
TEST(ConvLayers, MaxPool2x2EqualsTheWindowDefinition) {
  bp::Generator gen(5);
  for (const bp::DType dtype : {bp::f32, bp::f64})
    for (const bool ceil_mode : {false, true})
      for (const std::int64_t w : {2, 3, 4, 5, 7, 8, 9, 10, 11, 28}) {
        const std::int64_t h = w % 3 == 0 ? 7 : 6;
        std::vector<double> v(static_cast<std::size_t>(6 * h * w));
        for (std::size_t i = 0; i < v.size(); ++i)  // values 0-3 (many ties) and a NaN every 37
          v[i] = i % 37 == 36 ? std::nan("") : static_cast<double>(gen.below(4));
        const bp::Tensor x = bp::from_vector(v, {2, 3, h, w}, dtype);
        const bp::ValuesIndices got = bp::max_pool2d_with_indices(x, 2, 2, 0, 1, ceil_mode);
        const std::int64_t oh = got.values.size(2), ow = got.values.size(3);
        ASSERT_EQ(ow, ceil_mode ? (w + 1) / 2 : w / 2) << "width " << w;
        for (std::int64_t p = 0; p < 6; ++p)
          for (std::int64_t oy = 0; oy < oh; ++oy)
            for (std::int64_t ox = 0; ox < ow; ++ox) {
              double best = -INFINITY;
              std::int64_t best_at = -1;
              for (std::int64_t iy = 2 * oy; iy < std::min(2 * oy + 2, h); ++iy)
                for (std::int64_t ix = 2 * ox; ix < std::min(2 * ox + 2, w); ++ix) {
                  const double at = v[static_cast<std::size_t>(p * h * w + iy * w + ix)];
                  if (best_at < 0 || at > best || std::isnan(at)) best = at, best_at = iy * w + ix;
                }
              const std::int64_t o = p * oh * ow + oy * ow + ox;
              const std::string where = std::string(bp::dtype_name(dtype)) + " width " + std::to_string(w) +
                                        (ceil_mode ? " ceil" : "") + " output " + std::to_string(o);
              EXPECT_EQ(got.indices.flat(o), static_cast<double>(best_at)) << where;
              if (std::isnan(best))
                EXPECT_TRUE(std::isnan(got.values.flat(o))) << where;
              else
                EXPECT_EQ(got.values.flat(o), best) << where;
            }
      }
}
