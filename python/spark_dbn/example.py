"""`python -m spark_dbn.example`: a small DBN trained and scored from this package alone.

Synthetic rows near one of three binary prototypes (10% of the pixels flipped); a 16-8 network is
pre-trained, fine-tuned on the labels and scored, in a local Spark session made by spark_dbn.session().
"""
import random
import sys

from pyspark.sql import functions as F

import spark_dbn
from spark_dbn import DBN


def rows(n: int, cols: int = 16, classes: int = 3, seed: int = 7):
    rng = random.Random(seed)
    protos = [[rng.random() < 0.5 for _ in range(cols)] for _ in range(classes)]
    for i in range(n):
        y = rng.randrange(classes)
        yield i, [float(p != (rng.random() < 0.1)) for p in protos[y]], y


def main(master: str = "local[2]") -> float:
    spark = spark_dbn.session(master=master)
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.createDataFrame(list(rows(900)), "id long, features array<float>, label int")
    train, test = df.where("id < 600"), df.where("id >= 600")
    model = DBN(layers=[8], epochs=5, batchSize=20, numPartitions=2, labelCol="label", fineTuneEpochs=10,
                fineTuneLearningRate=0.2, seed=3).fit(train)
    acc = model.transform(test).select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    print(f"spark-dbn {spark_dbn.__version__}: DBN 16-8-3 on 600 rows, test accuracy {acc * 100:.1f}% on 300 rows")
    spark.stop()
    return acc


if __name__ == "__main__":
    main(*sys.argv[1:])
