package sparkdbn.io

import java.nio.{ByteBuffer, ByteOrder}

/**
 * IDX files (LeCun's MNIST format): magic 0x00 0x00 0x08 D (unsigned bytes, D
 * dimensions), D big-endian 32-bit sizes, then the values. Every check names
 * the file: a wrong magic number, a truncated or overlong file, and images and
 * labels whose counts differ are errors, never a short data set.
 */
object Idx {
  final case class Array3(count: Int, rows: Int, cols: Int, values: Array[Byte])

  final class IdxException(message: String) extends IllegalArgumentException(message)

  /** The dimensions and values of an IDX file's bytes. */
  def parse(bytes: Array[Byte], what: String): (Seq[Int], Int) = {
    if (bytes.length < 4) throw new IdxException(s"$what: ${bytes.length} bytes is too short for an IDX header")
    val buf = ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN)
    val magic = buf.getInt(0)
    val d = magic & 0xff
    if ((magic >>> 8) != 0x08 || d < 1 || d > 4) {
      throw new IdxException(f"$what: magic number 0x$magic%08x is not an IDX file of unsigned bytes (0x0000080D)")
    }
    val header = 4 + 4 * d
    if (bytes.length < header) throw new IdxException(s"$what: truncated header (${bytes.length} bytes, $d dimensions need $header)")
    val dims = (0 until d).map(i => buf.getInt(4 + 4 * i))
    if (dims.exists(_ < 0)) throw new IdxException(s"$what: negative dimension in ${dims.mkString(" x ")}")
    val n = dims.foldLeft(1L)(_ * _)
    if (bytes.length.toLong != header + n) {
      throw new IdxException(s"$what: dimensions ${dims.mkString(" x ")} need ${header + n} bytes, the file has ${bytes.length}" +
        (if (bytes.length < header + n) " (truncated)" else ""))
    }
    (dims, header)
  }

  /** Images (count x rows x cols) and one label per image. */
  def readPair(images: Array[Byte], imagesWhat: String, labels: Array[Byte], labelsWhat: String): (Array3, Array[Byte]) = {
    val (idims, ih) = parse(images, imagesWhat)
    val (ldims, lh) = parse(labels, labelsWhat)
    if (idims.size != 3) throw new IdxException(s"$imagesWhat: images need 3 dimensions, the file has ${idims.size}")
    if (ldims.size != 1) throw new IdxException(s"$labelsWhat: labels need 1 dimension, the file has ${ldims.size}")
    if (idims.head != ldims.head) throw new IdxException(s"$imagesWhat holds ${idims.head} images but $labelsWhat ${ldims.head} labels")
    (Array3(idims(0), idims(1), idims(2), java.util.Arrays.copyOfRange(images, ih, images.length)),
      java.util.Arrays.copyOfRange(labels, lh, labels.length))
  }
}
