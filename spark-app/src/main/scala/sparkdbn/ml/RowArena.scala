package sparkdbn.ml

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{UnsafeProjection, UnsafeRow}
import org.apache.spark.sql.types.StructType
import org.apache.spark.unsafe.Platform

import sparkdbn.io.ArrayPool

/**
 * Copies of a batch's input rows, kept until their answer arrives, in one byte
 * array reused batch after batch (`clear`): a copy of each row as an object of
 * its own was a batch's worth of garbage per batch, and the JVM's collector
 * spent more CPU on it than the task did on its rows (scripts/bench ingest).
 * Rows that are not UnsafeRows are made so with a projection of `schema`. The
 * array comes from ArrayPool.bytes and goes back there on `release`.
 */
private[ml] final class RowArena(schema: StructType, capacity: Int) {
  private val numFields = schema.length
  private var buf = ArrayPool.bytes.borrow(0)
  private var used = 0L
  private val offsets = new Array[Long](capacity)
  private val views = Array.fill(capacity)(new UnsafeRow(numFields))
  private var count = 0
  private lazy val toUnsafe = UnsafeProjection.create(schema)

  def size: Int = count
  def clear(): Unit = { used = 0; count = 0 }

  def add(row: InternalRow): Unit = {
    require(count < capacity, s"a batch holds at most $capacity rows")
    val u = row match {
      case u: UnsafeRow => u
      case other => toUnsafe(other)
    }
    val bytes = u.getSizeInBytes
    if (used + bytes > buf.length) {
      // Grows while a batch fills, never after: rows point into it only once the batch is full (`rows`).
      // The first guess: a batch of rows the size of this one.
      val limit = Int.MaxValue - 16L
      require(used + bytes <= limit, s"a batch's rows take more than $limit bytes; lower batchRows")
      val want = math.min(limit, math.max(used + bytes, math.max(buf.length.toLong * 3 / 2, bytes.toLong * capacity)))
      val bigger = ArrayPool.bytes.borrow(want.toInt)
      System.arraycopy(buf, 0, bigger, 0, used.toInt)
      ArrayPool.bytes.giveBack(buf)
      buf = bigger
    }
    u.writeToMemory(buf, Platform.BYTE_ARRAY_OFFSET + used)
    offsets(count) = used
    used += bytes
    count += 1
  }

  /** Gives the array back to the pool: the arena and the rows it returned must not be used again. */
  def release(): Unit = {
    ArrayPool.bytes.giveBack(buf)
    buf = null
  }

  /** The batch's rows, valid until the next `clear`. */
  def rows: Array[InternalRow] = {
    val out = new Array[InternalRow](count)
    var i = 0
    while (i < count) {
      val end = if (i + 1 < count) offsets(i + 1) else used
      views(i).pointTo(buf, Platform.BYTE_ARRAY_OFFSET + offsets(i), (end - offsets(i)).toInt)
      out(i) = views(i)
      i += 1
    }
    out
  }
}
