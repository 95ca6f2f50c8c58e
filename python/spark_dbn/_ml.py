"""DBN and DBNModel as pyspark.ml stages over the JVM's sparkdbn.ml classes.

Their params are declared in spark_dbn/_params.py, generated from the JVM's DBNParams (names, docs,
defaults, types: scripts/gen-python-api), so that editors, type checkers and help() see them, and a
session without a JVM behind it (Spark Connect) has them too. A value is checked against the param's
range when it is set in classic mode (the JVM's validator names the param), at fit under Connect.
"""
from py4j.java_gateway import JavaObject
from py4j.protocol import Py4JJavaError
from pyspark import SparkContext
from pyspark.ml.util import JavaMLReadable, JavaMLReader, JavaMLWritable
from pyspark.ml.wrapper import JavaEstimator, JavaModel
from pyspark.sql import DataFrame

from spark_dbn._params import _DBNInit, _DBNParams


class _Stage(_DBNParams):
    def _set_checked(self, **kwargs):
        self._set(**kwargs)
        # Classic mode: the JVM checks each value against the param's range now, not at fit: the error names
        # the param. Under Spark Connect (no JVM here) the server checks them when the stage is fitted.
        if isinstance(getattr(self, "_java_obj", None), JavaObject):
            for name in kwargs:
                p = self.getParam(name)
                self._java_obj.set(self._make_java_param_pair(p, self._paramMap[p]))
        return self


class DBNError(RuntimeError):
    """A failure on the JVM side, in the words of the exception that knows (a task's own message, not
    Spark's job-abort wrapping of it): the rule is the command line's, sparkdbn.cli.Failure."""


def _explained(e: Py4JJavaError) -> DBNError:
    jvm = SparkContext._active_spark_context._jvm
    return DBNError(jvm.sparkdbn.cli.Failure.explain(e.java_exception))


class _Reader(JavaMLReader):
    """Loads with the JVM class of the same name (PySpark would look for org.apache.spark's)."""

    @classmethod
    def _java_loader_class(cls, clazz):
        return {"DBN": "sparkdbn.ml.DBN", "DBNModel": "sparkdbn.ml.DBNModel"}[clazz.__name__]


class DBN(_DBNInit, JavaEstimator, _Stage, JavaMLWritable, JavaMLReadable):
    """A deep belief network (stacked RBMs), pre-trained layer by layer and, with a labelCol,
    fine-tuned, over Spark: `sparkdbn.ml.DBN`. Every param is a keyword of the constructor."""

    def _init_stage(self, **kwargs) -> None:
        self._java_obj = self._new_java_obj("sparkdbn.ml.DBN", self.uid)
        self._set_checked(**kwargs)

    def _create_model(self, java_model) -> "DBNModel":
        return DBNModel(java_model)

    def _fit(self, dataset) -> "DBNModel":
        try:
            return super()._fit(dataset)
        except Py4JJavaError as e:
            raise _explained(e) from None

    @classmethod
    def read(cls):
        return _Reader(cls)


class DBNModel(JavaModel, _Stage, JavaMLWritable, JavaMLReadable):
    """A fitted DBN: `transform` appends the top layer's P(h|v) (outputCol) and, when fine-tuned, the
    class probabilities and prediction. `sparkdbn.ml.DBNModel`."""

    def __init__(self, java_model=None):
        super().__init__(java_model)
        if isinstance(java_model, JavaObject):
            self._transfer_params_from_java()

    @staticmethod
    def fromSnapshot(path: str) -> "DBNModel":
        """A model from the engine's Avro snapshot file (any Hadoop path)."""
        jvm = SparkContext._active_spark_context._jvm
        return DBNModel(jvm.sparkdbn.ml.DBNModel.fromSnapshot(path))

    @property
    def numClasses(self) -> int:
        return self._java_obj.numClasses()

    @property
    def sizes(self) -> list:
        return list(self._java_obj.layerSizes())

    @property
    def hasSummary(self) -> bool:
        return self._java_obj.hasSummary()

    def roundsFrame(self) -> DataFrame:
        """The training summary's rounds (one row per replica round, as the rounds table) as a DataFrame."""
        if not self.hasSummary:
            raise RuntimeError("this model has no training summary (it was loaded, not fitted)")
        from pyspark.sql import SparkSession
        spark = SparkSession.getActiveSession()
        jdf = self._java_obj.roundsFrame(spark._jsparkSession)
        return DataFrame(jdf, spark)

    @classmethod
    def read(cls):
        return _Reader(cls)
