"""The DBN over Spark Connect: the same `from spark_dbn import DBN` as in classic mode, through a real client."""
import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import functions as F, is_remote

from spark_dbn import DBN, DBNError, DBNModel

COLS = [f"x{j}" for j in range(16)]


@pytest.fixture(scope="module")
def data(remote):
    """600 training and 300 test rows of 16 binary columns near one of 3 prototypes, and their class."""
    rng = np.random.default_rng(7)
    protos = rng.random((3, 16)) < 0.5
    labels = rng.integers(0, 3, 900)
    x = np.logical_xor(protos[labels], rng.random((900, 16)) < 0.1).astype(float)
    rows = [tuple(float(v) for v in x[i]) + (int(labels[i]), i) for i in range(900)]
    df = remote.createDataFrame(rows, COLS + ["label", "id"])
    df = VectorAssembler(inputCols=COLS, outputCol="features").transform(df)
    return df.where("id < 600"), df.where("id >= 600")


def accuracy(df, prediction="prediction"):
    return df.select(F.avg((F.col(prediction) == F.col("label")).cast("double"))).first()[0]


def test_fit_transform_summary_save_and_load_over_connect(remote, data, tmp_path):
    assert is_remote()
    train, test = data
    model = DBN(layers=[8], epochs=5, batchSize=20, numPartitions=2, seed=3, labelCol="label", fineTuneEpochs=10,
                fineTuneLearningRate=0.2).fit(train)
    assert isinstance(model, DBNModel)
    assert model.getLayers() == [8] and model.getFineTuneLearningRate() == "0.2"
    # What Connect lets a client read of the model: its sizes, classes and training figures.
    assert model.sizes == [16, 8] and model.numClasses == 3 and model.hasSummary
    s = model.summary
    assert s["rounds"] > 0 and s["finalTrainAccuracy"] > 0.8 and s["finalReconstructionError"] > 0
    with pytest.raises(DBNError, match="roundsFrame needs a classic session"):
        model.roundsFrame()
    out = model.transform(test)
    assert {"dbn_features", "probability", "prediction"} <= set(out.columns)
    assert accuracy(out) > 0.9
    # Saved on the server's file system and loaded again: the same params and scores; no summary.
    path = str(tmp_path / "model")
    model.write().overwrite().save(path)
    back = DBNModel.load(path)
    assert not back.hasSummary and back.sizes == [16, 8]
    assert back.getFineTuneLearningRate() == "0.2" and back.getOutputType() == "vector"
    a = out.select("id", "prediction").orderBy("id").collect()
    b = back.transform(test).select("id", "prediction").orderBy("id").collect()
    assert a == b


def test_a_pipeline_with_built_in_stages_around_the_dbn_saved_and_loaded_over_connect(remote, data, tmp_path):
    train, test = data
    pipe = Pipeline(stages=[DBN(layers=[8], epochs=5, batchSize=20, numPartitions=2, seed=3, featuresCol="features"),
                            LogisticRegression(featuresCol="dbn_features", labelCol="label", maxIter=50)])
    fitted = pipe.fit(train)
    scored = fitted.transform(test)
    assert accuracy(scored) > 0.85
    path = str(tmp_path / "pipeline")
    fitted.write().overwrite().save(path)
    again = PipelineModel.load(path).transform(test)
    assert [r.prediction for r in scored.orderBy("id").select("prediction").collect()] == \
        [r.prediction for r in again.orderBy("id").select("prediction").collect()]


def test_bad_input_over_connect_is_the_same_one_clear_line(remote, data):
    train, _ = data
    with pytest.raises(TypeError, match="epochz"):
        DBN(epochz=3)
    with pytest.raises(DBNError, match=r"^DBN_\w+ parameter epochs given invalid value -1") as e:
        DBN(layers=[4], epochs=-1).fit(train)
    assert "\n" not in str(e.value)
    with pytest.raises(DBNError, match=r"^column 'nope' does not exist; the input has .*features"):
        DBN(layers=[4], featuresCol="nope").fit(train)
    # A bad value in a row: the task's own message (partition and row), not Spark's abort around it.
    bad = train
    with pytest.raises(DBNError, match=r"^stage \d+ partition \d+: row \d+: column 'x3' is 2.0, outside \[0, 1\] for "
                                       r"Bernoulli visible units$"):
        DBN(layers=[4], inputCols=COLS, epochs=1).fit(bad.withColumn("x3", F.lit(2.0)))
