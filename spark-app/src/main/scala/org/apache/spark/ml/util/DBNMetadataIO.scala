package org.apache.spark.ml.util

import org.apache.spark.ml.param.Params
import org.apache.spark.sql.SparkSession

/**
 * Spark ML's own persistence of params (DefaultParamsWriter/Reader) is package-private; this bridge
 * lets sparkdbn.ml save its stages exactly as Spark's stages save theirs (a `metadata` directory
 * that Spark's and PySpark's Pipeline readers load), instead of a format of its own.
 */
object DBNMetadataIO {
  def saveMetadata(instance: Params, path: String, spark: SparkSession): Unit =
    DefaultParamsWriter.saveMetadata(instance, path, spark)

  /** Reads `path`'s metadata, checks it is of `className`, and sets its params (and defaults) on `instance`. */
  def loadParams(instance: Params, path: String, spark: SparkSession, className: String): String = {
    val metadata = DefaultParamsReader.loadMetadata(path, spark, className)
    metadata.getAndSetParams(instance)
    metadata.uid
  }

  /** The uid a saved stage's metadata records. */
  def savedUid(path: String, spark: SparkSession, className: String): String =
    DefaultParamsReader.loadMetadata(path, spark, className).uid
}
