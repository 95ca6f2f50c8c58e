package sparkdbn.io

import org.apache.arrow.vector.{Float4Vector, IntVector}
import org.apache.arrow.vector.complex.FixedSizeListVector
import org.apache.arrow.vector.ipc.ArrowStreamReader
import org.scalatest.funsuite.AnyFunSuite

import com.google.protobuf.ByteString

class FeatureArrowSpec extends AnyFunSuite {
  /** Reads a batch with Arrow's own reader: (list size, rows, values row-major, labels or null, validity all set). */
  private def read(bytes: ByteString): (Int, Int, Array[Float], Array[Int], Boolean) = {
    val reader = new ArrowStreamReader(bytes.newInput(), ArrowMemory.allocator)
    try {
      val root = reader.getVectorSchemaRoot
      assert(reader.loadNextBatch())
      val list = root.getVector(0).asInstanceOf[FixedSizeListVector]
      val child = list.getDataVector.asInstanceOf[Float4Vector]
      val rows = root.getRowCount
      val n = list.getListSize
      val values = Array.tabulate(rows * n)(child.get)
      val valid = (0 until rows).forall(r => !list.isNull(r)) && (0 until rows * n).forall(i => !child.isNull(i))
      val labels = if (root.getFieldVectors.size > 1) Array.tabulate(rows)(root.getVector(1).asInstanceOf[IntVector].get) else null
      assert(!reader.loadNextBatch(), "one batch per stream")
      (n, rows, values, labels, valid)
    } finally reader.close()
  }

  test("one Encoder encodes batches of any size up to its maximum; each result stays intact after the next encode") {
    val n = 3
    val before = ArrowMemory.allocator.getAllocatedMemory
    val enc = new FeatureArrow.Encoder(n, labelled = true, maxRows = 5)
    try {
      val sizes = Seq(5, 2, 5, 1)
      val batches = sizes.zipWithIndex.map { case (rows, b) =>
        val values = Array.tabulate(rows * n)(i => b * 100 + i + 0.25f)
        val labels = Array.tabulate(rows)(r => b * 10 + r)
        (values, labels, enc.encode(values, rows, labels))
      }
      // Read only after every encode: no result shares the encoder's buffers.
      batches.zip(sizes).foreach { case ((values, labels, bytes), rows) =>
        val (gotN, gotRows, got, gotLabels, valid) = read(bytes)
        assert(gotN == n && gotRows == rows)
        assert(got.sameElements(values))
        assert(gotLabels.sameElements(labels))
        assert(valid, "every row and value is valid")
      }
    } finally enc.close()
    assert(ArrowMemory.allocator.getAllocatedMemory == before, "close frees the encoder's Arrow buffers")
  }

  test("encodeFilled writes values put at valuesAddress into the array it is given when that is large enough, else a new one") {
    import org.apache.spark.unsafe.Platform
    val n = 16
    val enc = new FeatureArrow.Encoder(n, labelled = false, maxRows = 8)
    def put(values: Array[Float]): Unit =
      Platform.copyMemory(values, Platform.FLOAT_ARRAY_OFFSET, null, enc.valuesAddress, values.length * 4L)
    try {
      val big = Array.tabulate(8 * n)(_ * 0.5f)
      put(big)
      val first = enc.encodeFilled(8, null, null)
      assert(read(first.bytes)._3.sameElements(big))
      // A smaller batch into the first batch's array: the same array, now holding the new batch.
      val small = Array.tabulate(3 * n)(i => -i.toFloat)
      put(small)
      val again = enc.encodeFilled(3, null, first.array)
      assert(again.array eq first.array)
      assert(again.length < first.length)
      val (_, rows, got, _, _) = read(again.bytes)
      assert(rows == 3 && got.sameElements(small))
      // Too small to hold a batch: a new array, and the one given is left as it was.
      val tiny = new Array[Byte](16)
      put(big)
      val grown = enc.encodeFilled(8, null, tiny)
      assert(!(grown.array eq tiny) && tiny.forall(_ == 0))
      assert(read(grown.bytes)._3.sameElements(big))
    } finally enc.close()
  }

