// Optimisers: updates against independent scalar references and hand-computed values, convergence, exact
// resumption through state()/load_state(), error messages, gradient clipping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/optim.hpp>
#include <cmath>
#include <functional>
#include <memory>

#include "util/two_threads.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
// The test objective C(w) = sum_j (a_j w_j^2 / 2 + c_j w_j), so dC/dw_j = a_j w_j + c_j.
const std::vector<double> kA = {1.0, 0.5, 2.0, 3.0}, kC = {0.1, -0.3, 0.0, 0.2};
const std::vector<double> kW0 = {1.0, -2.0, 0.5, 0.3};

std::vector<double> gradient(const std::vector<double>& w) {
  std::vector<double> g(w.size());
  for (std::size_t j = 0; j < w.size(); ++j) g[j] = kA[j] * w[j] + kC[j];
  return g;
}

void set_gradient(bp::Tensor& w) {
  const auto g = gradient(w.to_vector());
  w.set_grad(bp::from_vector(g, w.shape(), w.dtype()));
}

// Reference updates written from the published rules, one element at a time, in double.
using Reference = std::function<void(std::vector<double>& w, int t)>;

Reference sgd_ref(double lr, double mu, double damp, bool nesterov, double wd) {
  auto buf = std::make_shared<std::vector<double>>();
  return [=](std::vector<double>& w, int t) {
    auto g = gradient(w);
    if (buf->empty()) buf->assign(w.size(), 0.0);
    for (std::size_t j = 0; j < w.size(); ++j) {
      double d = g[j] + wd * w[j];
      if (mu != 0) {
        // The buffer starts as the first gradient itself (no dampening on the first step).
        (*buf)[j] = t == 1 ? d : mu * (*buf)[j] + (1 - damp) * d;
        d = nesterov ? d + mu * (*buf)[j] : (*buf)[j];
      }
      w[j] -= lr * d;
    }
  };
}

// Adam with explicit bias-corrected moments m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
Reference adam_ref(double lr, double b1, double b2, double eps, double wd, bool decoupled) {
  auto m = std::make_shared<std::vector<double>>(), v = std::make_shared<std::vector<double>>();
  return [=](std::vector<double>& w, int t) {
    auto g = gradient(w);
    if (m->empty()) m->assign(w.size(), 0.0), v->assign(w.size(), 0.0);
    for (std::size_t j = 0; j < w.size(); ++j) {
      if (decoupled) w[j] -= lr * wd * w[j];
      const double d = g[j] + (decoupled ? 0.0 : wd * w[j]);
      (*m)[j] = b1 * (*m)[j] + (1 - b1) * d;
      (*v)[j] = b2 * (*v)[j] + (1 - b2) * d * d;
      const double mh = (*m)[j] / (1 - std::pow(b1, t)), vh = (*v)[j] / (1 - std::pow(b2, t));
      // Adam's eps sits outside the bias correction of sqrt(v): sqrt(v_hat) + eps.
      w[j] -= lr * mh / (std::sqrt(vh) + eps);
    }
  };
}

Reference rmsprop_ref(double lr, double alpha, double eps, double mu, double wd, bool centered) {
  auto s = std::make_shared<std::vector<double>>(), b = std::make_shared<std::vector<double>>(),
       a = std::make_shared<std::vector<double>>();
  return [=](std::vector<double>& w, int) {
    auto g = gradient(w);
    if (s->empty()) s->assign(w.size(), 0.0), b->assign(w.size(), 0.0), a->assign(w.size(), 0.0);
    for (std::size_t j = 0; j < w.size(); ++j) {
      const double d = g[j] + wd * w[j];
      (*s)[j] = alpha * (*s)[j] + (1 - alpha) * d * d;
      double var = (*s)[j];
      if (centered) {
        (*a)[j] = alpha * (*a)[j] + (1 - alpha) * d;
        var -= (*a)[j] * (*a)[j];
      }
      const double step = d / (std::sqrt(var) + eps);
      if (mu > 0) {
        (*b)[j] = mu * (*b)[j] + step;
        w[j] -= lr * (*b)[j];
      } else {
        w[j] -= lr * step;
      }
    }
  };
}

