"""scripts/bench small, the DBN over Spark (run with the project's Python, .venv: PySpark and spark_dbn).

    python small_spark.py DIR     fits a DBN of one hidden layer of 100 on DIR/train.parquet as a newcomer
                                  would (epochs 10, every other param at its default), for seeds 1-3, and
                                  writes the features of the train and test rows; then the same with the
                                  settings named in RUNS, to show which matter. DIR/runs.json lists the runs.
"""
import json
import sys
import time

import spark_dbn
from spark_dbn import DBN

# name, what, the params besides layers, epochs and seed. The training frame has 2 partitions (local[2]'s default
# parallelism, what spark.createDataFrame gives a newcomer), so the defaults train 2 replicas.
RUNS = [
    ("defaults", "DBN(layers=[100], epochs=10), all else default (2 replicas)", {}),
    ("one", "... numPartitions=1 (one process)", {"numPartitions": 1}),
    ("four", "... numPartitions=4", {"numPartitions": 4}),
    ("batch10", "... batchSize=10 (2 replicas)", {"batchSize": 10}),
]


def main(out: str) -> None:
    spark = spark_dbn.session()
    spark.sparkContext.setLogLevel("WARN")
    train = spark.read.parquet(f"{out}/train.parquet").repartition(2).cache()
    test = spark.read.parquet(f"{out}/test.parquet").cache()
    train.count(), test.count()
    runs = []
    for name, what, params in RUNS:
        seconds = 0.0
        for seed in (1, 2, 3):
            t0 = time.perf_counter()
            model = DBN(layers=[100], epochs=10, seed=seed, **params).fit(train)
            seconds += time.perf_counter() - t0
            for part, df in (("train", train), ("test", test)):
                model.setOutputType("array").transform(df).select("id", "label", "dbn_features").write.mode("overwrite") \
                    .parquet(f"{out}/features-{name}-{seed}-{part}.parquet")
        runs.append({"name": name, "what": what, "seconds": seconds / 3})
    json.dump(runs, open(f"{out}/runs.json", "w"))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
