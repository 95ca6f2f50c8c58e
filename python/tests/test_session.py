"""spark_dbn.session(): what it adds to a session, decided by the JVM (sparkdbn.ml.SessionSettings)."""
import pytest

from spark_dbn._jar import _settings


def test_the_session_has_the_run_settings(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.task.maxDirectResultSize") == "64m"
    assert conf.get("spark.broadcast.compress") == "false"
    # Local mode: no executor containers, so no overhead is added.
    assert conf.get("spark.executor.memoryOverhead") is None


def test_on_a_cluster_the_sidecar_budget_joins_the_executor_overhead(spark):
    additions, warnings = _settings({"spark.master": "yarn", "spark.dbn.sidecar.memory": "1g"})
    assert additions["spark.executor.memoryOverhead"] == "1408m"  # Spark's own 384m and the sidecar's 1024m
    assert warnings == []
    additions, warnings = _settings({"spark.master": "yarn", "spark.executor.memoryOverhead": "512m"})
    assert "spark.executor.memoryOverhead" not in additions
    assert len(warnings) == 1 and warnings[0].startswith(
        "spark.executor.memoryOverhead=512m is below spark.dbn.sidecar.memory=1536m")


def test_a_bad_budget_is_one_clear_error_before_any_session(spark):
    with pytest.raises(ValueError, match=r"^spark\.dbn\.sidecar\.memory=lots: expected a size such as 2g or 1536m$"):
        _settings({"spark.master": "local[2]", "spark.dbn.sidecar.memory": "lots"})