Reference rprop_ref(double lr, double down, double up, double lo, double hi) {
  auto prev = std::make_shared<std::vector<double>>(), size = std::make_shared<std::vector<double>>();
  return [=](std::vector<double>& w, int) {
    auto g = gradient(w);
    if (prev->empty()) prev->assign(w.size(), 0.0), size->assign(w.size(), lr);
    for (std::size_t j = 0; j < w.size(); ++j) {
      const double agree = g[j] * (*prev)[j];
      if (agree > 0) (*size)[j] = std::min((*size)[j] * up, hi);
      if (agree < 0) {
        (*size)[j] = std::max((*size)[j] * down, lo);
        g[j] = 0;
      }
      w[j] -= (g[j] > 0 ? 1.0 : g[j] < 0 ? -1.0 : 0.0) * (*size)[j];
      (*prev)[j] = g[j];
    }
  };
}

struct Case {
  const char* name;
  std::function<std::unique_ptr<bp::optim::Optimizer>(bp::Tensors)> make;
  std::function<Reference()> reference;
};

std::vector<Case> cases() {
  using namespace bp::optim;
  return {
      {"sgd", [](bp::Tensors p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); },
       [] { return sgd_ref(0.1, 0, 0, false, 0); }},
      {"sgd momentum wd dampening",
       [](bp::Tensors p) {
         return std::make_unique<SGD>(
             p, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
       },
       [] { return sgd_ref(0.05, 0.9, 0.1, false, 0.01); }},
      {"sgd nesterov",
       [](bp::Tensors p) {
         return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.8, .nesterov = true});
       },
       [] { return sgd_ref(0.1, 0.8, 0, true, 0); }},
      {"adam",
       [](bp::Tensors p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.1, .weight_decay = 0.05}); },
       [] { return adam_ref(0.1, 0.9, 0.999, 1e-8, 0.05, false); }},
      {"adamw",
       [](bp::Tensors p) {
         return std::make_unique<AdamW>(
             p, AdamWOptions{.lr = 0.1, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1});
       },
       [] { return adam_ref(0.1, 0.8, 0.99, 1e-8, 0.1, true); }},
      {"rmsprop", [](bp::Tensors p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01}); },
       [] { return rmsprop_ref(0.01, 0.99, 1e-8, 0, 0, false); }},
      {"rmsprop momentum centered wd",
       [](bp::Tensors p) {
         return std::make_unique<RMSprop>(
             p, RMSpropOptions{
                    .lr = 0.01, .alpha = 0.9, .momentum = 0.5, .weight_decay = 0.1, .centered = true});
       },
       [] { return rmsprop_ref(0.01, 0.9, 1e-8, 0.5, 0.1, true); }},
      {"rprop", [](bp::Tensors p) { return std::make_unique<Rprop>(p, RpropOptions{.lr = 0.3}); },
       [] { return rprop_ref(0.3, 0.5, 1.2, 1e-6, 50); }},
  };
}
}  // namespace

TEST(Optimizers, MatchIndependentReferenceOverFiveStepsInF64AndF32) {
  for (const auto& c : cases()) {
    for (bp::DType dt : {bp::f64, bp::f32}) {
      bp::Tensor w = bp::from_vector(kW0, {2, 2}, dt).requires_grad_();
      auto opt = c.make({w});
      Reference ref = c.reference();
      std::vector<double> expected = kW0;
      for (int t = 1; t <= 5; ++t) {
        set_gradient(w);
        opt->step();
        ref(expected, t);
        const auto got = w.to_vector();
        for (std::size_t j = 0; j < got.size(); ++j)
          EXPECT_NEAR(got[j], expected[j], dt == bp::f64 ? 1e-12 : 2e-5 * (1 + std::abs(expected[j])))
              << c.name << " " << bp::dtype_name(dt) << " step " << t << " element " << j;
      }
      EXPECT_EQ(opt->steps(), 5);
    }
  }
}

