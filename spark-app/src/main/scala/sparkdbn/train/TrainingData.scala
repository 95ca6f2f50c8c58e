package sparkdbn.train

import org.apache.spark.{HashPartitioner, Partitioner, TaskContext}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types._
import org.apache.spark.storage.StorageLevel

import sparkdbn.io.{FeatureSource, InputRowException}

/** A block of a partition's rows: values (rows, n) row-major, labels or null. */
final case class Chunk(values: Array[Float], labels: Array[Int], rows: Int)

/** What one pass over the prepared data measured, per partition. */
final case class PartitionStats(partition: Int, rows: Long, sums: Array[Double], maxLabel: Int)

/**
 * The training input as replicas use it: `partitions` partitions of chunks,
 * persisted so that a task that must re-send its rows (a new or restarted
 * sidecar) reads them locally, and so that rounds of a partition are
 * scheduled where its rows, and its sidecar's cache of them, already are.
 * Row i of input partition j goes to partition (i + j) mod P, ordered: the
 * split is deterministic, so a seeded run sees the same rows in the same order.
 */
final class TrainingData(val chunks: RDD[Chunk], val nInputs: Int, val labelled: Boolean, val stats: Seq[PartitionStats]) {
  def partitions: Int = chunks.getNumPartitions
  def rows(p: Int): Long = stats(p).rows
  def totalRows: Long = stats.map(_.rows).sum
  def numClasses: Int = if (labelled) stats.map(_.maxLabel).max + 1 else 0
  /** Per-column means of the input over all rows. */
  def means: Array[Double] = {
    val s = new Array[Double](nInputs)
    stats.foreach(p => (0 until nInputs).foreach(j => s(j) += p.sums(j)))
    s.map(_ / totalRows)
  }
  def unpersist(): Unit = chunks.unpersist(blocking = false)
}

object TrainingData {
  val ChunkRows = 4096

  /** Rows per chunk for inputs of width n: at most ChunkRows, and at most 8 MB of values. */
  def chunkRows(n: Int): Int = math.max(1, math.min(ChunkRows, (8 << 20) / (4 * n)))

  private final class ModPartitioner(val numPartitions: Int) extends Partitioner {
    override def getPartition(key: Any): Int = {
      val k = key.asInstanceOf[Long]
      (((k >>> 40) + (k & 0xffffffffffL)) % numPartitions).toInt
    }
  }

  /** The label column exists and is numeric: checked in the driver, before any work. */
  def checkLabel(schema: StructType, labelCol: String): Unit = if (labelCol.nonEmpty) {
    val f = schema.fields.find(_.name == labelCol).getOrElse(throw new IllegalArgumentException(
      s"label column '$labelCol' does not exist; the input has ${schema.fieldNames.mkString(", ")}"))
    if (!FeatureSource.isNumeric(f.dataType)) {
      throw new IllegalArgumentException(s"label column '$labelCol' is ${f.dataType.simpleString}, not numeric")
    }
  }

  /** The input width: what the schema declares, else the length of the first non-null vector or array. */
  def inputWidth(df: DataFrame, source: FeatureSource): Int = source.declaredWidth(df.schema).getOrElse {
    val name = source.asInstanceOf[FeatureSource.VectorColumn].name
    val first = df.select(name).where(org.apache.spark.sql.functions.col(name).isNotNull).head(1)
    if (first.isEmpty) throw new IllegalArgumentException(s"column '$name' has no non-null value: nothing to train on")
    first.head.get(0) match {
      case v: org.apache.spark.ml.linalg.Vector => v.size
      case s: scala.collection.Seq[_] => s.length
      case other => throw new IllegalArgumentException(s"column '$name' holds ${other.getClass.getSimpleName}")
    }
  }

  def prepare(df: DataFrame, source: FeatureSource, n: Int, labelCol: String, partitions: Int): TrainingData = {
    source.check(df.schema, n)
    checkLabel(df.schema, labelCol)
    val bound = source.bind(df.schema)
    val labelIndex = if (labelCol.isEmpty) -1 else df.schema.fieldIndex(labelCol)
    val labelAt = if (labelIndex < 0) null else FeatureSource.numberAt(df.schema(labelIndex).dataType)
    val P = if (partitions > 0) partitions else df.rdd.getNumPartitions
    val labelled = labelIndex >= 0
    val label = labelCol
    // (input partition << 40 | row) -> (values, label): a compact copy of each row.
    val keyed: RDD[(Long, (Array[Float], Int))] = df.queryExecution.toRdd.mapPartitionsWithIndex { (pid, rows: Iterator[InternalRow]) =>
      val ctx = TaskContext.get()
      val where = s"stage ${ctx.stageId()} partition $pid"
      var r = 0L
      rows.map { row =>
        val v = new Array[Float](n)
        bound.fill(row, v, 0, n, s"$where: row $r")
        val y = if (labelIndex < 0) 0 else {
          if (row.isNullAt(labelIndex)) throw new InputRowException(s"$where: row $r: label column '$label' is null")
          val d = labelAt(row, labelIndex)
          if (!(d >= 0 && d < 100000 && d == math.floor(d))) {
            throw new InputRowException(s"$where: row $r: label column '$label' is $d; labels must be integers 0..C-1")
          }
          d.toInt
        }
        val key = (pid.toLong << 40) | r
        r += 1
        (key, (v, y))
      }
    }
    val chunks = keyed.repartitionAndSortWithinPartitions(new ModPartitioner(P)).mapPartitions { it =>
      val perChunk = chunkRows(n)
      it.grouped(perChunk).map { group =>
        val rows = group.length
        val values = new Array[Float](rows * n)
        val labels = if (labelled) new Array[Int](rows) else null
        var i = 0
        group.foreach { case (_, (v, y)) =>
          System.arraycopy(v, 0, values, i * n, n)
          if (labelled) labels(i) = y
          i += 1
        }
        Chunk(values, labels, rows)
      }
    }.setName(s"spark-dbn training data ($P partitions)").persist(StorageLevel.MEMORY_AND_DISK)
    val stats = chunks.mapPartitionsWithIndex { (p, it) =>
      val sums = new Array[Double](n)
      var rows = 0L
      var maxLabel = -1
      it.foreach { c =>
        var o = 0
        while (o < c.rows * n) {
          var j = 0
          while (j < n) { sums(j) += c.values(o + j); j += 1 }
          o += n
        }
        if (c.labels != null) c.labels.foreach(y => maxLabel = math.max(maxLabel, y))
        rows += c.rows
      }
      Iterator(PartitionStats(p, rows, sums, maxLabel))
    }.collect().sortBy(_.partition).toSeq
    val empty = stats.filter(_.rows == 0).map(_.partition)
    if (empty.nonEmpty) {
      chunks.unpersist(blocking = false)
      throw new IllegalArgumentException(s"${stats.map(_.rows).sum} rows cannot fill $P partitions: " +
        s"partitions ${empty.mkString(", ")} would be empty; use fewer partitions")
    }
    new TrainingData(chunks, n, labelled, stats)
  }
}
