"""The PySpark API end to end: a DBN and a logistic regression on its features, as one Pipeline,
on MNIST digits (scripts/pyspark-example prepares the data and runs this with the project's Python).

    python pipeline.py TRAIN.parquet TEST.parquet [ROWS]
"""
import sys

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.sql import functions as F

import spark_dbn
from spark_dbn import DBN


def main(train_path: str, test_path: str, rows: int) -> None:
    spark = spark_dbn.session()
    spark.sparkContext.setLogLevel("WARN")
    train = spark.read.parquet(train_path).limit(rows)
    test = spark.read.parquet(test_path)
    dbn = DBN(layers=[500], epochs=5, batchSize=100, numPartitions=2)
    lr = LogisticRegression(featuresCol="dbn_features", labelCol="label", maxIter=100)
    model = Pipeline(stages=[dbn, lr]).fit(train)
    scored = model.transform(test)
    accuracy = scored.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    rounds = model.stages[0].roundsFrame()
    print(f"pipeline: DBN 784-500 (unsupervised, {rounds.select('round').distinct().count()} rounds) + logistic regression, "
          f"trained on {rows:,} digits: test accuracy {accuracy * 100:.2f}% on {scored.count():,} digits")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10000)
