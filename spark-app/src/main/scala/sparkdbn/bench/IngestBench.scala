package sparkdbn.bench

import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.functions._

import sparkdbn.ml.DBNModel

/**
 * The JVM half of `scripts/bench ingest` (called from bench/ingest.py through
 * py4j, so that both paths read the same cached DataFrame in the same run):
 * streams the `features` column of `df` through each executor's sidecar by the
 * real transform path, with a model whose compute is negligible (784 -> 1).
 */
object IngestBench {
  /** Seconds to move every row into the sidecars (and the one value per row back). */
  def run(df: DataFrame, modelPath: String, batchRows: Int): Double = {
    val m = DBNModel.fromSnapshot(modelPath).setProbabilityCol("").setPredictionCol("").setBatchRows(batchRows)
    val t0 = System.nanoTime()
    val n = m.transform(df).agg(count(lit(1))).collect().head.getLong(0)
    val s = (System.nanoTime() - t0) / 1e9
    require(n == df.count(), s"scored $n rows of ${df.count()}")
    s
  }
}
