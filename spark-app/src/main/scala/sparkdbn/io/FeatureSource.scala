package sparkdbn.io

import org.apache.spark.ml.linalg.{SQLDataTypes, Vector}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{SpecializedGetters, UnsafeArrayData}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.Platform

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

  def isNumeric(t: DataType): Boolean = t match {
    case ByteType | ShortType | IntegerType | LongType | FloatType | DoubleType => true
    case _: DecimalType => true
    case _ => false
  }

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

