package sparkdbn.model

import java.io.File
import java.nio.file.Files

import org.scalatest.funsuite.AnyFunSuite

/** Reads what the TypeScript engine wrote: proto/testdata/dbn-v1.avro (see test/ts/helpers/vectors.ts). */
class DbnSnapshotsSpec extends AnyFunSuite {
  private val vector = new File("../proto/testdata/dbn-v1.avro")

  test("reads the TS-written test vector with the documented values") {
    val m = DbnSnapshots.read(vector)
    assert(m.sizes == Seq(4, 3, 2))
    m.layers.zipWithIndex.foreach { case (l, n) =>
      assert(!l.gaussian)
      assert(l.weights.toSeq == (0 until l.nVisible * l.nHidden).map(i => ((n + 1) * (i - 5)) / 8f))
      assert(l.visibleBias.toSeq == (0 until l.nVisible).map(i => -i / 4f))
      assert(l.hiddenBias.toSeq == (0 until l.nHidden).map(j => j / 2f))
    }
    val o = m.output.get
    assert(o.nIn == 2 && o.nClasses == 3)
    assert(o.weights.toSeq == (0 until 6).map(i => ((i % 5) - 2).toFloat))
    assert(o.bias.toSeq == Seq(0f, 1f, 2f))
  }

  test("reads format 2: the TS-written Gaussian model with its input scaling (proto/testdata/dbn-v2.avro)") {
    val m = DbnSnapshots.read(new File("../proto/testdata/dbn-v2.avro"))
    assert(m.sizes == Seq(3, 2) && m.layers.head.gaussian && m.output.isEmpty)
    assert(m.layers.head.weights.toSeq == (0 until 6).map(i => (i - 2) / 4f))
    val s = m.inputScaling.get
    assert(s.mean.toSeq == Seq(-1.5, 98.5, 198.5) && s.std.toSeq == Seq(1.0, 0.5, 0.25))
    assert(DbnSnapshots.read(vector).inputScaling.isEmpty)
  }

  test("a flipped byte, a truncated file and a non-Avro file are refused, saying why") {
    val good = Files.readAllBytes(vector.toPath)
    val flipped = good.clone()
    // The first layer's weights start with (0 - 5) / 8 = -0.625f: find its bytes and flip one.
    val needle = java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(-0.625f).array()
    val at = good.indices.find(i => good.slice(i, i + 4).sameElements(needle)).get
    flipped(at + 1) = (flipped(at + 1) ^ 0x10).toByte
    assert(intercept[SnapshotException](DbnSnapshots.read(flipped)).getMessage.contains("crc32 does not match"))
    val truncated = good.take(good.length - 30)
    assert(intercept[SnapshotException](DbnSnapshots.read(truncated)).getMessage.matches(".*(corrupt or truncated|holds 0 records).*"))
    assert(intercept[SnapshotException](DbnSnapshots.read("PAR1".getBytes)).getMessage.contains("not an Avro object container"))
    assert(intercept[SnapshotException](DbnSnapshots.read(new File("/nonexistent.avro"))).getMessage.contains("cannot read"))
  }
}
