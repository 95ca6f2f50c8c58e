import inspect
import os
import pydoc
import re

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.linalg import DenseVector
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit
from pyspark.sql import functions as F

from spark_dbn import DBN, DBNError, DBNModel

# Small and quick: one hidden layer of 8, a few epochs (the quality of the maths is tested elsewhere).
SMALL = dict(layers=[8], epochs=5, batchSize=20, numPartitions=2, seed=3)


def accuracy(df, prediction="prediction"):
    return df.select(F.avg((F.col(prediction) == F.col("label")).cast("double"))).first()[0]


def _jvm_value(v):
    from py4j.java_collections import JavaArray
    return list(v) if isinstance(v, JavaArray) else v


def test_the_generated_params_are_the_jvms_every_one_with_its_doc_default_and_parent(spark):
    d = DBN()
    jvm = spark.sparkContext._jvm.sparkdbn.ml.DBN()
    jvm_names = sorted(p.name() for p in jvm.params())
    assert sorted(p.name for p in d.params) == jvm_names
    for name in jvm_names:
        jp, p = jvm.getParam(name), d.getParam(name)
        assert p.doc == jp.doc(), name
        assert p.parent == d.uid, name
        if jvm.hasDefault(jp):
            assert d.getOrDefault(p) == _jvm_value(jvm.getDefault(jp).get()), name
        else:
            assert not d.hasDefault(p), name
    # The signature a user (and an editor) sees: every param a keyword, with the JVM's default.
    sig = inspect.signature(DBN.__init__)
    assert sorted(n for n in sig.parameters if n != "self") == jvm_names
    assert sig.parameters["layers"].default == [500, 500]
    assert sig.parameters["epochs"].annotation in (int, "int")
    text = pydoc.render_doc(DBN, renderer=pydoc.plaintext)
    for name in jvm_names:
        assert name in text and f"set{name[0].upper()}{name[1:]}" in text, name
    assert d.getLayers() == [500, 500]
    assert d.setEpochs(7).getEpochs() == 7
    assert DBN(epochs=2, layers=[4]).getLayers() == [4]
    # As built-in stages have them: copy() with extra values leaves the original alone; explainParams.
    c = d.copy({d.epochs: 3})
    assert c.getEpochs() == 3 and d.getEpochs() == 7 and c.uid == d.uid
    assert all(p.parent == c.uid for p in c.params)
    assert "epochs: pre-training passes over the data, per layer" in d.explainParams()
    assert "(default: 10, current: 7)" in d.explainParams()
    # Typed converters: a string for an integer param is refused in Python, naming the param.
    with pytest.raises(TypeError, match="epochs|Could not convert"):
        DBN(epochs="many")


def test_an_unknown_or_out_of_range_param_is_refused_naming_it(spark):
    with pytest.raises(TypeError, match="epochz"):
        DBN(epochz=3)
    # Out of range: refused when set, by the JVM's validator, naming the param.
    with pytest.raises(Exception, match="parameter epochs given invalid value -1"):
        DBN(layers=[4], epochs=-1)
    with pytest.raises(Exception, match="parameter mergeRule given invalid value"):
        DBN().setMergeRule("median")


def test_fit_and_transform_with_every_output_column(spark, digits):
    train, test = digits
    model = DBN(labelCol="label", fineTuneEpochs=10, fineTuneLearningRate="0.2", **SMALL).fit(train)
    assert isinstance(model, DBNModel)
    assert model.numClasses == 3
    assert model.sizes == [16, 8]
    assert model.hasSummary
    rounds = model.roundsFrame()
    assert {"topic", "round", "reconstruction_error", "accuracy"} <= set(rounds.columns)
    assert rounds.where("topic = 'finetune'").count() > 0
    out = model.transform(test)
    assert {"dbn_features", "probability", "prediction"} <= set(out.columns)
    assert len(out.first()["dbn_features"]) == 8
    assert isinstance(out.first()["dbn_features"], DenseVector)
    assert accuracy(out) > 0.9


def test_first_day_pipeline_assembler_dbn_logistic_regression_with_defaults(spark, digits, tmp_path):
    """What a data scientist writes first: VectorAssembler's Vector in, the DBN's default output read by
    a logistic regression, a step size as a number; saved and loaded, every param and score as before."""
    train, test = digits
    cols = [f"c{i}" for i in range(16)]
    as_columns = lambda df: df.select("id", "label", *[F.col("features")[i].alias(c) for i, c in enumerate(cols)])
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=cols, outputCol="assembled"),
                                DBN(featuresCol="assembled", learningRate=0.05, **SMALL),
                                LogisticRegression(featuresCol="dbn_features", labelCol="label", maxIter=50)])
    fitted = pipeline.fit(as_columns(train))
    scored = fitted.transform(as_columns(test))
    assert accuracy(scored) > 0.9
    assert fitted.stages[1].getOrDefault("learningRate") == "0.05"
    # Saved and loaded as a whole: the DBN stage comes back as this package's class, with every param.
    path = str(tmp_path / "pipeline")
    fitted.write().overwrite().save(path)
    again = PipelineModel.load(path)
    assert type(again.stages[1]).__name__ == "DBNModel"
    params = lambda m: {p.name: m.getOrDefault(p) for p in m.params if m.isDefined(p)}
    assert params(again.stages[1]) == params(fitted.stages[1])
    a = [(r["dbn_features"].toArray().tolist(), r["prediction"]) for r in scored.orderBy("id").collect()]
    b = [(r["dbn_features"].toArray().tolist(), r["prediction"]) for r in again.transform(as_columns(test)).orderBy("id").collect()]
    assert a == b


