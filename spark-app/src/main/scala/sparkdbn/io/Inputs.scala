package sparkdbn.io

import org.apache.spark.sql.{DataFrame, SparkSession}

/** The data sets every command reads (`--input`, `--format`): one reader, one message for a path that is not there. */
object Inputs {
  val Formats: Seq[String] = Seq("parquet", "csv")

  def read(spark: SparkSession, path: String, format: String): DataFrame = {
    // Said here, in one line: Spark would log a stack trace for a missing path before its own error.
    val p = new org.apache.hadoop.fs.Path(path)
    val found = Option(p.getFileSystem(spark.sparkContext.hadoopConfiguration).globStatus(p)).exists(_.nonEmpty)
    if (!found) throw new IllegalArgumentException(s"input path $path does not exist")
    format match {
      case "parquet" => spark.read.parquet(path)
      case "csv" => spark.read.option("header", "true").option("inferSchema", "true").csv(path)
      case other => throw new IllegalArgumentException(s"--format must be ${Formats.mkString(" or ")}, got '$other'")
    }
  }
}
