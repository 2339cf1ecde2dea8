// Tests that need something installed beyond the build (the Fashion-MNIST files, PyTorch, Chromium) state it
// with REQUIRE_INSTALLED. scripts/install-deps installs all of it, so by default a missing piece FAILS the
// test, naming the Debian package; a build configured with -DBACKPROP_TEST_DEPS_OPTIONAL=ON skips such tests
// instead.
#pragma once

#include <gtest/gtest.h>

#ifndef BACKPROP_TEST_DEPS_OPTIONAL
#define BACKPROP_TEST_DEPS_OPTIONAL 0
#endif

/// Ends the test when `present` is false: a failure by default, a skip when the dependencies were declared
/// optional at configure time. `package` is the Debian package, `what` the missing thing as the test sees it.
#define REQUIRE_INSTALLED(present, package, what)                                                  \
  do {                                                                                             \
    if (!(present)) {                                                                              \
      if (BACKPROP_TEST_DEPS_OPTIONAL)                                                             \
        GTEST_SKIP() << (what) << " is not installed (Debian package " << (package)                \
                     << "); skipped: BACKPROP_TEST_DEPS_OPTIONAL is ON";                           \
      else                                                                                         \
        GTEST_FAIL() << (what) << " is not installed: run scripts/install-deps (Debian package "   \
                     << (package)                                                                  \
                     << "), or configure with -DBACKPROP_TEST_DEPS_OPTIONAL=ON to skip this test"; \
    }                                                                                              \
  } while (false)
