package sparkdbn.io

import java.io.ByteArrayInputStream

import org.apache.arrow.vector.Float8Vector
import org.apache.arrow.vector.ipc.ArrowStreamReader
import org.apache.spark.sql.Row
import org.apache.spark.sql.types._
import org.scalatest.funsuite.AnyFunSuite

class ArrowEncoderSpec extends AnyFunSuite {
  private val schema = StructType(Seq(
    StructField("id", LongType), StructField("name", StringType),
    StructField("x", DoubleType), StructField("d", DecimalType(10, 2)), StructField("b", ByteType)))

  /** Decodes with Arrow's own reader: (rows, per-column values with None for null). */
  private def decode(bytes: Array[Byte]): (Seq[String], Seq[Seq[Option[Double]]]) = {
    val reader = new ArrowStreamReader(new ByteArrayInputStream(bytes), ArrowEncoder.allocator)
    try {
      val root = reader.getVectorSchemaRoot
      val names = (0 until root.getFieldVectors.size).map(i => root.getVector(i).getName)
      var rows = Seq.empty[Seq[Option[Double]]]
      while (reader.loadNextBatch()) {
        rows ++= (0 until root.getRowCount).map { r =>
          names.indices.map { k =>
            val v = root.getVector(k).asInstanceOf[Float8Vector]
            if (v.isNull(r)) None else Some(v.get(r))
          }
        }
      }
      (names, rows)
    } finally reader.close()
  }

  test("picks the numeric columns") {
    assert(ArrowEncoder.numericColumns(schema) == Seq(0 -> "id", 2 -> "x", 3 -> "d", 4 -> "b"))
  }

  test("round-trips values and nulls through Arrow IPC, in chunks of maxRows") {
    val rows = (0 until 7).map { i =>
      Row(i.toLong, s"r$i", if (i == 3) null else i * 0.5, new java.math.BigDecimal(s"$i.25"), i.toByte)
    }
    val chunks = ArrowEncoder.encode(rows.iterator, ArrowEncoder.numericColumns(schema), 3).toSeq
    assert(chunks.size == 3)
    val decoded = chunks.map(decode)
    assert(decoded.forall(_._1 == Seq("id", "x", "d", "b")))
    val all = decoded.flatMap(_._2)
    assert(all.size == 7)
    all.zipWithIndex.foreach { case (r, i) =>
      assert(r == Seq(Some(i.toDouble), if (i == 3) None else Some(i * 0.5), Some(i + 0.25), Some(i.toDouble)))
    }
  }

  test("an empty partition still yields one stream with the schema and no rows") {
    val chunks = ArrowEncoder.encode(Iterator.empty, ArrowEncoder.numericColumns(schema), 3).toSeq
    assert(chunks.size == 1)
    val (names, rows) = decode(chunks.head)
    assert(names == Seq("id", "x", "d", "b") && rows.isEmpty)
  }
}
