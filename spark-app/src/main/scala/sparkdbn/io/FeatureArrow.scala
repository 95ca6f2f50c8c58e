package sparkdbn.io

import scala.jdk.CollectionConverters._

import com.google.protobuf.{ByteString, UnsafeByteOperations}
import org.apache.arrow.memory.ArrowBuf
import org.apache.arrow.vector.{Float4Vector, Float8Vector, IntVector, VectorSchemaRoot}
import org.apache.arrow.vector.complex.FixedSizeListVector
import org.apache.arrow.vector.ipc.{ArrowStreamReader, ArrowStreamWriter}
import org.apache.arrow.vector.types.FloatingPointPrecision
import org.apache.arrow.vector.types.pojo.{ArrowType, Field, FieldType, Schema}
import org.apache.spark.ml.linalg.{SQLDataTypes, Vector}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{SpecializedGetters, UnsafeArrayData}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.Platform

/**
 * Bad input found while a task reads its rows: `where` names the row as the reader knows it, `problem`
 * says what is wrong ("column 'c' is NaN"). `partition` and `row` (the row's place in that input
 * partition, from 0; -1 when not known) let the driver say where the row is in the user's files
 * (InputLocation); `key` names it by the user's id column ("id = 1234", RowKey) when one is given.
 */
final class InputRowException(val where: String, val problem: String, val partition: Int = -1, val row: Long = -1L,
    val key: String = "") extends IllegalArgumentException(if (key.isEmpty) s"$where: $problem" else s"$where ($key): $problem") {
  /** The same, placed at `row` of input `partition` by a reader that counts rows. */
  def at(partition: Int, row: Long): InputRowException = new InputRowException(where, problem, partition, row, key)
  /** The same, with the row's id ("id = 1234"). */
  def keyed(key: String): InputRowException = new InputRowException(where, problem, partition, row, key)
  /** The same, with the row's id when the user gave an id column (RowKey). */
  def keyedBy(key: Option[RowKey], row: org.apache.spark.sql.catalyst.InternalRow): InputRowException =
    key.fold(this)(k => keyed(k.of(row)))
  /** The same row, named otherwise (its file and row there). */
  def locatedAt(where: String): InputRowException = new InputRowException(where, problem, partition, row, key)
}

object InputRowException {
  def apply(where: String, problem: String): InputRowException = new InputRowException(where, problem)
}

/**
 * Where a model's input vector comes from: one Vector or array column, or
 * several numeric columns. `check` runs in the driver against the schema;
 * `bind` gives what tasks use to read Spark's internal rows without boxing.
 */
sealed trait FeatureSource {
  def describe: String
  /** Input value j as the user knows it: "column 'V3'", or "column 'features' element 3". */
  def valueName(j: Int): String
  /**
   * Throws IllegalArgumentException naming the column when the schema does not
   * fit `n` inputs; with n = FeatureSource.AnyWidth only the types are checked.
   */
  def check(schema: StructType, n: Int): Unit
  /** The input width the schema tells without reading data, if it does. */
  def declaredWidth(schema: StructType): Option[Int]
  def bind(schema: StructType): BoundSource
}

/** Writes a row's n values as floats; throws InputRowException naming the row. */
trait BoundSource extends Serializable {
  /** Input value j as the user knows it (the source's own valueName). */
  def valueName(j: Int): String

  /**
   * Into memory at `address` of `base` in Spark's Platform terms: a float array and
   * Platform.FLOAT_ARRAY_OFFSET + 4 * i, or null and an off-heap address (an Arrow buffer's,
   * so that scoring writes each value once on its way to the sidecar). The caller guarantees
   * n floats of room there.
   */
  def fillAt(row: InternalRow, base: AnyRef, address: Long, n: Int, where: => String): Unit

  /** Into out(offset until offset + n). */
  final def fill(row: InternalRow, out: Array[Float], offset: Int, n: Int, where: => String): Unit = {
    require(offset >= 0 && offset.toLong + n <= out.length, s"no room for $n values at $offset of ${out.length}")
    fillAt(row, out, Platform.FLOAT_ARRAY_OFFSET + offset * 4L, n, where)
  }
}

object FeatureSource {
  /** For `check` before the width is known (an estimator learns it from the data). */
  val AnyWidth: Int = -1

  def isNumeric(t: DataType): Boolean = ArrowEncoder.isNumeric(t)

  private def field(schema: StructType, name: String): StructField =
    schema.fields.find(_.name == name).getOrElse(throw new IllegalArgumentException(
      s"column '$name' does not exist; the input has ${schema.fieldNames.mkString(", ")}"))

