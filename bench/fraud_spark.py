"""scripts/bench fraud, the DBN over Spark (run with the project's Python, .venv: PySpark and spark_dbn).

    python fraud_spark.py DIR    trains on DIR/train.csv, scores DIR/test.csv, writes DIR/dbn.json

A Gaussian-visible RBM (29 -> 16) on the raw columns V1..V28 and Amount: the model standardises them
with the statistics Spark measures in training. Labels are not used in training.
"""
import json
import sys
import time

import spark_dbn
from spark_dbn import DBN

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def main(out: str) -> None:
    spark = spark_dbn.session()
    spark.sparkContext.setLogLevel("WARN")
    read = spark.read.option("header", "true").option("inferSchema", "true").csv
    train, test = read(f"{out}/train.csv"), read(f"{out}/test.csv")
    train.cache().count()
    t0 = time.perf_counter()
    model = DBN(inputCols=FEATURES, visibleUnits="gaussian", layers=[16], epochs=10, batchSize=100,
                learningRate="0.01", numPartitions=2).fit(train)
    fit_s = time.perf_counter() - t0
    model.setFreeEnergyCol("free_energy")
    model.setReconstructionErrorCol("reconstruction_error")
    t0 = time.perf_counter()
    rows = model.transform(test).select("id", "free_energy", "reconstruction_error").collect()
    score_s = time.perf_counter() - t0
    with open(f"{out}/dbn.json", "w") as f:
        json.dump({"id": [r[0] for r in rows], "free_energy": [r[1] for r in rows],
                   "reconstruction_error": [r[2] for r in rows], "seconds": fit_s + score_s,
                   "fit_seconds": fit_s, "score_seconds": score_s}, f)
    print(json.dumps({"fit_seconds": round(fit_s, 1), "score_seconds": round(score_s, 1), "rows": len(rows)}))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
