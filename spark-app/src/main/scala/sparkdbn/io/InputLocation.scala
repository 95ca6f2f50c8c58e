package sparkdbn.io

import scala.annotation.tailrec
import scala.util.control.NonFatal

import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.functions.col

/**
 * Where a row of a DataFrame's input partition is in the user's files. A task can only name
 * "stage S partition P: row r", which nobody can find; a file source knows each row's file
 * (Spark's hidden `_metadata` column), so on failure the driver asks it, in one small job over
 * that one partition. The scan splits files by size, not by columns, so the partition and its
 * row order are the same with the metadata selected.
 */
object InputLocation {
  /** "row k (from 0) of FILE" for row `row` of input partition `partition`, when df reads files. */
  def describe(df: DataFrame, partition: Int, row: Long): Option[String] = try {
    val rdd = df.select(col("_metadata.file_path"), col("_metadata.file_block_start")).queryExecution.toRdd
    if (partition < 0 || row < 0 || partition >= rdd.getNumPartitions) None
    else {
      val found = df.sparkSession.sparkContext.runJob(rdd, (it: Iterator[InternalRow]) => {
        // The row's place within its file's part of this partition (a partition may hold several files).
        var i = 0L; var inFile = -1L; var file: String = null; var start = 0L
        while (i <= row && it.hasNext) {
          val r = it.next()
          val f = r.getUTF8String(0).toString
          if (f != file) { file = f; inFile = 0L; start = r.getLong(1) } else inFile += 1
          i += 1
        }
        if (i == row + 1) Some((file, start, inFile)) else None
      }, Seq(partition)).head
      found.map {
        case (file, 0L, k) => s"row $k (from 0) of $file"
        case (file, start, k) => s"row $k (from 0) of the part of $file from byte $start"
      }
    }
  } catch { case NonFatal(_) => None }

  /**
   * The failure of a job that read df, with its bad row named in the user's files when it is an
   * InputRowException the driver can place; any other failure unchanged.
   */
  def relocate(df: DataFrame, failure: Throwable): Throwable = rowException(failure) match {
    case Some(e) if e.partition >= 0 =>
      describe(df, e.partition, e.row).fold(failure) { where =>
        val located = e.locatedAt(where)
        located.initCause(failure) // the task's own trace stays in the log
        located
      }
    case _ => failure
  }

  @tailrec private def rowException(t: Throwable, depth: Int = 0): Option[InputRowException] = t match {
    case null => None
    case e: InputRowException => Some(e)
    case other if depth < 20 => rowException(other.getCause, depth + 1)
    case _ => None
  }
}