// Worked by hand: C = 1/2 (w1^2 + w2^2), so g = w; w0 = (1, -2), lr 0.1, momentum 0.9.
TEST(Optimizers, HandComputedMomentumAndNesterovTwoSteps) {
  auto run = [](bool nesterov) {
    bp::Tensor w = bp::tensor({1, -2}, bp::f64).requires_grad_();
    bp::optim::SGD opt({w}, {.lr = 0.1, .momentum = 0.9, .nesterov = nesterov});
    for (int t = 0; t < 2; ++t) {
      w.set_grad(w.detach().clone());
      opt.step();
    }
    return w.to_vector();
  };
  // Momentum: b1 = g1 = (1, -2), w1 = (0.9, -1.8); b2 = 0.9 b1 + w1 = (1.8, -3.6), w2 = w1 - 0.1 b2 = (0.72,
  // -1.44).
  const auto m = run(false);
  EXPECT_NEAR(m[0], 0.72, 1e-15);
  EXPECT_NEAR(m[1], -1.44, 1e-15);
  // Nesterov: w1 = w0 - 0.1 (g1 + 0.9 b1) = (0.81, -1.62); b2 = 0.9 b1 + w1 = (1.71, -3.42);
  // w2 = w1 - 0.1 (w1 + 0.9 b2) = (0.5751, -1.1502).
  const auto n = run(true);
  EXPECT_NEAR(n[0], 0.5751, 1e-15);
  EXPECT_NEAR(n[1], -1.1502, 1e-15);
}

// Adam on C = w^2 / 2 from w = 1, lr 0.1: step 1 moves by lr (m_hat / sqrt(v_hat) = 1): w1 = 0.9.
// Step 2: g = 0.9, m = 0.18, v = 0.001809, m_hat = 0.18 / 0.19, v_hat = 0.001809 / 0.001999:
// w2 = 0.9 - 0.1 * 0.947368421 / 0.951290... = 0.800412...
TEST(Optimizers, HandComputedAdamTwoSteps) {
  bp::Tensor w = bp::tensor({1}, bp::f64).requires_grad_();
  bp::optim::Adam opt({w}, {.lr = 0.1});
  w.set_grad(w.detach().clone());
  opt.step();
  EXPECT_NEAR(w.item(), 0.9, 1e-8);
  w.set_grad(w.detach().clone());
  opt.step();
  const double expected = 0.9 - 0.1 * (0.18 / 0.19) / std::sqrt(0.001809 / 0.001999);
  EXPECT_NEAR(w.item(), expected, 1e-8);
  EXPECT_NEAR(w.item(), 0.800412, 1e-6);
}

TEST(Optimizers, SkipTensorsWithoutGradientAndZeroGrad) {
  bp::Tensor a = bp::ones({3}).requires_grad_(), b = bp::ones({2}).requires_grad_();
  bp::optim::Adam opt({a, b}, {.lr = 0.1});
  a.set_grad(bp::ones({3}));
  opt.step();
  EXPECT_LT(a.flat(0), 1.0);
  EXPECT_EQ(b.flat(0), 1.0);
  const auto st = opt.state();
  EXPECT_TRUE(st.contains("0.exp_avg"));
  EXPECT_FALSE(st.contains("1.exp_avg"));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  opt.step();  // nothing has a gradient: no change, but the step is counted
  EXPECT_EQ(opt.steps(), 2);
  EXPECT_EQ(opt.state().at("0.step").item(), 1.0);  // Adam's per-tensor count only advances with a gradient
}

namespace {
// Rosenbrock's valley f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1), gradients by autograd.
double rosenbrock(bp::optim::Optimizer& opt, const bp::Tensor& xy, int steps) {
  auto f = [&] {
    bp::Tensor x = bp::narrow(xy, 0, 1), y = bp::narrow(xy, 1, 1);
    bp::Tensor a = bp::rsub(x, 1.0), b = bp::sub(y, bp::mul(x, x));
    return bp::add(bp::mul(a, a), bp::mul(bp::mul(b, b), 100.0)).sum();
  };
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    f().backward();
    opt.step();
  }
  bp::NoGradGuard guard;
  return f().item();
}
}  // namespace

