"""scripts/bench ingest: 200,000 x 784 float features move from Spark (local[2], one cached
DataFrame, 2 partitions) into (a) our sidecars as Float32 arrays by the real transform path and
(b) Python workers by PySpark's own Arrow path (mapInArrow), five passes each, alternated, best kept.
Ends with: RESULT ingest mb_per_s=<ours> pyspark_ratio=<ours/pyspark>"""
import sys
import time

import numpy as np
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_dbn import DBNModel

model, rows, jar = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spark = (SparkSession.builder.master("local[2]").appName("bench ingest")
         .config("spark.ui.enabled", "false").config("spark.jars", jar).config("spark.driver.memory", "6g")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4096")
         .getOrCreate())
df = (spark.range(0, rows, 1, 2)
      .select(F.array_repeat((F.col("id") % 101 / 101.0).cast("float"), 784).alias("features")).cache())
assert df.count() == rows
mb = rows * 784 * 4 / 1e6


def consume(batches):
    n = 0
    total = 0.0
    for b in batches:
        # The values as one float32 array, as our sidecar gets them.
        values = b.column(0).flatten().to_numpy(zero_copy_only=False)
        total += float(values[0]) if len(values) else 0.0
        n += b.num_rows
    yield pa.RecordBatch.from_pydict({"n": [n]})


def pyspark_once():
    t0 = time.perf_counter()
    n = df.mapInArrow(consume, "n long").agg(F.sum("n")).collect()[0][0]
    assert n == rows, n
    return time.perf_counter() - t0


# The real transform path with a model whose compute is negligible (784 -> 1).
scorer = DBNModel.fromSnapshot(model).setProbabilityCol("").setPredictionCol("").setBatchRows(4096)


def ours_once():
    t0 = time.perf_counter()
    n = scorer.transform(df).agg(F.count(F.lit(1))).collect()[0][0]
    assert n == rows, n
    return time.perf_counter() - t0


# Alternated, not one path's passes after the other's: the JVM compiles as it goes (both paths share
# the cached scan and Spark's task machinery), and this machine clears fresh pages slowly after
# idling, so whichever path ran second would have had a warmer JVM and machine. Five passes: both
# paths still got faster in the third (PySpark's 2.3, 1.1, 1.0, 0.9, 0.8 s), and each pass is listed.
PASSES = 5
paths = [("ours", ours_once), ("pyspark", pyspark_once)]
times = {name: [] for name, _ in paths}
for _ in range(PASSES):
    for name, f in paths:
        times[name].append(f())
results = {name: min(ts) for name, ts in times.items()}

print(f"{rows:,} rows x 784 float32 = {mb:,.0f} MB from a cached DataFrame, local[2], 2 partitions, batches of 4096 rows")
print(f"| path | seconds, passes 1-{PASSES} (alternated) | best | MB/s | x pyspark |")
print("| --- | --- | ---: | ---: | ---: |")
for name, label in [("ours", "ours: Arrow FixedSizeList<Float32> over gRPC to the Node sidecar"),
                    ("pyspark", "PySpark mapInArrow to Python workers")]:
    s = results[name]
    print(f"| {label} | {', '.join(f'{t:.2f}' for t in times[name])} | {s:.2f} | {mb / s:,.0f} | {results['pyspark'] / s:.2f} |")
ours = mb / results["ours"]
print(f"RESULT ingest mb_per_s={ours:.0f} pyspark_ratio={results['pyspark'] / results['ours']:.2f}")
spark.stop()