  /** A numeric value of type t at ordinal i of an internal row or array. */
  private[sparkdbn] def numberAt(t: DataType): (SpecializedGetters, Int) => Float = t match {
    case FloatType => (r, i) => r.getFloat(i)
    case DoubleType => (r, i) => r.getDouble(i).toFloat
    case IntegerType => (r, i) => r.getInt(i).toFloat
    case LongType => (r, i) => r.getLong(i).toFloat
    case ShortType => (r, i) => r.getShort(i).toFloat
    case ByteType => (r, i) => r.getByte(i).toFloat
    case d: DecimalType => (r, i) => r.getDecimal(i, d.precision, d.scale).toFloat
    case other => throw new IllegalArgumentException(s"${other.simpleString} is not numeric")
  }

  /**
   * Index of the first null of a's n elements, or -1. Spark's own layout keeps one null bit per
   * element after the 8-byte count: read 64 of them at a time (784 isNullAt calls a row had been a
   * tenth of a scoring task's time).
   */
  private[sparkdbn] def firstNull(a: org.apache.spark.sql.catalyst.util.ArrayData, n: Int): Int = a match {
    case u: UnsafeArrayData =>
      val base = u.getBaseObject
      val bits = u.getBaseOffset + 8
      var w = 0
      while (w * 64 < n) {
        val word = Platform.getLong(base, bits + w * 8L)
        if (word != 0) {
          val j = w * 64 + java.lang.Long.numberOfTrailingZeros(word)
          if (j < n) return j
        }
        w += 1
      }
      -1
    case other =>
      var j = 0
      while (j < n) {
        if (other.isNullAt(j)) return j
        j += 1
      }
      -1
  }

  /** One column holding a whole vector: a Spark ML Vector, array<float> or array<double>. */
  final case class VectorColumn(name: String) extends FeatureSource {
    def describe: String = s"column '$name'"
    def valueName(j: Int): String = s"column '$name' element $j"

    /** ML attribute metadata of a Vector column, when present, tells the size before any work. */
    def declaredWidth(schema: StructType): Option[Int] = field(schema, name) match {
      case f if f.dataType == SQLDataTypes.VectorType =>
        scala.util.Try(org.apache.spark.ml.attribute.AttributeGroup.fromStructField(f).size).toOption.filter(_ >= 0)
      case _ => None
    }

    def check(schema: StructType, n: Int): Unit = {
      val f = field(schema, name)
      f.dataType match {
        case SQLDataTypes.VectorType =>
          declaredWidth(schema).filter(size => n != AnyWidth && size != n).foreach { size =>
            throw new IllegalArgumentException(s"column '$name' holds vectors of size $size, the model takes $n inputs")
          }
        case ArrayType(e, _) if isNumeric(e) =>
        case other => throw new IllegalArgumentException(
          s"column '$name' is ${other.simpleString}; expected a Vector, array<float> or array<double>")
      }
    }

    def bind(schema: StructType): BoundSource = {
      val index = schema.fieldIndex(name)
      val col = name
      schema(index).dataType match {
        case SQLDataTypes.VectorType =>
          val udt = SQLDataTypes.VectorType.asInstanceOf[UserDefinedType[Vector]]
          new BoundSource {
            def valueName(j: Int): String = VectorColumn.this.valueName(j)
            def fillAt(row: InternalRow, base: AnyRef, address: Long, n: Int, where: => String): Unit = {
              if (row.isNullAt(index)) throw InputRowException(where, s"column '$col' is null")
              val v = udt.deserialize(row.getStruct(index, 4))
              if (v.size != n) throw InputRowException(where, s"column '$col' has a vector of size ${v.size}, the model takes $n")
              // Sparse vectors: zeros first, then the active entries.
              Platform.setMemory(base, address, n * 4L, 0.toByte)
              v.foreachActive((j, x) => Platform.putFloat(base, address + j * 4L, x.toFloat))
            }
          }
        case ArrayType(e, elementsNullable) =>
          val get = numberAt(e)
          val isFloat = e == FloatType
          new BoundSource {
            def valueName(j: Int): String = VectorColumn.this.valueName(j)
            def fillAt(row: InternalRow, base: AnyRef, address: Long, n: Int, where: => String): Unit = {
              if (row.isNullAt(index)) throw InputRowException(where, s"column '$col' is null")
              val a = row.getArray(index)
              if (a.numElements() != n) {
                throw InputRowException(where, s"column '$col' has an array of ${a.numElements()} values, the model takes $n")
              }
              if (isFloat) {
                // toFloatArray is one memory copy, but reads a null as 0: look for nulls first when the type allows them.
                if (elementsNullable) {
                  val j = firstNull(a, n)
                  if (j >= 0) throw InputRowException(where, s"column '$col' element $j is null")
                }
                a match {
                  // Spark's own layout: the values are one run of floats after the header; copy them
                  // straight across (toFloatArray would allocate and copy once more).
                  case u: UnsafeArrayData =>
                    Platform.copyMemory(u.getBaseObject, u.getBaseOffset + UnsafeArrayData.calculateHeaderPortionInBytes(n),
                      base, address, n.toLong * 4)
                  case other => Platform.copyMemory(other.toFloatArray(), Platform.FLOAT_ARRAY_OFFSET, base, address, n.toLong * 4)
                }
              } else {
                var j = 0
                while (j < n) {
                  if (a.isNullAt(j)) throw InputRowException(where, s"column '$col' element $j is null")
                  Platform.putFloat(base, address + j * 4L, get(a, j))
                  j += 1
                }
              }
            }
          }
        case other => throw new IllegalArgumentException(s"column '$name' is ${other.simpleString}")
      }
    }
  }

