#!/usr/bin/env bash
# scripts/gpu-check where it cannot check anything: no usable GPU gives exit 1 and "no NVIDIA GPU: ..." (with
# nvidia-smi missing, and with an nvidia-smi that fails as it does without a driver); a GPU but no build outputs
# gives exit 2 naming the missing file. The fake nvidia-smi comes first in PATH, so this holds on a GPU machine.
#   gpu_check_test.sh SCRIPT
set -u
script=$1
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
fail() { echo "FAIL: $1"; exit 1; }

mkdir "$fake/failing" "$fake/listing" "$fake/empty-build"
printf '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."\nexit 9\n' \
  > "$fake/failing/nvidia-smi"
printf '#!/bin/sh\necho "GPU 0: NVIDIA H200 (UUID: GPU-0)"\n' > "$fake/listing/nvidia-smi"
chmod +x "$fake/failing/nvidia-smi" "$fake/listing/nvidia-smi"

out=$(PATH="$fake/failing:$PATH" "$script" "$fake/empty-build" 2>&1)
rc=$?
[[ $rc -eq 1 && "$out" == *"no NVIDIA GPU: nvidia-smi -L failed: NVIDIA-SMI has failed"* ]] ||
  fail "failing nvidia-smi: exit $rc, output: $out"

if ! command -v nvidia-smi > /dev/null 2>&1; then
  out=$("$script" "$fake/empty-build" 2>&1)
  rc=$?
  [[ $rc -eq 1 && "$out" == *"no NVIDIA GPU: nvidia-smi is not installed"* ]] ||
    fail "no nvidia-smi: exit $rc, output: $out"
fi

out=$(PATH="$fake/listing:$PATH" "$script" "$fake/empty-build" 2>&1)
rc=$?
[[ $rc -eq 2 && "$out" == *"empty-build/tests/test_gpu is missing"* ]] ||
  fail "no build outputs: exit $rc, output: $out"
echo "ok"
