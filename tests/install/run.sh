#!/bin/sh
# Installs backprop from a build tree into a temporary prefix, then builds and runs a separate CMake project that
# finds it with find_package(backprop CONFIG REQUIRED): the test of the installed headers, library and package
# files. Called by tests/CMakeLists.txt as:  run.sh SOURCE_DIR BINARY_DIR CMAKE_COMMAND
# BINARY_DIR must be built (as it is when ctest runs after the build): cmake --install copies what is there.
set -eu

if [ $# -ne 3 ]; then
  echo "usage: $0 SOURCE_DIR BINARY_DIR CMAKE_COMMAND" >&2
  exit 2
fi
src=$1
bin=$2
cmake=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/backprop-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "== install $bin into $work/prefix"
"$cmake" --install "$bin" --prefix "$work/prefix"

for f in include/backprop/backprop.hpp include/backprop/tensor.hpp include/backprop/version.hpp; do
  if [ ! -f "$work/prefix/$f" ]; then
    echo "install test: $f is missing from the installed tree" >&2
    exit 1
  fi
done

if [ -x "$bin/tools/backprop/backprop" ]; then  # the tool was built: `make install` puts it in bin/
  if ! "$work/prefix/bin/backprop" --version; then
    echo "install test: bin/backprop is missing from the installed tree or does not run" >&2
    exit 1
  fi
fi

echo "== configure the consumer project"
"$cmake" -S "$src/tests/install/consumer" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix"

echo "== build it"
"$cmake" --build "$work/build" -j 2

echo "== run it"
"$work/build/app"
