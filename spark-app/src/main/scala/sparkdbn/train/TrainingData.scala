package sparkdbn.train

import scala.util.control.NonFatal

import org.apache.spark.{Partitioner, TaskContext}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types._
import org.apache.spark.storage.StorageLevel

import sparkdbn.io.{FeatureSource, InputLocation, InputRowException, RowKey}

/** A block of a partition's rows: values (rows, n) row-major, labels or null. */
final case class Chunk(values: Array[Float], labels: Array[Int], rows: Int)

/**
 * What one pass over the prepared data measured, per partition: each column's mean and sum of squared
 * deviations from it (m2), which combine across partitions without the cancellation of sums of squares.
 */
final case class PartitionStats(partition: Int, rows: Long, means: Array[Double], m2: Array[Double], maxLabel: Int)

object PartitionStats {
  /** Chan et al.'s pairwise update: the statistics of a's rows and b's together. */
  def combine(a: PartitionStats, b: PartitionStats): PartitionStats = {
    if (a.rows == 0) return b.copy(partition = a.partition, maxLabel = math.max(a.maxLabel, b.maxLabel))
    if (b.rows == 0) return a.copy(maxLabel = math.max(a.maxLabel, b.maxLabel))
    val n = a.rows + b.rows
    val means = new Array[Double](a.means.length)
    val m2 = new Array[Double](a.means.length)
    var j = 0
    while (j < means.length) {
      val d = b.means(j) - a.means(j)
      means(j) = a.means(j) + d * b.rows / n
      m2(j) = a.m2(j) + b.m2(j) + d * d * (a.rows.toDouble * b.rows / n)
      j += 1
    }
    PartitionStats(a.partition, n, means, m2, math.max(a.maxLabel, b.maxLabel))
  }

  /** The statistics of one chunk's rows (two passes: the mean, then the squared deviations from it). */
  def of(partition: Int, c: Chunk, n: Int): PartitionStats = {
    val means = new Array[Double](n)
    val m2 = new Array[Double](n)
    var o = 0
    while (o < c.rows * n) { var j = 0; while (j < n) { means(j) += c.values(o + j); j += 1 }; o += n }
    var j = 0
    while (j < n) { means(j) /= math.max(1, c.rows); j += 1 }
    o = 0
    while (o < c.rows * n) { var j = 0; while (j < n) { val d = c.values(o + j) - means(j); m2(j) += d * d; j += 1 }; o += n }
    PartitionStats(partition, c.rows, means, m2, if (c.labels == null || c.rows == 0) -1 else c.labels.max)
  }
}

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
  private lazy val all: PartitionStats = stats.reduce(PartitionStats.combine)
  /** Per-column means of the input over all rows. */
  def means: Array[Double] = all.means
  /** Per-column sample standard deviations (n - 1, as Spark SQL's stddev) over all rows. */
  def stddevs: Array[Double] = all.m2.map(m => math.sqrt(m / math.max(1L, totalRows - 1)))
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

  /**
   * Bernoulli visible units take values in [0, 1]: checked here, where the input's row is known, rather
   * than by the sidecar, which sees only the row of the redistributed training partition.
   */
  def prepare(df: DataFrame, source: FeatureSource, n: Int, labelCol: String, partitions: Int,
      bernoulli: Boolean = false, idCol: String = ""): TrainingData = {
    source.check(df.schema, n)
    checkLabel(df.schema, labelCol)
    val rowKey = RowKey.bind(df.schema, idCol)
    val bound = source.bind(df.schema)
    val labelIndex = if (labelCol.isEmpty) -1 else df.schema.fieldIndex(labelCol)
    val labelAt = if (labelIndex < 0) null else FeatureSource.numberAt(df.schema(labelIndex).dataType)
    val P = if (partitions > 0) partitions else df.rdd.getNumPartitions
    val labelled = labelIndex >= 0
    val label = labelCol
    // (input partition << 40 | row) -> (values, label): a compact copy of each row.
    val keyed: RDD[(Long, (Array[Float], Int))] = df.queryExecution.toRdd.mapPartitionsWithIndex { (pid, rows: Iterator[InternalRow]) =>
      val ctx = TaskContext.get()
      // A row's place (the stage and partition that read it), not a task's label: any attempt reads the same row.
      val where = s"stage ${ctx.stageId()} partition $pid"
      var r = 0L
      rows.map { row =>
        val v = new Array[Float](n)
        // Bad rows carry their partition and row, so that the driver can name them in the user's files.
        def bad(problem: String) = InputRowException(s"$where: row $r", problem).at(pid, r).keyedBy(rowKey, row)
        try bound.fill(row, v, 0, n, s"$where: row $r")
        catch { case e: InputRowException => throw e.at(pid, r).keyedBy(rowKey, row) }
        // Checked here, where the row can still be named, before any statistic is computed from it.
        var j = 0
        while (j < n) {
          val x = v(j)
          if (x.isNaN || x.isInfinite) throw bad(s"${source.valueName(j)} is $x")
          if (bernoulli && !(x >= 0f && x <= 1f)) throw bad(s"${source.valueName(j)} is $x, outside [0, 1] for Bernoulli visible units")
          j += 1
        }
        val y = if (labelIndex < 0) 0 else {
          if (row.isNullAt(labelIndex)) throw bad(s"label column '$label' is null")
          val d = labelAt(row, labelIndex)
          if (!(d >= 0 && d < 100000 && d == math.floor(d))) {
            throw bad(s"label column '$label' is $d; labels must be integers 0..C-1")
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
    // The first pass over the input: where a bad row fails it, named in the user's files when they are files.
    val stats = try chunks.mapPartitionsWithIndex { (p, it) =>
      val none = PartitionStats(p, 0L, new Array[Double](n), new Array[Double](n), -1)
      Iterator(it.foldLeft(none)((acc, c) => PartitionStats.combine(acc, PartitionStats.of(p, c, n))))
    }.collect().sortBy(_.partition).toSeq catch {
      case NonFatal(e) =>
        chunks.unpersist(blocking = false)
        throw InputLocation.relocate(df, e)
    }
    val empty = stats.filter(_.rows == 0).map(_.partition)
    if (empty.nonEmpty) {
      chunks.unpersist(blocking = false)
      throw new IllegalArgumentException(s"${stats.map(_.rows).sum} rows cannot fill $P partitions: " +
        s"partitions ${empty.mkString(", ")} would be empty; use fewer partitions")
    }
    new TrainingData(chunks, n, labelled, stats)
  }
}