def test_cross_validation_and_a_train_validation_split_over_a_grid_of_dbn_params(spark, digits):
    """Model selection as Spark ML does it: a grid of the DBN's params in a Pipeline, each setting fitted and
    scored; the best model is the setting the evaluator prefers and is refitted on all the rows."""
    train, test = digits
    dbn = DBN(**{**SMALL, "epochs": 3})
    lr = LogisticRegression(featuresCol="dbn_features", labelCol="label", maxIter=30)
    pipeline = Pipeline(stages=[dbn, lr])
    # One hidden unit cannot separate 3 classes; 8 can: the search must pick 8.
    grid = ParamGridBuilder().addGrid(dbn.layers, [[1], [8]]).build()
    evaluator = MulticlassClassificationEvaluator(labelCol="label", metricName="accuracy")
    cv = CrossValidator(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=1).fit(train)
    assert len(cv.avgMetrics) == 2 and cv.avgMetrics[1] > cv.avgMetrics[0] + 0.1
    assert cv.bestModel.stages[0].getLayers() == [8]
    assert evaluator.evaluate(cv.transform(test)) > 0.85
    tvs = TrainValidationSplit(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, trainRatio=0.7,
                               seed=1).fit(train)
    assert tvs.validationMetrics[1] > tvs.validationMetrics[0] + 0.1
    assert tvs.bestModel.stages[0].getLayers() == [8]


def test_schedules_as_numbers_dicts_pairs_or_strings(spark):
    d = DBN(learningRate=0.05, momentum={0: 0.5, 5: 0.9}, fineTuneLearningRate=[(0, 0.1), (15, 0.03)], fineTuneMomentum="0:0.5,5:0.9")
    assert d.getLearningRate() == "0.05" and d.getMomentum() == "0:0.5,5:0.9"
    assert d.getFineTuneLearningRate() == "0:0.1,15:0.03" and d.getFineTuneMomentum() == "0:0.5,5:0.9"
    assert d.setLearningRate(1).getLearningRate() == "1"
    assert d._java_obj.getOrDefault(d._java_obj.learningRate()) == "1"
    with pytest.raises(TypeError, match="Could not convert"):
        DBN(learningRate=True)
    with pytest.raises(TypeError, match="Could not convert"):
        DBN(momentum=[0.5, 0.9])
    # Out of range: the JVM's validator, naming the param.
    with pytest.raises(Exception, match="parameter learningRate given invalid value"):
        DBN(learningRate=-1)


def test_save_and_load_both_ways_with_scala(spark, digits, tmp_path):
    train, test = digits
    model = DBN(labelCol="label", fineTuneEpochs=3, **SMALL).fit(train)
    jvm = spark.sparkContext._jvm
    from_python = str(tmp_path / "from-python")
    model.write().overwrite().save(from_python)
    in_scala = jvm.sparkdbn.ml.DBNModel.load(from_python)
    assert in_scala.uid() == model.uid
    assert list(in_scala.layerSizes()) == [16, 8]
    from_scala = str(tmp_path / "from-scala")
    model._java_obj.write().overwrite().save(from_scala)
    back = DBNModel.load(from_scala)
    assert back.uid == model.uid and back.numClasses == 3
    p1 = [r[0] for r in model.transform(test).orderBy("id").select("prediction").collect()]
    p2 = [r[0] for r in back.transform(test).orderBy("id").select("prediction").collect()]
    assert p1 == p2
    # An engine snapshot loads too.
    snapshot = [f for f in os.listdir(os.path.join(from_scala, "data")) if f.endswith(".avro")]
    assert snapshot, os.listdir(os.path.join(from_scala, "data"))
    assert DBNModel.fromSnapshot(os.path.join(from_scala, "data", snapshot[0])).sizes == [16, 8]


def test_a_nan_in_the_input_raises_an_error_naming_the_row(spark, digits):
    train, test = digits
    model = DBN(**SMALL).fit(train)
    bad = test.withColumn("features", F.when(F.col("id") == 650, F.expr("transform(features, (x, i) -> IF(i = 5, float('NaN'), x))"))
                          .otherwise(F.col("features")))
    # The sidecar's typed RowError: the partition's row and the input as the user knows it.
    with pytest.raises(Exception, match=r"row \d+: column 'features' element 5: value is NaN"):
        model.transform(bad).collect()


def test_a_task_failure_in_fit_arrives_as_its_own_message(spark, digits):
    train, _ = digits
    # Bernoulli units take values in [0, 1]: a 1.5 fails the task that reads it, named by the input's row
    # (these rows are not in files: Spark's stage, partition and row there) and the column.
    bad = train.withColumn("features", F.when(F.col("id") == 17, F.expr("transform(features, (x, i) -> IF(i = 3, 1.5f, x))"))
                           .otherwise(F.col("features")))
    with pytest.raises(DBNError) as caught:
        DBN(**SMALL).fit(bad)
    message = str(caught.value)
    assert re.match(r"stage \d+ partition \d+: row \d+: column 'features' element 3 is 1.5, outside \[0, 1\] for Bernoulli visible units$",
                    message), message
    assert "\tat " not in message and "Job aborted" not in message, message
