import os
import tempfile

import numpy as np
import pytest

import spark_dbn


@pytest.fixture(scope="session")
def spark():
    # One Spark application for every test (the suite's cost is mostly its start); its own warehouse.
    warehouse = tempfile.mkdtemp(prefix="spark-dbn-py-")
    from pyspark.sql import SparkSession
    builder = (SparkSession.builder.master("local[2]").appName("spark-dbn pytest")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.warehouse.dir", os.path.join(warehouse, "warehouse"))
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1"))
    s = spark_dbn.session(builder)
    yield s
    s.stop()


def prototypes(rows: int, cols: int, classes: int, seed: int):
    """Binary rows near one of `classes` random prototypes (10% of pixels flipped), and their class."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, cols)) < 0.5
    labels = rng.integers(0, classes, rows)
    flips = rng.random((rows, cols)) < 0.1
    x = np.logical_xor(protos[labels], flips).astype(np.float32)
    return x, labels


@pytest.fixture(scope="session")
def digits(spark):
    """600 training and 300 test rows of 16 binary features in 3 classes: (train, test) DataFrames."""
    x, y = prototypes(900, 16, 3, seed=7)
    rows = [(i, [float(v) for v in x[i]], int(y[i])) for i in range(900)]
    df = spark.createDataFrame(rows, "id long, features array<float>, label int")
    return df.where("id < 600").cache(), df.where("id >= 600").cache()
