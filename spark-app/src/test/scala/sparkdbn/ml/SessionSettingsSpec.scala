package sparkdbn.ml

import org.apache.spark.SparkConf
import org.scalatest.funsuite.AnyFunSuite

/** What a session gets added before it starts, and the warnings about what the user set. */
class SessionSettingsSpec extends AnyFunSuite {
  private def plan(kv: (String, String)*) = SessionSettings.plan(new SparkConf(false).setAll(kv))

  test("local mode: the run's settings, no executor overhead (no containers)") {
    val p = plan("spark.master" -> "local[2]")
    assert(p.additions.toMap == Map("spark.task.maxDirectResultSize" -> "64m", "spark.broadcast.compress" -> "false"))
    assert(p.warnings.isEmpty)
    // A conf of the user's is kept.
    assert(!plan("spark.master" -> "local[2]", "spark.broadcast.compress" -> "true").additions.toMap.contains("spark.broadcast.compress"))
  }

  test("on a cluster the sidecar's budget is added to Spark's own executor overhead, unless the user set one") {
    // Spark's own: max(384m, 10% of the heap); then the sidecar's 1536m by default.
    assert(plan("spark.master" -> "spark://h:7077").additions.toMap.apply("spark.executor.memoryOverhead") == "1920m")
    assert(plan("spark.master" -> "yarn", "spark.executor.memory" -> "8g").additions.toMap.apply("spark.executor.memoryOverhead") == "2355m")
    assert(plan("spark.master" -> "yarn", "spark.dbn.sidecar.memory" -> "1g").additions.toMap.apply("spark.executor.memoryOverhead") == "1408m")
    val enough = plan("spark.master" -> "yarn", "spark.executor.memoryOverhead" -> "3g")
    assert(!enough.additions.toMap.contains("spark.executor.memoryOverhead") && enough.warnings.isEmpty)
  }

  test("an overhead set below the sidecar's budget: one warning naming both figures and the conf to change") {
    val p = plan("spark.master" -> "k8s://https://h:6443", "spark.executor.memoryOverhead" -> "512m")
    assert(!p.additions.toMap.contains("spark.executor.memoryOverhead"))
    assert(p.warnings == Seq("spark.executor.memoryOverhead=512m is below spark.dbn.sidecar.memory=1536m, which each " +
      "executor's sidecar alone may use outside the heap: YARN or Kubernetes would kill executors that reach it. Raise " +
      "spark.executor.memoryOverhead to 1920m (the sidecar's and the JVM's own 384m), or lower spark.dbn.sidecar.memory"))
  }

  test("a bad spark.dbn conf is refused before any session, naming it") {
    val e = intercept[IllegalArgumentException](plan("spark.master" -> "yarn", "spark.dbn.sidecar.memory" -> "lots"))
    assert(e.getMessage == "spark.dbn.sidecar.memory=lots: expected a size such as 2g or 1536m")
  }
}
