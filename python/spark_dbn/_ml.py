"""DBN and DBNModel as pyspark.ml stages over the JVM's sparkdbn.ml classes.

The params are the JVM's: each stage creates its Python params from the Java object's (name, doc,
default), with a type converter chosen by the Java param's class, so a rule (a default, a range) has
one owner, the Scala DBNParams. Setters and getters (`setLayers`, `getLayers`, ...) are generated
from the same list.
"""
from py4j.protocol import Py4JJavaError
from pyspark import SparkContext
from pyspark.ml.param import Param, TypeConverters
from pyspark.ml.util import JavaMLReadable, JavaMLReader, JavaMLWritable
from pyspark.ml.wrapper import JavaEstimator, JavaModel, JavaParams
from pyspark.sql import DataFrame

def _to_schedule(value):
    """A step size or momentum (the JVM's ScheduleParam): a number, a schedule string 'epoch:value,...', a dict
    {epoch: value} or a list of (epoch, value) pairs; the JVM checks the values' range."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"Could not convert {value!r} to a schedule: a number, 'epoch:value,...', a dict or (epoch, value) pairs")
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, dict):
        value = sorted(value.items())
    try:
        pairs = [(int(e), float(v)) for e, v in value]
    except (TypeError, ValueError):
        raise TypeError(f"Could not convert {value!r} to a schedule: a number, 'epoch:value,...', a dict or "
                        "(epoch, value) pairs") from None
    return ",".join(f"{e}:{_number(v)}" for e, v in pairs)


def _number(v) -> str:
    """A number as the JVM writes it in a schedule: 1 as "1", 0.05 as "0.05"."""
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


_CONVERTERS = {
    "ScheduleParam": _to_schedule,
    "IntParam": TypeConverters.toInt,
    "LongParam": TypeConverters.toInt,
    "DoubleParam": TypeConverters.toFloat,
    "FloatParam": TypeConverters.toFloat,
    "BooleanParam": TypeConverters.toBoolean,
    "IntArrayParam": TypeConverters.toListInt,
    "StringArrayParam": TypeConverters.toListString,
    "DoubleArrayParam": TypeConverters.toListFloat,
}


def _accessor(name: str) -> str:
    return name[0].upper() + name[1:]


class _JvmParams(JavaParams):
    """Params created from the wrapped Java object's, with typed converters, getters and setters."""

    def _params_from_jvm(self) -> None:
        for jp in self._java_obj.params():
            name = jp.name()
            kind = jp.getClass().getSimpleName()
            p = Param(self, name, jp.doc(), typeConverter=_CONVERTERS.get(kind, TypeConverters.toString))
            setattr(self, name, p)
        self._params = None  # the list is rebuilt from the attributes on next use
        # Defaults: the JVM's, read once (not copied into this file).
        for jp in self._java_obj.params():
            if self._java_obj.hasDefault(jp):
                self._setDefault(**{jp.name(): _python_value(self._java_obj.getDefault(jp).get())})

    def _create_params_from_java(self) -> None:
        # PySpark calls this when it loads a stage (JavaParams._from_java): typed params there too.
        self._params_from_jvm()

    def __getattr__(self, attr):
        # setX / getX for every param X, generated on first use.
        if attr.startswith(("set", "get")) and len(attr) > 3:
            name = attr[3].lower() + attr[4:]
            p = self.__dict__.get(name)
            if isinstance(p, Param):
                if attr.startswith("set"):
                    def setter(value, _p=p):
                        self._set_from_kwargs({_p.name: value})
                        return self
                    return setter
                return lambda _p=p: self.getOrDefault(_p)
        raise AttributeError(f"{type(self).__name__} has no attribute '{attr}'")

    def _set_from_kwargs(self, kwargs) -> None:
        unknown = [k for k in kwargs if not isinstance(self.__dict__.get(k), Param)]
        if unknown:
            names = ", ".join(sorted(p.name for p in self.params))
            raise ValueError(f"{type(self).__name__} has no param '{unknown[0]}'; its params are: {names}")
        self._set(**kwargs)
        # The JVM checks each value against the param's range now, not at fit: the error names the param.
        for name, value in kwargs.items():
            p = self.getParam(name)
            self._java_obj.set(self._make_java_param_pair(p, self._paramMap[p]))


def _python_value(v):
    """A JVM default as Python: Scala/Java arrays as lists, the rest as it comes through Py4J."""
    try:
        from py4j.java_collections import JavaArray
        if isinstance(v, JavaArray):
            return list(v)
    except ImportError:  # pragma: no cover
        pass
    return v


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


class DBN(JavaEstimator, _JvmParams, JavaMLWritable, JavaMLReadable):
    """A deep belief network (stacked RBMs), pre-trained layer by layer and, with a labelCol,
    fine-tuned, over Spark: `sparkdbn.ml.DBN`. Keyword arguments set params by name."""

    def __init__(self, **kwargs):
        super().__init__()
        self._java_obj = self._new_java_obj("sparkdbn.ml.DBN", self.uid)
        self._params_from_jvm()
        self._set_from_kwargs(kwargs)

    def setParams(self, **kwargs) -> "DBN":
        self._set_from_kwargs(kwargs)
        return self

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


class DBNModel(JavaModel, _JvmParams, JavaMLWritable, JavaMLReadable):
    """A fitted DBN: `transform` appends the top layer's P(h|v) (outputCol) and, when fine-tuned, the
    class probabilities and prediction. `sparkdbn.ml.DBNModel`."""

    def __init__(self, java_model=None):
        super().__init__(java_model)
        if java_model is not None:
            self._params_from_jvm()
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
