#!/usr/bin/env python3
"""Predict through Python against the command line on the 10,000 Fashion-MNIST test images (docs/python.md,
"Performance"). Best of 5 of each.
usage: PYTHONPATH=build/release/python python3 bench/python_predict.py BACKPROP_TOOL MODEL_FILE
"""
import subprocess
import sys
import time

import backprop as bp

IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def best(f, n=5):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    cli, path = sys.argv[1], sys.argv[2]
    model = bp.load_model(path)
    pixels = bp.read_idx(IMAGES)
    x = model.preprocess(pixels)
    rows = [
        ("model.predict_class(pixels)", best(lambda: model.predict_class(pixels))),
        ("bp.predict(model.module, x), x preprocessed", best(lambda: bp.predict(model.module, x))),
        ("load_model + read_idx + predict_class", best(lambda: bp.load_model(path).predict_class(bp.read_idx(IMAGES)))),
        ("backprop predict (the whole process)",
         best(lambda: subprocess.run([cli, "predict", "--model", path, "--input", IMAGES, "--output", "/dev/null",
                                      "--force"], check=True))),
    ]
    for name, ms in rows:
        print(f"{ms:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