  /** One numeric column per input. */
  final case class NumericColumns(names: Seq[String]) extends FeatureSource {
    def describe: String = s"columns ${names.mkString(", ")}"
    def valueName(j: Int): String = s"column '${names(j)}'"

    def declaredWidth(schema: StructType): Option[Int] = Some(names.length)

    def check(schema: StructType, n: Int): Unit = {
      if (n != AnyWidth && names.length != n) {
        throw new IllegalArgumentException(s"${names.length} input columns given, the model takes $n inputs")
      }
      names.foreach { c =>
        val f = field(schema, c)
        if (!isNumeric(f.dataType)) throw new IllegalArgumentException(s"column '$c' is ${f.dataType.simpleString}, not numeric")
      }
    }

    def bind(schema: StructType): BoundSource = {
      val indices = names.map(schema.fieldIndex).toArray
      val getters = indices.map(i => numberAt(schema(i).dataType))
      val cols = names.toArray
      new BoundSource {
        def valueName(j: Int): String = NumericColumns.this.valueName(j)
        def fillAt(row: InternalRow, base: AnyRef, address: Long, n: Int, where: => String): Unit = {
          var k = 0
          while (k < n) {
            if (row.isNullAt(indices(k))) throw InputRowException(where, s"column '${cols(k)}' is null")
            Platform.putFloat(base, address + k * 4L, getters(k)(row, indices(k)))
            k += 1
          }
        }
      }
    }
  }
}

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
      VectorSchemaRoot.create(s, ArrowEncoder.allocator)
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

  /** count floats of buf from value `from` on, into a new array: one memory copy. */
  private def copyOut(buf: ArrowBuf, from: Int, count: Int): Array[Float] = {
    val out = new Array[Float](count)
    if (nativeLittleEndian) Platform.copyMemory(null, buf.memoryAddress() + from.toLong * 4, out, Platform.FLOAT_ARRAY_OFFSET, count.toLong * 4)
    else { var i = 0; while (i < count) { out(i) = buf.getFloat((from + i).toLong * 4); i += 1 } }
    out
  }

  /** A decoded result batch: each named vector column as row-major floats, each double column (prediction, scores) as doubles. */
  final case class Result(rows: Int, vectors: Map[String, (Int, Array[Float])], doubles: Map[String, Array[Double]])

  def decode(bytes: ByteString): Result = {
    val reader = new ArrowStreamReader(bytes.newInput(), ArrowEncoder.allocator)
    try {
      val root = reader.getVectorSchemaRoot
      var rows = 0
      var vectors = Map.empty[String, (Int, Array[Float])]
      var doubles = Map.empty[String, Array[Double]]
      while (reader.loadNextBatch()) {
        rows = root.getRowCount
        root.getFieldVectors.asScala.foreach {
          case l: FixedSizeListVector =>
            val n = l.getListSize
            vectors += l.getName -> (n, copyOut(l.getDataVector.getDataBuffer, 0, rows * n))
          case d: Float8Vector =>
            doubles += d.getName -> Array.tabulate(rows)(d.get)
          case other => throw new IllegalStateException(s"unexpected result column ${other.getName}")
        }
      }
      Result(rows, vectors, doubles)
    } finally reader.close()
  }
}