TEST(Optimizers, ConvergeOnRosenbrock) {
  struct Run {
    const char* name;
    std::function<std::unique_ptr<bp::optim::Optimizer>(bp::Tensors)> make;
    int steps;
  };
  const std::vector<Run> runs = {
      {"sgd momentum",
       [](bp::Tensors p) {
         return std::make_unique<bp::optim::SGD>(p, bp::optim::SGDOptions{.lr = 1e-3, .momentum = 0.9});
       },
       3000},
      {"adam",
       [](bp::Tensors p) { return std::make_unique<bp::optim::Adam>(p, bp::optim::AdamOptions{.lr = 0.02}); },
       3000},
      {"rmsprop",
       [](bp::Tensors p) {
         return std::make_unique<bp::optim::RMSprop>(p, bp::optim::RMSpropOptions{.lr = 5e-3});
       },
       3000},
      {"rprop",
       [](bp::Tensors p) {
         return std::make_unique<bp::optim::Rprop>(p, bp::optim::RpropOptions{.lr = 0.01});
       },
       3000},
  };
  for (const auto& r : runs) {
    bp::Tensor xy = bp::tensor({-1.2, 1.0}, bp::f64).requires_grad_();
    auto opt = r.make({xy});
    const double start = 24.2;  // f(-1.2, 1)
    const double end = rosenbrock(*opt, xy, r.steps);
    EXPECT_LT(end, 1e-3 * start) << r.name << " ended at (" << xy.flat(0) << ", " << xy.flat(1) << ")";
    EXPECT_NEAR(xy.flat(0), 1.0, 0.1) << r.name;
  }
}

// Resume: run 3 steps, save, restore into a fresh optimiser over copies of the parameters, run 4 more steps
// on both: the parameters must stay bit-identical.
TEST(Optimizers, StateRoundTripContinuesBitIdentically) {
  for (const auto& c : cases()) {
    for (bp::DType dt : {bp::f32, bp::f64}) {
      bp::Tensor w = bp::from_vector(kW0, {2, 2}, dt).requires_grad_();
      bp::Tensor unused = bp::ones({3}, dt).requires_grad_();
      auto opt = c.make({w, unused});
      opt->set_lr(opt->lr() * 0.5);  // the lr is part of the state
      for (int t = 0; t < 3; ++t) {
        set_gradient(w);
        opt->step();
      }
      const auto saved = opt->state();
      EXPECT_EQ(saved.at("step").item(), 3.0) << c.name;
      bp::Tensor w2 = w.detach().clone().requires_grad_();
      bp::Tensor unused2 = unused.detach().clone().requires_grad_();
      auto resumed = c.make({w2, unused2});
      resumed->load_state(saved);
      EXPECT_EQ(resumed->steps(), 3);
      EXPECT_EQ(resumed->lr(), opt->lr());
      for (int t = 0; t < 4; ++t) {
        set_gradient(w);
        set_gradient(w2);
        opt->step();
        resumed->step();
      }
      EXPECT_EQ(bp::max_abs_diff(w, w2), 0.0) << c.name << " " << bp::dtype_name(dt);
      // The saved state was a snapshot: later steps did not change it.
      for (const auto& [k, t] : resumed->state())
        if (saved.contains(k) && k.find("step") == std::string::npos && k != "lr") {
          EXPECT_GT(bp::max_abs_diff(t, saved.at(k)), 0.0) << c.name << " " << k;
        }
    }
  }
}

TEST(Optimizers, LoadStateValidatesAndLeavesOptimizerUnchanged) {
  bp::Tensor w = bp::ones({2, 3}).requires_grad_();
  bp::optim::SGD opt({w}, {.lr = 0.1, .momentum = 0.9});
  w.set_grad(bp::ones({2, 3}));
  opt.step();
  const auto good = opt.state();
  ASSERT_TRUE(good.contains("0.momentum_buffer"));

  auto bad = good;
  bad["3.momentum_buffer"] = bp::zeros({2, 3});
  bad["0.exp_avg"] = bp::zeros({2, 3});
  bad["step"] = bp::scalar(99, bp::f64);
  EXPECT_THAT([&] { opt.load_state(bad); },
              ::testing::ThrowsMessage<bp::ValueError>(AllOf(
                  HasSubstr("unexpected keys"), HasSubstr("0.exp_avg"), HasSubstr("3.momentum_buffer"))));
  bad = good;
  bad["0.momentum_buffer"] = bp::zeros({3, 2});
  EXPECT_THAT([&] { opt.load_state(bad); }, ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr(
                                                "'0.momentum_buffer' has shape [3, 2], expected [2, 3]")));
  bad = good;
  bad["0.momentum_buffer"] = bp::zeros({2, 3}, bp::f64);
  EXPECT_THROW(opt.load_state(bad), bp::DTypeError);
  bad = good;
  bad.erase("step");
  EXPECT_THAT([&] { opt.load_state(bad); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("no 'step' entry")));
  EXPECT_EQ(opt.steps(), 1);
  for (const auto& [k, t] : opt.state()) EXPECT_EQ(bp::max_abs_diff(t, good.at(k)), 0.0) << k;
}

