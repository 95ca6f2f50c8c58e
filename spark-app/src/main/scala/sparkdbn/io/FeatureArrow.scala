package sparkdbn.io

import com.google.protobuf.{ByteString, UnsafeByteOperations}
import org.apache.arrow.memory.ArrowBuf
import org.apache.arrow.vector.{Float4Vector, IntVector, VectorSchemaRoot}
import org.apache.arrow.vector.complex.FixedSizeListVector
import org.apache.arrow.vector.ipc.ArrowStreamWriter
import org.apache.arrow.vector.types.FloatingPointPrecision
import org.apache.arrow.vector.types.pojo.{ArrowType, Field, FieldType, Schema}
import org.apache.spark.unsafe.Platform

/** The data plane's Arrow format: one FixedSizeList<Float32>(n) column per batch. */
object FeatureArrow {
  def schema(name: String, n: Int): Schema = {
    val child = new Field("element", FieldType.notNullable(new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE)), null)
    new Schema(java.util.List.of(new Field(name, FieldType.notNullable(new ArrowType.FixedSizeList(n)), java.util.List.of(child))))
  }

  /**
   * Encodes a task's batches of up to `maxRows` rows of `n` values (plus labels
   * when `labelled`), each as a self-contained Arrow IPC stream (schema, one
   * batch, end), reusing one set of Arrow buffers: they are allocated, zeroed and
   * marked valid once per task, not once per batch. The bytes go into one array
   * per batch (no intermediate stream buffer), which protobuf wraps without copying.
   * Three ways in: `encode` copies the values into Arrow's buffer and returns new
   * bytes each call (gRPC may hold a message after onNext); `encodeFilled` takes
   * values the caller wrote at `valuesAddress` and writes into an array the caller
   * reuses once it knows gRPC is done with it; `fullBatchLayout` lets a caller
   * write a full batch's values straight into that array.
   */
  final class Encoder(n: Int, labelled: Boolean, maxRows: Int) extends AutoCloseable {
    require(n > 0 && maxRows > 0, s"n = $n and maxRows = $maxRows must be positive")
    require(maxRows.toLong * n <= Int.MaxValue / 4, s"$maxRows rows of $n values do not fit one Arrow buffer")
    private val root = {
      val base = schema("features", n)
      val s = if (!labelled) base else new Schema(java.util.List.of(base.getFields.get(0),
        new Field("label", FieldType.notNullable(new ArrowType.Int(32, true)), null)))
      VectorSchemaRoot.create(s, ArrowMemory.allocator)
    }
    private val list = root.getVector(0).asInstanceOf[FixedSizeListVector]
    private val child = list.getDataVector.asInstanceOf[Float4Vector]
    private val label = if (labelled) root.getVector(1).asInstanceOf[IntVector] else null
    try {
      list.setInitialCapacity(maxRows)
      list.allocateNew()
      child.allocateNew(maxRows * n)
      // Every value is valid, in every batch: set once.
      child.getValidityBuffer.setOne(0, ((maxRows.toLong * n + 7) / 8))
      list.getValidityBuffer.setOne(0, ((maxRows + 7) / 8).toLong)
      if (labelled) label.allocateNew(maxRows)
    } catch {
      case e: Throwable =>
        root.close()
        throw e
    }

    def encode(values: Array[Float], rows: Int, labels: Array[Int]): ByteString = {
      require(rows > 0 && rows <= maxRows, s"a batch of $rows rows; this encoder takes 1 to $maxRows")
      require(values.length >= rows * n, s"${values.length} values for $rows rows of $n")
      copyIn(values, rows * n, child.getDataBuffer)
      encodeFilled(rows, labels, null).bytes
    }

    /**
     * Where row r's values go when the caller writes them in place (BoundSource.fillAt with a
     * null base): row r starts at valuesAddress + 4 * n * r, for r < maxRows. Valid until close.
     */
    def valuesAddress: Long = { require(!closed, "the encoder is closed"); child.getDataBuffer.memoryAddress() }

    /**
     * A batch of `rows` rows whose values the caller wrote at `valuesAddress`, into `reuse` when it
     * is large enough (else into a new array): for a caller that knows when gRPC is done with a
     * batch's bytes, so that a task does not allocate (and the JVM zero, and later collect) a
     * message-sized array per batch.
     */
    def encodeFilled(rows: Int, labels: Array[Int], reuse: Array[Byte]): Encoded = {
      require(rows > 0 && rows <= maxRows, s"a batch of $rows rows; this encoder takes 1 to $maxRows")
      require(labelled == (labels != null), if (labelled) "labels missing" else "labels given to an unlabelled encoder")
      val total = rows * n
      child.setValueCount(total)
      list.setValueCount(rows)
      if (labelled) {
        var i = 0
        while (i < rows) { label.set(i, labels(i)); i += 1 }
        label.setValueCount(rows)
      }
      root.setRowCount(rows)
      val capacity = capacityFor(rows)
      val out = new ArrayChannel(if (reuse != null && reuse.length >= capacity) reuse else null, capacity)
      val writer = new ArrowStreamWriter(root, null, out)
      writer.start()
      writer.writeBatch()
      writer.end()
      writer.close()
      out.encoded
    }

    /**
     * How a full batch (maxRows rows, unlabelled) is written straight into its message, made once
     * per executor and shape (FeatureArrow.FullBatchLayout); None when labelled, or when Arrow's
     * layout is not the one expected: then `encodeFilled`.
     */
    lazy val fullBatchLayout: Option[FullBatchLayout] =
      if (labelled) None
      else layouts.computeIfAbsent((n, maxRows), _ => makeLayout())

    private def makeLayout(): Option[FullBatchLayout] = {
      val total = maxRows * n
      val data = child.getDataBuffer
      // Every value distinct from its neighbours' bytes: a misplaced guess cannot match by chance.
      var i = 0
      while (i < total) { data.setInt(i * 4L, 0x5a000000 ^ i); i += 1 }
      val t = encodeFilled(maxRows, null, null)
      val template = java.util.Arrays.copyOf(t.array, t.length)
      val offset = t.length - 8 - ((total * 4 + 7) / 8 * 8)
      val bb = java.nio.ByteBuffer.wrap(template).order(java.nio.ByteOrder.LITTLE_ENDIAN)
      val fits = offset > 0 && (0 until total).forall(j => bb.getInt(offset + j * 4) == (0x5a000000 ^ j))
      if (fits) Some(new FullBatchLayout(template, offset, total * 4)) else None
    }

    /** Bytes enough for any batch of up to `rows` rows. */
    def capacityFor(rows: Int): Long = {
      val total = rows.toLong * n
      // Values, their validity bits, the list's and the labels' buffers (each padded to 8), metadata.
      total * 4 + total / 8 + (if (labelled) rows.toLong * 5 else 0) + rows / 8 + 4096
    }

    private var closed = false
    override def close(): Unit = if (!closed) {
      closed = true
      root.close()
    }
  }

  /**
   * A full batch's Arrow bytes are the same but for the values, which Arrow writes last, just
   * before the stream's 8-byte end marker. So a caller writes the rows' values at `valuesOffset`
   * of a message array of `length` bytes, and `finishFull` copies the rest from a template Arrow
   * wrote once (over a known pattern, to check that the values are where expected): the values
   * are copied once on their way in, not twice (into Arrow's buffer, then out of it).
   */
  final class FullBatchLayout private[FeatureArrow] (template: Array[Byte], val valuesOffset: Int, valuesBytes: Int) {
    val length: Int = template.length
    private val valuesEnd = valuesOffset + valuesBytes

    /** The batch in `message`, whose values at valuesOffset the caller wrote. */
    def finishFull(message: Array[Byte]): Encoded = {
      require(message.length >= length, s"a message of ${message.length} bytes; a full batch takes $length")
      System.arraycopy(template, 0, message, 0, valuesOffset)
      System.arraycopy(template, valuesEnd, message, valuesEnd, length - valuesEnd)
      new Encoded(message, length)
    }
  }

  // One per (values per row, rows per batch): a few per executor; each the size of a batch.
  private val layouts = new java.util.concurrent.ConcurrentHashMap[(Int, Int), Option[FullBatchLayout]]()

  /** An encoded batch: the first `length` bytes of `array`. */
  final class Encoded(val array: Array[Byte], val length: Int) {
    /** The bytes as protobuf's ByteString, without a copy: `array` must not change while gRPC may read it. */
    def bytes: ByteString = UnsafeByteOperations.unsafeWrap(array, 0, length)
  }

  /**
   * Collects a stream's bytes in one array (`into`, or a new one of `capacity` bytes), copying
   * each buffer in once (Arrow's buffers are direct).
   */
  private final class ArrayChannel(into: Array[Byte], capacity: Long) extends java.nio.channels.WritableByteChannel {
    require(capacity < Int.MaxValue - 8, s"a batch of $capacity bytes is too large for one message")
    private var buf = if (into != null) into else new Array[Byte](capacity.toInt)
    private var count = 0
    override def write(src: java.nio.ByteBuffer): Int = {
      val k = src.remaining()
      if (count + k > buf.length) buf = java.util.Arrays.copyOf(buf, math.max(count + k, buf.length + (buf.length >> 1)))
      src.get(buf, count, k)
      count += k
      k
    }
    override def isOpen: Boolean = true
    override def close(): Unit = ()
    def encoded: Encoded = new Encoded(buf, count)
  }

  // Arrow buffers are little-endian; so are the JVM's arrays on the hosts we run on (checked).
  private val nativeLittleEndian = java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN

  /** values(0 until count) into buf from byte 0: one memory copy. */
  private def copyIn(values: Array[Float], count: Int, buf: ArrowBuf): Unit =
    if (nativeLittleEndian) Platform.copyMemory(values, Platform.FLOAT_ARRAY_OFFSET, null, buf.memoryAddress(), count.toLong * 4)
    else { var i = 0; while (i < count) { buf.setFloat(i.toLong * 4, values(i)); i += 1 } }
}
