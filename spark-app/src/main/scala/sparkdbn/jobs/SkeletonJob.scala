package sparkdbn.jobs

import scala.jdk.CollectionConverters._

import com.google.protobuf.UnsafeByteOperations
import org.apache.spark.{SparkEnv, TaskContext}
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types._

import sparkdbn.io.{ArrowEncoder, Inputs}
import sparkdbn.proto.{ArrowChunk, IngestSummary}
import sparkdbn.sidecar.{SidecarClient, SidecarManager, TaskId}

/**
 * The walking skeleton: every partition streams its numeric columns to its
 * executor's sidecar as Arrow, and what the sidecar decoded (rows and sums per
 * column) becomes a table, one row per (partition, column).
 */
object SkeletonJob {
  final case class Options(
      input: String = null,
      format: String = "parquet",
      table: String = null,
      partitions: Option[Int] = None,
      batchRows: Int = 4096)

  val ResultSchema: StructType = StructType(Seq(
    StructField("partition", IntegerType, nullable = false),
    StructField("executor_id", StringType, nullable = false),
    StructField("sidecar_pid", LongType, nullable = false),
    StructField("rows", LongType, nullable = false),
    StructField("batches", IntegerType, nullable = false),
    StructField("column", StringType, nullable = false),
    StructField("sum", DoubleType, nullable = false),
    StructField("count", LongType, nullable = false)))

  /**
   * The input as the job partitions it: hash of every column when `partitions`
   * is set, so `DISTRIBUTE BY <all columns>` in SQL yields the same partitions.
   */
  def partitioned(df: DataFrame, partitions: Option[Int]): DataFrame =
    partitions.fold(df)(n => df.repartition(n, df.columns.map(df.col).toIndexedSeq: _*))

  def run(spark: SparkSession, opts: Options): DataFrame = {
    val df = partitioned(Inputs.read(spark, opts.input, opts.format), opts.partitions)
    val columns = ArrowEncoder.numericColumns(df.schema)
    if (columns.isEmpty) {
      throw new IllegalArgumentException(s"input ${opts.input} has no numeric column; its schema is " +
        df.schema.fields.map(f => s"${f.name}: ${f.dataType.simpleString}").mkString(", "))
    }
    val batchRows = opts.batchRows
    val results = df.rdd.mapPartitionsWithIndex { (index, rows) =>
      val client = SidecarManager.client()
      val summary = ingest(client, ArrowEncoder.encode(rows, columns, batchRows), s"partition $index")
      val exec = SparkEnv.get.executorId
      summary.getColumnsList.asScala.iterator.map { c =>
        Row(index, exec, summary.getPid.toLong, summary.getRows, summary.getBatches, c.getName, c.getSum, c.getCount)
      }
    }
    spark.createDataFrame(results, ResultSchema)
  }

  /** Streams the chunks with gRPC flow control and waits for the summary. */
  def ingest(client: SidecarClient, chunks: Iterator[Array[Byte]], label: String): IngestSummary = {
    val task = Option(TaskContext.get()).fold(label)(TaskId.of(_).label)
    client.ingestArrow(chunks.map(bytes => ArrowChunk.newBuilder().setIpcStream(UnsafeByteOperations.unsafeWrap(bytes)).setTask(task).build()))
  }
}
