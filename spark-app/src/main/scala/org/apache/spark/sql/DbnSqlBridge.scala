package org.apache.spark.sql

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/**
 * The one Spark-internal call spark-dbn needs: a DataFrame from rows already in
 * Spark's internal format, so that scoring appends columns without converting
 * every value of every row to and from JVM objects (measured: boxing 784 floats
 * per row made a transform 20x slower). Lives in this package for that access.
 */
object DbnSqlBridge {
  def createDataFrame(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.asInstanceOf[classic.SparkSession].internalCreateDataFrame(rows, schema)
}
