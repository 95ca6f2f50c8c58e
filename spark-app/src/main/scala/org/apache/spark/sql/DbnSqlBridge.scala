package org.apache.spark.sql

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/**
 * The Spark-internal calls spark-dbn needs. A DataFrame from rows already in
 * Spark's internal format, so that scoring appends columns without converting
 * every value of every row to and from JVM objects (measured: boxing 784 floats
 * per row made a transform 20x slower). And a managed table's default location, so that
 * a failed write can remove what it left (Output). Lives in this package for that access.
 */
object DbnSqlBridge {
  def createDataFrame(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.asInstanceOf[classic.SparkSession].internalCreateDataFrame(rows, schema)

  /** Where the catalog puts a managed table of this name (its directory may exist without the table). */
  def defaultTablePath(spark: SparkSession, table: String): java.net.URI = {
    val state = spark.asInstanceOf[classic.SparkSession].sessionState
    state.catalog.defaultTablePath(state.sqlParser.parseTableIdentifier(table))
  }
}
