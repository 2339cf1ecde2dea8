#!/usr/bin/python3
"""`backprop train` with only --data/--target against scikit-learn's default MLP, on the same splits.

For each data set and split seed: a seeded, stratified (classification) 80/20 split is written to train.csv and
test.csv; scikit-learn fits StandardScaler + MLPClassifier() / MLPRegressor() (defaults, random_state = the
seed) on train.csv; backprop runs

    backprop train --data train.csv --target target --test-data test.csv [--task regression]

(it standardises the features itself) and reports test accuracy or R^2 in its --json summary. Both score the
same test.csv. The data sets are the small tables Debian's python3-sklearn ships (iris, wine, breast_cancer,
diabetes).

    bench/sklearn_defaults.py --backprop build/release/tools/backprop/backprop            # print the table
    bench/sklearn_defaults.py --backprop ... --check                                      # exit 1 if behind
    bench/sklearn_defaults.py --backprop ... -- --epochs 100                               # extra train flags

--check fails when, on some data set, backprop's mean over the seeds is below scikit-learn's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import warnings

try:
    import numpy as np
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError as e:
    sys.exit(f"sklearn_defaults.py: needs scikit-learn ({e}); install the Debian package python3-sklearn "
             "(scripts/install-deps does)")

DATASETS = {
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
    # Not in the default list (slower): a made 1,000-row table, and 1,797 rows, above the small-table size.
    "made_1000": (lambda return_X_y: datasets.make_classification(
        n_samples=1000, n_features=20, n_informative=6, n_classes=3, random_state=0), "classification"),
    "digits": (datasets.load_digits, "classification"),
}
DEFAULT_DATASETS = "iris,wine,breast_cancer,diabetes"


def write_csv(path, x, y):
    names = [f"x{i}" for i in range(x.shape[1])] + ["target"]
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row, t in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + "," + (str(int(t)) if isinstance(t, (np.integer, int))
                                                                  else repr(float(t))) + "\n")


def sklearn_score(task, x_train, y_train, x_test, y_test, seed):
    model = MLPClassifier(random_state=seed) if task == "classification" else MLPRegressor(random_state=seed)
    pipe = make_pipeline(StandardScaler(), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the defaults stop at max_iter=200; that is the point
        pipe.fit(x_train, y_train)
    return pipe.score(x_test, y_test)  # accuracy, or R^2


def backprop_score(binary, task, folder, extra):
    cmd = [binary, "train", "--data", os.path.join(folder, "train.csv"), "--target", "target", "--test-data",
           os.path.join(folder, "test.csv")]
    if task == "regression":
        cmd += ["--task", "regression"]
    cmd += extra + ["--out", os.path.join(folder, "run"), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"sklearn_defaults.py: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    test = json.loads(done.stdout)["test"]
    with open(os.path.join(folder, "run", "config.toml"), "rb") as f:  # the effective configuration
        config = tomllib.load(f)
    train = config["train"]
    used = f"batch {train['batch_size']}, {train['epochs']} epochs, val_split {config['data']['val_split']}"
    if train["early_stopping"]:
        used += f", early stopping {train['early_stopping']}"
    return (test["accuracy"] if task == "classification" else test["r2"]), used


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backprop", required=True, help="the backprop binary")
    ap.add_argument("--datasets", default=DEFAULT_DATASETS, help="comma-separated: " + ", ".join(DATASETS))
    ap.add_argument("--seeds", default="0,1", help="split seeds, comma-separated")
    ap.add_argument("--check", action="store_true", help="exit 1 when backprop's mean is below scikit-learn's")
    ap.add_argument("extra", nargs="*", help="flags added to backprop train (after --)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    behind = []
    print(f"{'data set':14} {'rows':>5} {'seed':>4} {'metric':>8} {'sklearn':>8} {'backprop':>8}")
    for name in args.datasets.split(","):
        if name not in DATASETS:
            sys.exit(f"sklearn_defaults.py: unknown data set '{name}'; expected one of {', '.join(DATASETS)}")
        load, task = DATASETS[name]
        x, y = load(return_X_y=True)
        ours, theirs = [], []
        for seed in seeds:
            x_train, x_test, y_train, y_test = train_test_split(
                x, y, test_size=0.2, random_state=seed, stratify=y if task == "classification" else None)
            with tempfile.TemporaryDirectory(prefix="bp-sklearn-") as folder:
                write_csv(os.path.join(folder, "train.csv"), x_train, y_train)
                write_csv(os.path.join(folder, "test.csv"), x_test, y_test)
                s = sklearn_score(task, x_train, y_train, x_test, y_test, seed)
                b, used = backprop_score(args.backprop, task, folder, args.extra)
            theirs.append(s)
            ours.append(b)
            metric = "accuracy" if task == "classification" else "R^2"
            print(f"{name:14} {len(x):5d} {seed:4d} {metric:>8} {s:8.4f} {b:8.4f}  {used}", flush=True)
        mean_s, mean_b = float(np.mean(theirs)), float(np.mean(ours))
        print(f"{name:14} {len(x):5d} {'mean':>4} {'':8} {mean_s:8.4f} {mean_b:8.4f}", flush=True)
        if mean_b < mean_s:
            behind.append(f"{name}: backprop {mean_b:.4f} < scikit-learn {mean_s:.4f} (mean over seeds {seeds})")
    if args.check and behind:
        print("behind scikit-learn's defaults:\n  " + "\n  ".join(behind), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
