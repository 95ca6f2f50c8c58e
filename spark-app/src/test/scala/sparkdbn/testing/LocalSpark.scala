package sparkdbn.testing

import org.apache.spark.sql.SparkSession
import org.scalatest.{BeforeAndAfterAll, Suite}

import sparkdbn.sidecar.SidecarManager

/** A real local Spark on loopback for a suite, and its sidecar stopped after it. */
trait LocalSpark extends BeforeAndAfterAll { self: Suite =>
  /** `local[N]`, or `local[N,F]` for F attempts per task. */
  protected def master: String = "local[2]"
  protected var spark: SparkSession = _

  override def beforeAll(): Unit = {
    super.beforeAll()
    spark = SparkSession.builder().master(master).appName(suiteName)
      .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
      .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
      .getOrCreate()
  }

  override def afterAll(): Unit = {
    // Cleanup must not hide a test failure: each step on its own.
    try if (spark != null) spark.stop() finally try SidecarManager.stop() finally super.afterAll()
  }
}
