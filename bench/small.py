"""scripts/bench small, the data and the peers (run with var/bench-venv: scikit-learn).

    python small.py split DIR     scikit-learn's 8x8 digits (1,797 rows, shipped inside the package), scaled to
                                  [0, 1], a stratified 80/20 split: DIR/train.parquet, DIR/test.parquet
    python small.py score DIR     the peers on the same split, and the table: logistic regression on the raw
                                  pixels, scikit-learn's own pipeline (BernoulliRBM(100), batch 10, lr 0.06,
                                  10 iterations, PCD; then logistic regression), and on the features our runs
                                  wrote (DIR/features-*.parquet, from small_spark.py)

Every classifier is the same: scikit-learn's LogisticRegression with C = 6000 (scikit-learn's RBM example's,
nearly unregularised, as Spark ML's default regParam 0).
"""
import glob
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM

SEEDS = (1, 2, 3)


def classifier():
    return LogisticRegression(C=6000, max_iter=20000)


def split(out: str) -> None:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    for name, a, b in (("train", xtr, ytr), ("test", xte, yte)):
        table = pa.table({"id": pa.array(np.arange(len(b), dtype=np.int64)),
                          "features": pa.array(list(a), type=pa.list_(pa.float32())),
                          "label": pa.array(b.astype(np.int32))})
        pq.write_table(table, f"{out}/{name}.parquet")
    print(json.dumps({"train": len(ytr), "test": len(yte), "features": x.shape[1]}))


def read(path: str, column: str):
    t = pq.read_table(path).sort_by("id")
    return np.array(t.column(column).to_pylist(), dtype=np.float64), np.array(t.column("label").to_pylist())


def score(out: str) -> None:
    xtr, ytr = read(f"{out}/train.parquet", "features")
    xte, yte = read(f"{out}/test.parquet", "features")
    rows = []
    t0 = time.perf_counter()
    pixels = classifier().fit(xtr, ytr).score(xte, yte)
    rows.append(("pixels", "logistic regression on the 64 pixels", [pixels], time.perf_counter() - t0))
    accs, t0 = [], time.perf_counter()
    for seed in SEEDS:
        rbm = BernoulliRBM(n_components=100, learning_rate=0.06, batch_size=10, n_iter=10, random_state=seed).fit(xtr)
        accs.append(classifier().fit(rbm.transform(xtr), ytr).score(rbm.transform(xte), yte))
    rows.append(("sklearn", "scikit-learn BernoulliRBM(100) + LR", accs, (time.perf_counter() - t0) / len(SEEDS)))
    runs = json.load(open(f"{out}/runs.json"))
    ours = {}
    for run in runs:
        accs = []
        for seed in SEEDS:
            ftr, _ = read(f"{out}/features-{run['name']}-{seed}-train.parquet", "dbn_features")
            fte, _ = read(f"{out}/features-{run['name']}-{seed}-test.parquet", "dbn_features")
            accs.append(classifier().fit(ftr, ytr).score(fte, yte))
        ours[run["name"]] = float(np.mean(accs))
        rows.append((run["name"], run["what"], accs, run["seconds"]))
    print(f"{'run':<10} {'what':<58} {'accuracy (seeds 1-3)':<26} {'mean':>6} {'s/fit':>6}")
    for name, what, accs, secs in rows:
        print(f"{name:<10} {what:<58} {' '.join(f'{a:.4f}' for a in accs):<26} {np.mean(accs):>6.4f} {secs:>6.1f}")
    sk = float(np.mean(rows[1][2]))
    d = ours["defaults"]
    print(f"RESULT small dbn_acc={d:.4f} sklearn_acc={sk:.4f} pixels_acc={pixels:.4f} "
          f"gap_points={100 * (sk - d):.2f}")


if __name__ == "__main__":
    {"split": split, "score": score}[sys.argv[1]](sys.argv[2])
