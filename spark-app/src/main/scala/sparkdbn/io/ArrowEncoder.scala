package sparkdbn.io

import java.io.ByteArrayOutputStream

import scala.jdk.CollectionConverters._

import org.apache.arrow.memory.{BufferAllocator, RootAllocator}
import org.apache.arrow.vector.{Float8Vector, VectorSchemaRoot}
import org.apache.arrow.vector.ipc.ArrowStreamWriter
import org.apache.arrow.vector.types.FloatingPointPrecision
import org.apache.arrow.vector.types.pojo.{ArrowType, Field, FieldType, Schema}
import org.apache.spark.sql.Row
import org.apache.spark.sql.types._

/**
 * Turns rows into self-contained Arrow IPC streams (schema + one record batch),
 * one numeric column as one nullable Float64 column.
 */
object ArrowEncoder {
  /** One allocator per JVM: Arrow memory is accounted and freed per batch. */
  lazy val allocator: BufferAllocator = new RootAllocator(Long.MaxValue)

  def isNumeric(t: DataType): Boolean = t match {
    case ByteType | ShortType | IntegerType | LongType | FloatType | DoubleType => true
    case _: DecimalType => true
    case _ => false
  }

  /** The numeric columns of `schema`, by index and name. */
  def numericColumns(schema: StructType): Seq[(Int, String)] =
    schema.fields.toSeq.zipWithIndex.collect { case (f, i) if isNumeric(f.dataType) => (i, f.name) }

  private def arrowSchema(names: Seq[String]): Schema = new Schema(names.map { n =>
    new Field(n, FieldType.nullable(new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE)), null)
  }.asJava)

  /**
   * Encodes rows in chunks of at most `maxRows`; always yields at least one
   * stream, so even an empty partition tells the reader its schema.
   */
  def encode(rows: Iterator[Row], columns: Seq[(Int, String)], maxRows: Int): Iterator[Array[Byte]] = {
    require(maxRows > 0, s"maxRows must be positive, got $maxRows")
    val grouped = rows.grouped(maxRows).map(_.toSeq)
    val nonEmpty = grouped.hasNext
    (if (nonEmpty) grouped else Iterator.single(Seq.empty[Row])).map(chunk => encodeChunk(chunk, columns))
  }

  private def encodeChunk(rows: Seq[Row], columns: Seq[(Int, String)]): Array[Byte] = {
    val root = VectorSchemaRoot.create(arrowSchema(columns.map(_._2)), allocator)
    try {
      val vectors = columns.indices.map(k => root.getVector(k).asInstanceOf[Float8Vector])
      vectors.foreach(_.allocateNew(rows.length))
      var r = 0
      while (r < rows.length) {
        val row = rows(r)
        var k = 0
        while (k < columns.length) {
          val i = columns(k)._1
          if (row.isNullAt(i)) vectors(k).setNull(r)
          else vectors(k).set(r, row.get(i) match {
            case d: java.math.BigDecimal => d.doubleValue()
            case n: Number => n.doubleValue()
            case other => throw new IllegalArgumentException(
              s"column '${columns(k)._2}' row $r: expected a number, got ${other.getClass.getName}")
          })
          k += 1
        }
        r += 1
      }
      root.setRowCount(rows.length)
      val out = new ByteArrayOutputStream()
      val writer = new ArrowStreamWriter(root, null, out)
      writer.start()
      if (rows.nonEmpty) writer.writeBatch()
      writer.end()
      writer.close()
      out.toByteArray
    } finally root.close()
  }
}
