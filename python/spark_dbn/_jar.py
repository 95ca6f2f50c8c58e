"""Where the spark-dbn jar is, and a session that has it."""
import glob
import os

from pyspark.sql import SparkSession

_VERSION = "0.1.0"


def jar_path() -> str:
    """The spark-dbn jar: $SPARK_DBN_JAR, else this checkout's build (scripts/setup builds it).

    On a cluster, pass the jar as any Spark job's jar: `--jars spark-dbn-0.1.0.jar` or `spark.jars`.
    """
    env = os.environ.get("SPARK_DBN_JAR")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"SPARK_DBN_JAR={env} is not a file")
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = glob.glob(os.path.join(here, "..", "..", "spark-app", "target", f"spark-dbn-{_VERSION}.jar"))
    if not candidates:
        raise FileNotFoundError(
            f"the spark-dbn {_VERSION} jar was not found: run scripts/setup in the checkout, or set SPARK_DBN_JAR")
    return os.path.abspath(candidates[0])


def session(builder=None, master: str = "local[2]") -> SparkSession:
    """A SparkSession with the spark-dbn jar (and the settings `train` uses) unless the caller set them."""
    b = builder or SparkSession.builder.master(master).appName("spark-dbn")
    given = getattr(b, "_options", {})
    # A round's result is a model update over Spark's 1 MiB direct-result default, and float32
    # weights do not compress (see the README).
    for key, value in (("spark.jars", jar_path()), ("spark.task.maxDirectResultSize", "64m"),
                       ("spark.broadcast.compress", "false")):
        if key not in given:
            b = b.config(key, value)
    return b.getOrCreate()
