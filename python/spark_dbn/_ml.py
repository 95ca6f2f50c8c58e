"""DBN and DBNModel as pyspark.ml stages over the JVM's sparkdbn.ml classes.

Their params are declared in spark_dbn/_params.py, generated from the JVM's DBNParams (names, docs,
defaults, types: scripts/gen-python-api), so that editors, type checkers and help() see them, and a
session without a JVM behind it (Spark Connect) has them too. A value is checked against the param's
range when it is set in classic mode (the JVM's validator names the param), at fit under Connect.
"""
import re

from py4j.java_gateway import JavaObject
from py4j.protocol import Py4JJavaError
from pyspark import SparkContext
from pyspark.errors import PySparkException
from pyspark.ml.util import JavaMLReadable, JavaMLWritable
from pyspark.ml.wrapper import JavaEstimator, JavaModel
from pyspark.sql import DataFrame, is_remote

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


def _explained_remote(e: PySparkException) -> DBNError:
    """The server's error as one line, as classic mode gives it: the message without the JVM's stack trace, and
    for a failed job the failing task's own exception's message rather than Spark's abort around it."""
    first = str(e).split("\n\nJVM stacktrace:")[0].strip().split("\n")[0]
    if first.startswith("Job aborted due to stage failure"):
        m = re.search(r"[\w.$]+(?:Exception|Error): (.*)$", first)
        if m:
            first = m.group(1)
    return DBNError(first)


class DBN(_DBNInit, JavaEstimator, _Stage, JavaMLWritable, JavaMLReadable):
    """A deep belief network (stacked RBMs), pre-trained layer by layer and, with a labelCol,
    fine-tuned, over Spark: `sparkdbn.ml.DBN`. Every param is a keyword of the constructor."""

    # Until __init__ sets it: a constructor refused (an unknown keyword) leaves PySpark's __del__ something to read.
    _java_obj = None

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
        except PySparkException as e:
            if not is_remote():
                raise
            raise _explained_remote(e) from None



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

    def _facts(self) -> dict:
        """The model's sizes, classes and training figures, from its one-line description: the one attribute a
        Spark Connect client may read of a third-party model (classic mode reads the same line)."""
        text = self._call_java("toString")
        m = re.fullmatch(r"DBNModel\(uid=\S+, sizes=\[([\d, ]*)\], numClasses=(\d+), summary=(none|\((.*)\))\)", text)
        if not m:
            raise DBNError(f"this model has no snapshot to describe: {text}")
        facts = {"sizes": [int(v) for v in m.group(1).split(",") if v.strip()], "numClasses": int(m.group(2)),
                 "summary": None}
        if m.group(4) is not None:
            fields = dict(kv.split("=", 1) for kv in m.group(4).split(", "))
            facts["summary"] = {k: (None if v == "none" else float(v) if k != "rounds" else int(v)) for k, v in fields.items()}
        return facts

    @property
    def numClasses(self) -> int:
        """Classes of the soft-max layer (0: the model was not fine-tuned)."""
        return self._facts()["numClasses"]

    @property
    def sizes(self) -> list:
        """Layer sizes, the input's first."""
        return self._facts()["sizes"]

    @property
    def hasSummary(self) -> bool:
        """Whether the model was fitted in this session (a loaded model has no training summary)."""
        return self._facts()["summary"] is not None

    @property
    def summary(self) -> dict:
        """What training measured: rounds, the first layer's final reconstruction error and the final training
        accuracy (None where it does not apply); in classic mode, roundsFrame() has every round."""
        facts = self._facts()["summary"]
        if facts is None:
            raise DBNError("this model has no training summary (it was loaded, not fitted)")
        return facts

    def roundsFrame(self) -> DataFrame:
        """The training summary's rounds (one row per replica round, as the rounds table) as a DataFrame; classic
        mode only (Spark Connect lets a client read no more of a third-party model than `summary` gives)."""
        if is_remote():
            raise DBNError("roundsFrame needs a classic session: over Spark Connect a model's `summary` has the run's "
                           "figures, and the train command's dbn_rounds table every round")
        if not self.hasSummary:
            raise RuntimeError("this model has no training summary (it was loaded, not fitted)")
        from pyspark.sql import SparkSession
        spark = SparkSession.getActiveSession()
        jdf = self._java_obj.roundsFrame(spark._jsparkSession)
        return DataFrame(jdf, spark)


# PySpark finds a stage's JVM class by its Python module (and the Python class of a JVM one the other way, when
# it loads a saved Pipeline, in classic mode and over Spark Connect): these are sparkdbn.ml's (python/sparkdbn/ml).
DBN.__module__ = DBNModel.__module__ = "sparkdbn.ml"
