"""Where the spark-dbn jar and runtime archive are, and a session that has them."""
import glob
import os

from pyspark.sql import SparkSession

_VERSION = "0.1.0"
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
    executor as `#sparkdbn`), and the settings `train` uses, unless the caller set them."""
    b = builder or SparkSession.builder.master(master).appName("spark-dbn")
    given = getattr(b, "_options", {})
    # A round's result is a model update over Spark's 1 MiB direct-result default, and float32
    # weights do not compress (see the README).
    settings = [("spark.jars", jar_path()), ("spark.task.maxDirectResultSize", "64m"),
                ("spark.broadcast.compress", "false")]
    runtime = runtime_path()
    if runtime:
        settings.append(("spark.archives", f"{runtime}#sparkdbn"))
    for key, value in settings:
        if key not in given:
            b = b.config(key, value)
    return b.getOrCreate()
