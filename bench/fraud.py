"""scripts/bench fraud, the data and the peers (run with var/bench-venv's Python: scikit-learn, numpy).

    python fraud.py split CSV DIR     the ULB set, time-ordered: DIR/train.csv (the earlier 60%) and DIR/test.csv,
                                      each with an `id` column (the row's line in CSV) before the original columns
    python fraud.py score DIR         IsolationForest and PCA reconstruction error on the same split and columns,
                                      and the DBN's scores from DIR/dbn.json; the table and the RESULT line
"""
import csv
import json
import sys
import time

import numpy as np

TRAIN_SHARE = 0.6
# V1..V28 and Amount: `Time` orders the split and is not a feature (a model of it would learn the clock).
FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def split(path: str, out: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    times = [float(r[0]) for r in body]
    if any(b < a for a, b in zip(times, times[1:])):
        raise SystemExit(f"{path}: rows are not in time order")
    cut = int(len(body) * TRAIN_SHARE)
    for name, part, first in (("train", body[:cut], 0), ("test", body[cut:], cut)):
        with open(f"{out}/{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id"] + header)
            w.writerows([first + i] + r for i, r in enumerate(part))
    frauds = sum(r[-1].strip('"') == "1" for r in body[cut:])
    print(json.dumps({"train_rows": cut, "test_rows": len(body) - cut, "test_frauds": frauds}))


def load(path: str):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        cols = [header.index(c) for c in FEATURES]
        label = header.index("Class")
        data = [(row[0], [row[c] for c in cols], row[label]) for row in r]
    ids = np.array([int(d[0]) for d in data])
    x = np.array([d[1] for d in data], dtype=np.float64)
    y = np.array([int(d[2].strip('"')) for d in data])
    return ids, x, y


def metrics(y, s):
    from sklearn.metrics import average_precision_score, roc_auc_score
    top = np.argsort(-s, kind="stable")[:100]
    return {"auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s)), "p100": float(y[top].mean())}


def score(out: str) -> None:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

    _, xtr, _ = load(f"{out}/train.csv")
    ids, xte, yte = load(f"{out}/test.csv")
    rows = []
    # The peers see the columns standardised by the training part's statistics, as the DBN does.
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(xtr)
    ztr, zte = scaler.transform(xtr), scaler.transform(xte)
    forest = IsolationForest(n_estimators=200, random_state=0, n_jobs=2).fit(ztr)
    s = -forest.score_samples(zte)
    rows.append(("IsolationForest (200 trees)", metrics(yte, s), time.perf_counter() - t0))
    t0 = time.perf_counter()
    pca = PCA(n_components=10, random_state=0).fit(ztr)
    rec = pca.inverse_transform(pca.transform(zte))
    s = ((zte - rec) ** 2).sum(axis=1)
    rows.append(("PCA (10) reconstruction error", metrics(yte, s), time.perf_counter() - t0))
    with open(f"{out}/dbn.json") as f:
        dbn = json.load(f)
    order = np.argsort(np.array(dbn["id"]))
    dbn_ids = np.array(dbn["id"])[order]
    if not np.array_equal(dbn_ids, np.sort(ids)):
        raise SystemExit("the DBN's scores are not of the test rows")
    back = np.argsort(np.argsort(ids))
    for key, name in (("free_energy", "DBN over Spark: free energy"), ("reconstruction_error", "DBN over Spark: reconstruction error")):
        s = np.array(dbn[key])[order][back]
        rows.append((name, metrics(yte, s), dbn["seconds"]))
    print(f"{'scorer':40} {'ROC-AUC':>8} {'avg prec':>9} {'P@100':>6} {'seconds':>8}")
    for name, m, secs in rows:
        print(f"{name:40} {m['auc']:8.4f} {m['ap']:9.4f} {m['p100']:6.2f} {secs:8.1f}")
    print(f"({len(yte):,} test rows, {int(yte.sum())} frauds; DBN seconds: training and scoring over Spark, JVM start excluded)")
    forest_m, pca_m, ours = rows[0][1], rows[1][1], rows[2][1]
    best = max(forest_m["ap"], pca_m["ap"])
    print(f"RESULT fraud ap={ours['ap']:.4f} auc={ours['auc']:.4f} iforest_ap={forest_m['ap']:.4f} pca_ap={pca_m['ap']:.4f} "
          f"ap_ratio={ours['ap'] / best:.2f}")


if __name__ == "__main__":
    {"split": lambda: split(sys.argv[2], sys.argv[3]), "score": lambda: score(sys.argv[2])}[sys.argv[1]]()
