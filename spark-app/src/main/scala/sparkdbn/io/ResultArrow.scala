package sparkdbn.io

import scala.jdk.CollectionConverters._

import com.google.protobuf.ByteString
import org.apache.arrow.memory.ArrowBuf
import org.apache.arrow.vector.Float8Vector
import org.apache.arrow.vector.complex.FixedSizeListVector
import org.apache.arrow.vector.ipc.ArrowStreamReader
import org.apache.spark.unsafe.Platform

/**
 * The sidecar's answers to Transform as the JVM reads them: one Arrow IPC stream a batch, each vector
 * column a FixedSizeList<Float32>, each scalar column (prediction, scores) a Float64.
 */
object ResultArrow {
  /** A decoded result batch: each named vector column as row-major floats, each double column (prediction, scores) as doubles. */
  final case class Result(rows: Int, vectors: Map[String, (Int, Array[Float])], doubles: Map[String, Array[Double]])

  /** One result batch, its columns copied out of Arrow's buffers. */
  def decode(bytes: ByteString): Result = {
    val reader = new ArrowStreamReader(bytes.newInput(), ArrowMemory.allocator)
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

  // Arrow buffers are little-endian; so are the JVM's arrays on the hosts we run on (checked).
  private val nativeLittleEndian = java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN

  /** count floats of buf from value `from` on, into a new array: one memory copy. */
  private def copyOut(buf: ArrowBuf, from: Int, count: Int): Array[Float] = {
    val out = new Array[Float](count)
    if (nativeLittleEndian) Platform.copyMemory(null, buf.memoryAddress() + from.toLong * 4, out, Platform.FLOAT_ARRAY_OFFSET, count.toLong * 4)
    else { var i = 0; while (i < count) { out(i) = buf.getFloat((from + i).toLong * 4); i += 1 } }
    out
  }
}
