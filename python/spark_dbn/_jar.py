"""Where the spark-dbn jar and runtime archive are, and a session that has them."""
import glob
import os
import sys

from pyspark.sql import SparkSession

from spark_dbn._version import __version__ as _VERSION

_HERE = os.path.dirname(os.path.abspath(__file__))
# In a wheel (scripts/package builds it) the jar and the runtime archive travel in this directory.
_PACKAGED = os.path.join(_HERE, "lib")
_RUNTIME = f"spark-dbn-runtime-{_VERSION}-linux-x64.tgz"


def jar_path() -> str:
    """The spark-dbn jar: $SPARK_DBN_JAR, else the one in this wheel, else this checkout's build.

    On a cluster, pass the jar as any Spark job's jar: `--jars spark-dbn-0.1.0.jar` or `spark.jars`.
    """
    env = os.environ.get("SPARK_DBN_JAR")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"SPARK_DBN_JAR={env} is not a file")
        return env
    packaged = os.path.join(_PACKAGED, f"spark-dbn-{_VERSION}.jar")
    if os.path.isfile(packaged):
        return packaged
    candidates = glob.glob(os.path.join(_HERE, "..", "..", "spark-app", "target", f"spark-dbn-{_VERSION}.jar"))
    if not candidates:
        raise FileNotFoundError(
            f"the spark-dbn {_VERSION} jar was not found: run scripts/setup in the checkout, or set SPARK_DBN_JAR")
    return os.path.abspath(candidates[0])


def runtime_path():
    """The runtime archive executors run (Node.js, the sidecar, its native kernels): $SPARK_DBN_RUNTIME, else
    the one in this wheel; None in a checkout, where executors run the jar's sidecar with `node`."""
    env = os.environ.get("SPARK_DBN_RUNTIME")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"SPARK_DBN_RUNTIME={env} is not a file")
        return env
    packaged = os.path.join(_PACKAGED, _RUNTIME)
    return packaged if os.path.isfile(packaged) else None


def session(builder=None, master: str = "local[2]") -> SparkSession:
    """A SparkSession with the spark-dbn jar, the runtime archive when there is one (shipped to every
    executor as `#sparkdbn`), and what a run needs that the caller did not set: the settings `train` uses,
    and each executor's memory overhead raised by the sidecar's memory (`spark.dbn.sidecar.memory`) on a
    cluster. The JVM decides those (sparkdbn.ml.SessionSettings); a conf of the caller's is never changed,
    and one that works against the run is named in a warning on stderr."""
    b = builder or SparkSession.builder.master(master).appName("spark-dbn")
    given = dict(getattr(b, "_options", {}))
    shipped = [("spark.jars", jar_path())]
    runtime = runtime_path()
    if runtime:
        shipped.append(("spark.archives", f"{runtime}#sparkdbn"))
    for key, value in shipped:
        if key not in given:
            b = b.config(key, value)
            given[key] = value
    additions, warnings = _settings(given)
    for line in warnings:
        print(f"spark_dbn: warning: {line}", file=sys.stderr)
    for key, value in additions.items():
        b = b.config(key, value)
    return b.getOrCreate()


def _settings(given: dict):
    """sparkdbn.ml.SessionSettings for these confs, asked of the JVM gateway before any session starts
    (it is started with the jar on its classpath); a bad spark.dbn.* conf is a ValueError naming it."""
    from py4j.protocol import Py4JJavaError
    from pyspark import SparkConf, SparkContext
    from pyspark.errors.exceptions.captured import CapturedException

    SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(list(given.items())))
    jvm = SparkContext._jvm
    jmap = jvm.java.util.HashMap()
    for key, value in given.items():
        jmap.put(key, str(value))
    try:
        plan = jvm.sparkdbn.ml.SessionSettings.planJava(jmap)
    except Py4JJavaError as e:  # before any SparkContext, py4j's own
        raise ValueError(str(e.java_exception.getMessage())) from None
    except CapturedException as e:  # once one exists, PySpark's conversion of it
        raise ValueError(e._desc) from None
    return dict(plan.additionsJava()), list(plan.warningsJava())
