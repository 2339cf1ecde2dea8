// The shape-chosen convolution loops of src/kernels/conv_loops.inl against plain loops written from the
// definition (tests/util/conv_reference.hpp), in f64 and f32, outputs and weight gradients, then gradcheck and
// gradgradcheck on a shape each takes:
// - the direct loops of single-channel groups (a first layer on images, depthwise convolutions), for the
//   shapes that take them (rows of at least 64 bytes): several channel blocks, kernels wider than tall,
//   paddings on one side only, groups;
// - the broadcast loops (a vector of output channels per pixel, for several input channels and at least 64
//   bytes of output channels per group): LeNet-5's and the BN CNN's second layers, output channels that leave
//   part of a vector or fill more than one block of vectors, rows longer than a tile, rows of three pixels,
//   kernels wider than a tile's taps, one-sided padding, groups.
#include "kernels/conv_loops.hpp"

#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "util/conv_reference.hpp"

namespace bp = backprop;

namespace {

using testutil::ConvCase;

enum class Path { direct, broadcast };

struct PathCase {
  Path path;
  ConvCase c;
};

// The direct loops' with one input channel per group (c = groups), then the broadcast loops'.
std::vector<PathCase> cases() {
  return {
      {Path::direct, {"lenet_first_layer", 2, 1, 1, 28, 28, 6, 5, 5, 2, 2}},
      {Path::direct, {"many_filters_two_channel_blocks", 2, 1, 1, 20, 33, 20, 3, 3, 1, 1}},
      {Path::direct, {"wide_kernel_pad_columns_only", 3, 1, 1, 9, 40, 3, 2, 7, 0, 3}},
      {Path::direct, {"depthwise", 2, 3, 3, 17, 19, 3, 3, 3, 1, 1}},
      {Path::direct, {"two_filters_per_group_row_of_one_vector", 2, 2, 2, 6, 16, 4, 3, 1, 0, 0}},
      {Path::broadcast, {"lenet_second_layer", 3, 1, 6, 14, 14, 16, 5, 5, 0, 0}},
      {Path::broadcast, {"bn_cnn_second_layer", 2, 1, 32, 14, 14, 64, 3, 3, 0, 0}},
      {Path::broadcast, {"same_padding_part_vector", 2, 1, 3, 10, 11, 20, 3, 3, 1, 1}},
      {Path::broadcast, {"several_channel_blocks_long_rows", 2, 1, 2, 6, 45, 80, 3, 3, 1, 1}},
      {Path::broadcast, {"wide_kernel_pad_columns_only", 2, 1, 3, 8, 20, 16, 2, 9, 0, 4}},
      {Path::broadcast, {"rows_of_three_pixels", 2, 1, 4, 3, 5, 16, 3, 3, 0, 0}},
      {Path::broadcast, {"groups", 2, 2, 4, 7, 9, 32, 3, 3, 1, 1}},
  };
}

void check(const ConvCase& c, Path path, bp::DType dtype, double tolerance) {
  SCOPED_TRACE(c.name + (dtype == bp::f32 ? " f32" : " f64"));
  const bp::kernels::ConvGeom g = testutil::conv_geom(c);
  const std::size_t elem = bp::dtype_size(dtype);
  // the path under test (the direct loops come first where both would fit)
  ASSERT_EQ(bp::kernels::direct_conv_fits(g, elem), path == Path::direct);
  if (path == Path::broadcast) {
    ASSERT_TRUE(bp::kernels::bcast_conv_fits(g, elem));
  }
  testutil::expect_conv_equals_plain_loops(c, dtype, tolerance);
}

TEST(Conv2dLoops, DirectAndBroadcastEqualPlainLoops) {
  for (const auto& [path, c] : cases()) {
    check(c, path, bp::f64, 1e-12);
    check(c, path, bp::f32, 2e-5);
  }
}

TEST(Conv2dDirect, TakenOnlyWhereItFits) {
  ConvCase c{"", 1, 1, 1, 8, 28, 6, 5, 5, 2, 2};
  EXPECT_TRUE(bp::kernels::direct_conv_fits(testutil::conv_geom(c), 4));
  EXPECT_TRUE(bp::kernels::direct_wgrad_fits(testutil::conv_geom(c), 4));
  c.o = 32;  // many filters: the weight gradient takes the GEMM
  EXPECT_TRUE(bp::kernels::direct_conv_fits(testutil::conv_geom(c), 4));
  EXPECT_FALSE(bp::kernels::direct_wgrad_fits(testutil::conv_geom(c), 4));
  c.w = 12;  // rows of 48 bytes in f32, 96 in f64
  EXPECT_FALSE(bp::kernels::direct_conv_fits(testutil::conv_geom(c), 4));
  EXPECT_TRUE(bp::kernels::direct_conv_fits(testutil::conv_geom(c), 8));
  bp::kernels::ConvGeom two_channels = testutil::conv_geom({"", 1, 1, 1, 8, 28, 6, 5, 5, 2, 2});
  two_channels.c = 2;
  EXPECT_FALSE(bp::kernels::direct_conv_fits(two_channels, 4));
}

TEST(Conv2dBroadcast, TakenOnlyWhereItFits) {
  ConvCase c{"", 1, 1, 6, 14, 14, 16, 5, 5, 0, 0};
  EXPECT_TRUE(bp::kernels::bcast_conv_fits(testutil::conv_geom(c), 4));
  c.o = 12;  // 48 bytes of f32 output channels: less than a vector; 96 bytes of f64
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(testutil::conv_geom(c), 4));
  EXPECT_TRUE(bp::kernels::bcast_conv_fits(testutil::conv_geom(c), 8));
  c = {"", 1, 1, 1, 14, 14, 16, 5, 5, 0, 0};  // one input channel: the direct loops
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(testutil::conv_geom(c), 4));
  c = {"", 1, 1, 6, 14, 14, 16, 1, 1, 0, 0};  // pointwise: the GEMM on the input itself
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(testutil::conv_geom(c), 4));
  bp::kernels::ConvGeom strided = testutil::conv_geom({"", 1, 1, 6, 14, 14, 16, 3, 3, 1, 1});
  strided.sh = strided.sw = 2;
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(strided, 4));
  EXPECT_EQ(bp::kernels::bcast_pad(20, 4), 32);
  EXPECT_EQ(bp::kernels::bcast_pad(20, 8), 24);
}

