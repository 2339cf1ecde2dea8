// backprop/config/make.hpp: the objects a configuration names, checked by their type and options.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/config/make.hpp>

namespace bp = backprop;
namespace config = backprop::config;

TEST(FromConfig, ArchitectureResolvesAutoInitByActivation) {
  config::Config c;
  c.model.layers = {16, 8};
  c.model.dropout = 0.25;
  const bp::io::Architecture relu = config::make_architecture(c, 4, 3);
  EXPECT_EQ(relu.inputs, 4);
  EXPECT_EQ(relu.hidden, (std::vector<std::int64_t>{16, 8}));
  EXPECT_EQ(relu.outputs, 3);
  EXPECT_EQ(relu.dropout, 0.25);
  EXPECT_EQ(relu.init, "kaiming_uniform");
  c.model.activation = "tanh";
  EXPECT_EQ(config::make_architecture(c, 4, 3).init, "xavier_uniform");
  c.model.init = "kaiming_normal";  // given: kept
  EXPECT_EQ(config::make_architecture(c, 4, 3).init, "kaiming_normal");
}

TEST(FromConfig, LossByNameAndTask) {
  using bp::data::Task;
  EXPECT_NE(dynamic_cast<bp::loss::CrossEntropy*>(config::make_loss("auto", Task::classification).get()),
            nullptr);
  EXPECT_NE(dynamic_cast<bp::loss::MSE*>(config::make_loss("auto", Task::regression).get()), nullptr);
  EXPECT_NE(dynamic_cast<bp::loss::SoftmaxMSE*>(config::make_loss("mse", Task::classification).get()),
            nullptr);
  EXPECT_NE(dynamic_cast<bp::loss::MSE*>(config::make_loss("mse", Task::regression).get()), nullptr);
  EXPECT_THROW(config::make_loss("hinge", Task::classification), bp::ConfigError);
}

TEST(FromConfig, OptimizerTypeAndOptions) {
  bp::Tensor w = bp::zeros({2, 2});
  w.requires_grad_();
  config::OptimizerConfig c;
  c.name = "nesterov";
  c.lr = 0.05;
  c.momentum = 0.8;
  c.weight_decay = 0.01;
  const auto sgd = config::make_optimizer(c, {w});
  const auto* s = dynamic_cast<bp::optim::SGD*>(sgd.get());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->lr(), 0.05);
  for (const char* name : {"sgd", "momentum", "adam", "adamw", "rmsprop"}) {
    c.name = name;
    EXPECT_NE(config::make_optimizer(c, {w}), nullptr) << name;
  }
  c.name = "adam";
  EXPECT_NE(dynamic_cast<bp::optim::Adam*>(config::make_optimizer(c, {w}).get()), nullptr);
  c.name = "adagrad";
  EXPECT_THROW(config::make_optimizer(c, {w}), bp::ConfigError);
}

TEST(FromConfig, ScheduleByText) {
  bp::Tensor w = bp::zeros({1});
  w.requires_grad_();
  config::OptimizerConfig c;
  const auto opt = config::make_optimizer(c, {w});
  c.schedule = "none";
  EXPECT_EQ(config::make_scheduler(c, *opt, 10), nullptr);
  c.schedule = "cosine";
  EXPECT_NE(dynamic_cast<bp::optim::CosineAnnealingLR*>(config::make_scheduler(c, *opt, 10).get()), nullptr);
  c.schedule = "step:3:0.5";
  EXPECT_NE(dynamic_cast<bp::optim::StepLR*>(config::make_scheduler(c, *opt, 10).get()), nullptr);
  c.schedule = "exponential";
  EXPECT_NE(dynamic_cast<bp::optim::ExponentialLR*>(config::make_scheduler(c, *opt, 10).get()), nullptr);
  c.schedule = "warmup:2";
  EXPECT_NE(dynamic_cast<bp::optim::LinearWarmup*>(config::make_scheduler(c, *opt, 10).get()), nullptr);
  c.schedule = "linear";
  EXPECT_THROW(config::make_scheduler(c, *opt, 10), bp::ConfigError);
}

TEST(FromConfig, LayerNetworkOnImagesUnflattensRowsFirst) {
  config::Config c;
  c.model.arch = "lenet5";
  const std::vector<config::LayerSpec> layers = config::network_layers(c.model);
  bp::Generator gen(1);
  const bp::io::Preprocessing images{.input = "image", .image_shape = {28, 28}};
  const auto net = config::make_layer_network(layers, 784, 10, images, gen);
  ASSERT_EQ(net->size(), layers.size() + 1);
  EXPECT_EQ((*net)[0]->repr(), "Unflatten(dim=1, sizes=[1, 28, 28])");
  bp::NoGradGuard no_grad;
  EXPECT_EQ(net->forward(bp::zeros({2, 784})).shape(), (bp::Shape{2, 10}));
  // The same convolutions on table rows have no image to work on.
  EXPECT_THROW(config::make_layer_network(layers, 784, 10, bp::io::Preprocessing{}, gen), bp::ConfigError);
}

TEST(FromConfig, LayerListRefusesTheDenseKeys) {
  EXPECT_NO_THROW(config::check_layer_list_keys({"train.epochs", "optimizer.lr"}, "cnn"));
  try {
    config::check_layer_list_keys({"train.epochs", "model.dropout"}, "cnn");
    ADD_FAILURE() << "model.dropout was accepted with a layer list";
  } catch (const bp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "model.dropout (--dropout) describes the dense layers of --arch mlp, but --arch is cnn"),
              std::string::npos)
        << e.what();
  }
}
