package sparkdbn.jobs

import java.util.UUID

import scala.util.control.NonFatal

import org.apache.hadoop.fs.Path
import org.apache.spark.sql.{DataFrame, DbnSqlBridge, SaveMode, SparkSession}

/**
 * How every command writes a table or a directory. Tables follow Spark's saveAsTable convention
 * (an existing table is refused unless --mode overwrite or append says otherwise), checked before
 * any work; and a failed job leaves nothing behind: no table, no directory in the warehouse, and
 * under overwrite the previous table or directory untouched (the new one is written aside, then
 * put in its place).
 */
object Output {
  val ModeHelp = "when the output exists: error (refuse), overwrite or append"

  def mode(command: String, raw: String): SaveMode = raw match {
    case "error" => SaveMode.ErrorIfExists
    case "overwrite" => SaveMode.Overwrite
    case "append" => SaveMode.Append
    case other => throw new UsageException(s"$command: --mode must be error, overwrite or append, got '$other'")
  }

  /** Before any work: an existing table under mode error is refused. */
  def checkTable(spark: SparkSession, table: String, mode: SaveMode): Unit =
    if (mode == SaveMode.ErrorIfExists && spark.catalog.tableExists(table)) {
      throw new IllegalArgumentException(s"table $table exists: --mode overwrite replaces it, --mode append adds to it")
    }

  def table(spark: SparkSession, df: DataFrame, table: String, mode: SaveMode): Unit = {
    checkTable(spark, table, mode)
    if (mode == SaveMode.Overwrite && spark.catalog.tableExists(table)) {
      // Written aside under a name of its own, then swapped in: a failure leaves the old table as it was.
      val aside = s"${table}__spark_dbn_${UUID.randomUUID().toString.take(8)}"
      create(spark, df, aside, SaveMode.ErrorIfExists)
      spark.sql(s"DROP TABLE $table")
      spark.sql(s"ALTER TABLE $aside RENAME TO ${table.split('.').last}")
    } else create(spark, df, table, mode)
  }

  /** saveAsTable; when the job fails, the directory it started in the warehouse goes too (a later run would trip on it). */
  private def create(spark: SparkSession, df: DataFrame, table: String, mode: SaveMode): Unit = {
    val existedBefore = spark.catalog.tableExists(table)
    val dir = new Path(DbnSqlBridge.defaultTablePath(spark, table))
    val fs = dir.getFileSystem(spark.sparkContext.hadoopConfiguration)
    val dirBefore = fs.exists(dir)
    try df.write.mode(mode).saveAsTable(table) catch {
      case NonFatal(e) =>
        try {
          if (!existedBefore && spark.catalog.tableExists(table)) spark.sql(s"DROP TABLE IF EXISTS $table")
          if (!dirBefore && fs.exists(dir)) fs.delete(dir, true)
        } catch { case NonFatal(c) => e.addSuppressed(c) }
        throw e
    }
  }

  /**
   * A data set written to a path (Parquet or CSV): into a sibling directory first, then moved into place,
   * so that a failed job leaves the path as it was (absent, or the previous data).
   */
  def directory(spark: SparkSession, path: String, write: String => Unit): Unit = {
    val target = new Path(path)
    val fs = target.getFileSystem(spark.sparkContext.hadoopConfiguration)
    val aside = new Path(target.getParent, s".${target.getName}.spark-dbn-${UUID.randomUUID().toString.take(8)}")
    try write(aside.toString) catch {
      case NonFatal(e) =>
        try fs.delete(aside, true) catch { case NonFatal(c) => e.addSuppressed(c) }
        throw e
    }
    if (fs.exists(target)) fs.delete(target, true)
    if (!fs.rename(aside, target)) throw new java.io.IOException(s"could not move $aside to $path")
  }
}
