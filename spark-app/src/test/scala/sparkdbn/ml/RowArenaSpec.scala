package sparkdbn.ml

import org.apache.spark.sql.Row
import org.apache.spark.sql.catalyst.CatalystTypeConverters
import org.apache.spark.sql.catalyst.expressions.{GenericInternalRow, UnsafeProjection}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String
import org.scalatest.funsuite.AnyFunSuite

class RowArenaSpec extends AnyFunSuite {
  private val schema = StructType(Seq(
    StructField("id", LongType), StructField("name", StringType), StructField("features", ArrayType(FloatType, containsNull = false))))
  private val toScala = CatalystTypeConverters.createToScalaConverter(schema)
  private def internal(id: Long, name: String, width: Int): GenericInternalRow =
    new GenericInternalRow(Array[Any](id, if (name == null) null else UTF8String.fromString(name),
      org.apache.spark.sql.catalyst.expressions.UnsafeArrayData.fromPrimitiveArray(Array.tabulate(width)(j => (id + j).toFloat))))
  private def expected(id: Long, name: String, width: Int): Row = Row(id, name, Array.tabulate(width)(j => (id + j).toFloat).toSeq)
  private def scala(r: org.apache.spark.sql.catalyst.InternalRow): Row = {
    val s = toScala(r).asInstanceOf[Row]
    Row(s.get(0), s.get(1), s.getSeq[Float](2))
  }

  test("keeps copies of reused UnsafeRows and of other rows, of varying sizes, until cleared") {
    val arena = new RowArena(schema, capacity = 50)
    val project = UnsafeProjection.create(schema)
    // One UnsafeRow object overwritten row after row, as Spark's scans do; every third row is not unsafe.
    val widths = (0 until 50).map(i => 1 + (i * 37) % 200)
    widths.zipWithIndex.foreach { case (w, i) =>
      val r = internal(i, if (i % 5 == 0) null else s"row $i", w)
      arena.add(if (i % 3 == 0) r else project(r))
    }
    assert(arena.size == 50)
    val rows = arena.rows
    assert(rows.length == 50)
    widths.zipWithIndex.foreach { case (w, i) =>
      assert(scala(rows(i)) == expected(i, if (i % 5 == 0) null else s"row $i", w), s"row $i")
    }
    // Cleared and refilled: the buffer is reused, the new rows are what was added since.
    arena.clear()
    assert(arena.size == 0)
    arena.add(project(internal(99, "again", 3)))
    assert(arena.rows.map(scala).toSeq == Seq(expected(99, "again", 3)))
  }

  test("refuses more rows than its capacity") {
    val arena = new RowArena(schema, capacity = 1)
    arena.add(internal(1, "a", 1))
    val e = intercept[IllegalArgumentException](arena.add(internal(2, "b", 1)))
    assert(e.getMessage.contains("at most 1 rows"))
  }
}
