// The default network of `backprop train` on the full Fashion-MNIST, written against the library:
// 784-256-128-10, ReLU, dropout 0.2, Adam (lr 0.001) with a cosine learning-rate schedule, batches of 128,
// 60,000 training images (10% held out for validation), scored on the 10,000 test images.
//
//   build/release/examples/example_fashion_mnist [epochs] [threads] [data-dir]
#include <backprop/backprop.hpp>
#include <chrono>
#include <cstdio>
#include <string>

namespace bp = backprop;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 30;
  const int threads = argc > 2 ? std::stoi(argv[2]) : bp::get_num_threads();
  const std::string dir = argc > 3 ? argv[3] : bp::data::FashionMNIST::default_dir;
  bp::set_num_threads(threads);

  try {
    const auto all = bp::data::FashionMNIST::load(dir, bp::data::Split::train);
    const auto test = bp::data::FashionMNIST::load(dir, bp::data::Split::test);
    const auto [train, validation] = bp::data::train_validation_split(all, 0.1, 1);

    bp::Generator gen(42);
    bp::nn::Sequential net{bp::nn::Linear(784, 256, gen),
                           bp::nn::ReLU(),
                           bp::nn::Dropout(0.2, gen),
                           bp::nn::Linear(256, 128, gen),
                           bp::nn::ReLU(),
                           bp::nn::Dropout(0.2, gen),
                           bp::nn::Linear(128, 10, gen, {.nonlinearity = bp::nn::Nonlinearity::linear})};
    bp::optim::Adam opt(net.parameters(), {.lr = 0.001});
    bp::optim::CosineAnnealingLR schedule(opt, epochs);

    struct Progress : bp::train::Callback {
      bool on_epoch_end(const bp::train::EpochMetrics& m) override {
        std::printf(
            "epoch %3lld  lr %.4f  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %.2f s (%.0f "
            "samples/s)\n",
            static_cast<long long>(m.epoch), m.lr, m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy,
            m.seconds, m.samples_per_second);
        std::fflush(stdout);
        return false;
      }
    } progress;

    const auto start = std::chrono::steady_clock::now();
    bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train,
                   {.epochs = epochs,
                    .batch_size = 128,
                    .seed = 7,
                    .validation = &validation,
                    .scheduler = &schedule,
                    .callbacks = {&progress}});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto result = bp::train::evaluate(net, bp::loss::CrossEntropy{}, test);
    std::printf("test accuracy %.4f  test loss %.4f  (%d epochs, %.1f s, %.2f s per epoch, %d threads)\n",
                result.accuracy, result.loss, epochs, seconds, seconds / epochs, threads);
    return 0;
  } catch (const bp::Error& e) {
    std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
    return 1;
  }
}