TEST(Optimizers, RejectBadHyperparameters) {
  bp::Tensor w = bp::ones({2}).requires_grad_();
  using namespace bp::optim;
  EXPECT_THAT([&] { SGD({w}, {.lr = -1}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("learning rate")));
  EXPECT_THAT([&] { SGD({w}, {.nesterov = true}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("nesterov needs momentum > 0")));
  EXPECT_THAT([&] { Adam({w}, {.beta2 = 1.0}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("Adam: beta2 must be in [0, 1), got 1")));
  EXPECT_THAT(
      [&] { AdamW({w}, {.weight_decay = -0.1}); },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("AdamW: weight_decay must be finite and >= 0")));
  EXPECT_THAT([&] { RMSprop({w}, {.alpha = 1.5}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("alpha must be in [0, 1], got 1.5")));
  EXPECT_THAT([&] { Rprop({w}, {.eta_plus = 0.9}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("0 < eta_minus < 1 < eta_plus")));
  EXPECT_THAT([&] { SGD({bp::Tensor()}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("parameter 0 is an undefined tensor")));
  EXPECT_EQ(SGD({w}, {.lr = 0.1, .momentum = 0.9}).repr(),
            "SGD(lr=0.1, momentum=0.9, dampening=0, nesterov=false, weight_decay=0)");
  EXPECT_EQ(AdamW({w}).repr(), "AdamW(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01)");
}

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsTheNormBefore) {
  bp::Tensor a = bp::zeros({2}, bp::f64).requires_grad_(), b = bp::zeros({1}, bp::f64).requires_grad_();
  bp::Tensor none = bp::zeros({3}, bp::f64).requires_grad_();
  a.set_grad(bp::tensor({3, 0}, bp::f64));
  b.set_grad(bp::tensor({4}, bp::f64));
  const double norm = bp::optim::clip_grad_norm({a, b, none, a}, 1.0);  // a listed twice: counted once
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_NEAR(a.grad().flat(0), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().flat(0), 0.8, 1e-6);
  EXPECT_LE(std::hypot(a.grad().flat(0), b.grad().flat(0)), 1.0);
  // Below the threshold: untouched.
  EXPECT_NEAR(bp::optim::clip_grad_norm({a, b}, 10.0), 1.0, 1e-6);
  EXPECT_NEAR(b.grad().flat(0), 0.8, 1e-6);
  // Non-finite: reported, gradients left alone.
  b.set_grad(bp::tensor({NAN}, bp::f64));
  EXPECT_TRUE(std::isnan(bp::optim::clip_grad_norm({a, b}, 1.0)));
  EXPECT_NEAR(a.grad().flat(0), 0.6, 1e-6);
  EXPECT_THAT([&] { bp::optim::clip_grad_norm({a}, 0.0); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("max_norm must be > 0, got 0")));
}

// Large tensors are updated in chunks on several threads; the result must not depend on the thread count.
TEST(Optimizers, LargeTensorsAreThreadCountIndependent) {
  SKIP_WITHOUT_TWO_CPUS();
  const int threads_before = bp::get_num_threads();
  for (const auto& c : cases()) {
    auto train = [&](int threads) {
      bp::set_num_threads(threads);
      bp::Generator gen(5);
      bp::Tensor w = bp::randn({1200, 1000}, gen).requires_grad_();  // above the update's fork threshold
      auto opt = c.make({w});
      for (int t = 0; t < 3; ++t) {
        w.set_grad(bp::rand({1200, 1000}, gen, bp::f32, -1.0, 1.0));
        opt->step();
      }
      return w.detach();
    };
    const bp::Tensor one = train(1);
    EXPECT_TRUE(testutil::on_two_threads([&] { EXPECT_EQ(bp::max_abs_diff(one, train(2)), 0.0) << c.name; }))
        << c.name;
  }
  bp::set_num_threads(threads_before);
}