// gradcheck and gradgradcheck (f64) of conv2d with bias and padding 1 on shapes each path takes.
TEST(Conv2dLoops, GradcheckAndGradgradcheck) {
  const bp::kernels::ConvGeom direct{.n = 1,
                                     .c = 2,
                                     .h = 3,
                                     .w = 8,
                                     .o = 4,
                                     .kh = 3,
                                     .kw = 2,
                                     .ph = 1,
                                     .pw = 1,
                                     .groups = 2,
                                     .oh = 3,
                                     .ow = 9};
  const bp::kernels::ConvGeom broadcast{
      .n = 2, .c = 2, .h = 4, .w = 5, .o = 8, .kh = 3, .kw = 2, .ph = 1, .pw = 1, .oh = 4, .ow = 6};
  ASSERT_TRUE(bp::kernels::direct_wgrad_fits(direct, 8));
  ASSERT_TRUE(bp::kernels::bcast_conv_fits(broadcast, 8));
  bp::Generator gen(2);
  for (const bp::kernels::ConvGeom& g : {direct, broadcast}) {
    bp::Tensor x = bp::randn(g.input_shape(), gen, bp::f64).requires_grad_();
    bp::Tensor w = bp::randn(g.weight_shape(), gen, bp::f64).requires_grad_();
    bp::Tensor b = bp::randn({g.o}, gen, bp::f64).requires_grad_();
    auto fn = [&g](const bp::Tensors& in) {
      return bp::conv2d(in[0], in[1], in[2], 1, bp::Size2(1, 1), 1, g.groups);
    };
    EXPECT_TRUE(bp::gradcheck(fn, {x, w, b}).ok) << g.c << " channels";
    EXPECT_TRUE(bp::gradgradcheck(fn, {x, w, b}).ok) << g.c << " channels";
  }
}

}  // namespace