  test("a full batch written in place through fullBatchLayout is byte for byte what Arrow writes") {
    for ((n, maxRows) <- Seq((784, 37), (3, 5), (1, 1), (5, 13))) {
      val enc = new FeatureArrow.Encoder(n, labelled = false, maxRows)
      val ref = new FeatureArrow.Encoder(n, labelled = false, maxRows)
      try {
        val layout = enc.fullBatchLayout.getOrElse(fail(s"no layout for n $n, $maxRows rows"))
        for (batch <- 0 until 3) {
          val values = Array.tabulate(maxRows * n)(i => ((i * 7919 + batch * 104729) % 1000) / 999f)
          // Over a message that held something else before: every byte must be rewritten.
          val message = Array.fill[Byte](layout.length + 100)(batch.toByte)
          org.apache.spark.unsafe.Platform.copyMemory(values, org.apache.spark.unsafe.Platform.FLOAT_ARRAY_OFFSET, message,
            org.apache.spark.unsafe.Platform.BYTE_ARRAY_OFFSET + layout.valuesOffset, values.length * 4L)
          val direct = layout.finishFull(message)
          val want = ref.encode(values, maxRows, null).toByteArray
          assert(direct.length == want.length, s"n $n")
          assert(java.util.Arrays.equals(direct.array, 0, direct.length, want, 0, want.length), s"n $n, batch $batch")
          assert(read(direct.bytes)._3.sameElements(values))
        }
        // A short batch after the layout was made: encodeFilled still writes it right.
        val short = Array.tabulate(n)(_.toFloat / n)
        assert(read(enc.encode(short, 1, null))._3.sameElements(short))
      } finally { enc.close(); ref.close() }
    }
    val labelled = new FeatureArrow.Encoder(3, labelled = true, 4)
    try assert(labelled.fullBatchLayout.isEmpty) finally labelled.close()
  }

  test("firstNull finds the first null element as isNullAt does, in Spark's layout and any other") {
    import org.apache.spark.sql.catalyst.expressions.{SpecificInternalRow, UnsafeProjection}
    import org.apache.spark.sql.catalyst.util.GenericArrayData
    import org.apache.spark.sql.types._
    val t = ArrayType(FloatType, containsNull = true)
    val project = UnsafeProjection.create(Array[DataType](t))
    for (n <- Seq(1, 63, 64, 65, 130, 784); nulls <- Seq(Nil, Seq(0), Seq(n - 1), Seq(63, 64), Seq(n / 2, n - 1), Seq(128))) {
      val at = nulls.filter(_ < n).toSet
      val generic = new GenericArrayData(Array.tabulate[Any](n)(j => if (at(j)) null else j.toFloat))
      val row = new SpecificInternalRow(Seq(t))
      row.update(0, generic)
      val unsafe = project(row).getArray(0)
      val want = (0 until n).find(unsafe.isNullAt).getOrElse(-1)
      assert(want == (if (at.isEmpty) -1 else at.min))
      assert(FeatureSource.firstNull(unsafe, n) == want, s"n $n, nulls $at (UnsafeArrayData)")
      assert(FeatureSource.firstNull(generic, n) == want, s"n $n, nulls $at (GenericArrayData)")
    }
  }

  test("an unlabelled Encoder writes the features column alone") {
    val values = Array.tabulate(4 * 7)(_.toFloat / 3)
    val enc = new FeatureArrow.Encoder(7, labelled = false, maxRows = 9)
    try {
      val (n, rows, got, labels, valid) = read(enc.encode(values, 4, null))
      assert(n == 7 && rows == 4 && got.sameElements(values) && labels == null && valid)
    } finally enc.close()
  }

  test("an Encoder rejects a batch over its maximum, missing or unexpected labels") {
    val enc = new FeatureArrow.Encoder(2, labelled = false, maxRows = 3)
    try {
      val e = intercept[IllegalArgumentException](enc.encode(new Array[Float](8), 4, null))
      assert(e.getMessage.contains("1 to 3"))
      intercept[IllegalArgumentException](enc.encode(new Array[Float](2), 1, Array(1)))
      intercept[IllegalArgumentException](enc.encode(new Array[Float](2), 2, null))
    } finally enc.close()
  }
}
