# The plain driver behind the README's quick start.
#   make test   install dependencies, configure, build, run the whole suite (ctest)
#   make demo   install dependencies, build, train the default network on Fashion-MNIST and write a report
#   make install  build, then install bin/backprop, the library, headers and CMake package under PREFIX
#               (default /usr/local, so `backprop` is on the PATH)
#   make asan   the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench  side-by-side benchmarks against PyTorch / LibTorch
#   make fuzz   libFuzzer runs over every file and config reader (FUZZ_SECONDS per target, default 600)
PRESET ?= release
JOBS ?= $(shell nproc)
BUILD := build/$(PRESET)
PREFIX ?= /usr/local

.PHONY: all deps configure build test demo install asan bench fuzz format clean

all: build

deps:
	scripts/install-deps

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 900

asan:
	$(MAKE) test PRESET=asan

demo: build
	scripts/demo $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench:
	scripts/install-deps --bench
	cmake --preset release -DBACKPROP_BUILD_BENCH=ON
	cmake --build build/release -j $(JOBS)
	scripts/bench build/release

FUZZ_SECONDS ?= 600
fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
