package sparkdbn.model

import java.io.{ByteArrayInputStream, File}
import java.nio.{ByteBuffer, ByteOrder}
import java.nio.file.Files
import java.util.zip.CRC32

import scala.jdk.CollectionConverters._
import scala.util.control.NonFatal

import org.apache.avro.file.DataFileStream
import org.apache.avro.specific.SpecificDatumReader

import sparkdbn.avro.{DbnSnapshot, VisibleUnits}

/** One RBM layer of a snapshot. W is (nVisible, nHidden) row-major. */
final case class RbmLayerParams(nVisible: Int, nHidden: Int, gaussian: Boolean,
    weights: Array[Float], visibleBias: Array[Float], hiddenBias: Array[Float])

final case class SoftmaxParams(nIn: Int, nClasses: Int, weights: Array[Float], bias: Array[Float])

/** The standardisation the model applies to its raw input, x' = (x - mean) / std (the engine's InputScaling). */
final case class InputScalingParams(mean: Array[Double], std: Array[Double])

/** What the JVM needs of a snapshot written by the TypeScript engine. */
final case class DbnWeights(layers: Seq[RbmLayerParams], output: Option[SoftmaxParams], raw: Array[Byte],
    inputScaling: Option[InputScalingParams] = None) {
  def nInputs: Int = layers.head.nVisible
  def nFeatures: Int = layers.last.nHidden
  def sizes: Seq[Int] = layers.head.nVisible +: layers.map(_.nHidden)
}

class SnapshotException(message: String, cause: Throwable = null) extends RuntimeException(message, cause)

/**
 * Reads proto/model.avsc snapshots. The format is owned by the TypeScript
 * engine (ts/io/snapshot.ts); this reader checks what the JVM relies on:
 * format version, checksum and shapes.
 */
object DbnSnapshots {
  /** Version 2 is 1 plus inputScaling (proto/model.avsc). */
  val FormatVersions: Set[Int] = Set(1, 2)

  def read(file: File): DbnWeights = {
    val bytes = try Files.readAllBytes(file.toPath) catch {
      case NonFatal(e) => throw new SnapshotException(s"cannot read model snapshot $file: ${e.getMessage}", e)
    }
    read(bytes, file.toString)
  }

  def read(bytes: Array[Byte], what: String = "snapshot"): DbnWeights = {
    if (bytes.length < 4 || !(bytes(0) == 'O' && bytes(1) == 'b' && bytes(2) == 'j' && bytes(3) == 1)) {
      throw new SnapshotException(s"$what is not an Avro object container file (bad magic bytes)")
    }
    val records = try {
      val stream = new DataFileStream[DbnSnapshot](new ByteArrayInputStream(bytes), new SpecificDatumReader[DbnSnapshot](classOf[DbnSnapshot]))
      try {
        val writer = stream.getSchema.getFullName
        if (writer != DbnSnapshot.getClassSchema.getFullName) {
          throw new SnapshotException(s"$what was written with schema '$writer', expected '${DbnSnapshot.getClassSchema.getFullName}'")
        }
        stream.iterator().asScala.toList
      } finally stream.close()
    } catch {
      case s: SnapshotException => throw s
      case NonFatal(e) => throw new SnapshotException(s"$what is a corrupt or truncated Avro container: ${e.getMessage}", e)
    }
    if (records.size != 1) throw new SnapshotException(s"$what holds ${records.size} records; a snapshot has exactly one")
    fromRecord(records.head, bytes, what)
  }

  private def floats(b: ByteBuffer, n: Int, what: String): Array[Float] = {
    val bb = b.duplicate().order(ByteOrder.LITTLE_ENDIAN)
    if (bb.remaining() != n.toLong * 4) throw new SnapshotException(s"$what has ${bb.remaining()} bytes, expected ${n.toLong * 4}")
    val out = new Array[Float](n)
    bb.asFloatBuffer().get(out)
    out
  }

  private def fromRecord(r: DbnSnapshot, raw: Array[Byte], what: String): DbnWeights = {
    if (!FormatVersions.contains(r.getFormatVersion)) {
      throw new SnapshotException(s"$what: formatVersion ${r.getFormatVersion} is not supported (this reader knows " +
        s"${FormatVersions.toSeq.sorted.mkString(" and ")})")
    }
    val crc = new CRC32()
    def feed(b: ByteBuffer): Unit = crc.update(b.duplicate())
    val layers = r.getLayers.asScala.toSeq
    if (layers.isEmpty) throw new SnapshotException(s"$what: layers: the snapshot has no layer")
    layers.foreach(l => Seq(l.getWeights, l.getVisibleBias, l.getHiddenBias).foreach(feed))
    Option(r.getOutput).foreach(o => Seq(o.getWeights, o.getBias).foreach(feed))
    Option(r.getInputScaling).foreach(sc => Seq(sc.getMean, sc.getStd).foreach(feed))
    if (crc.getValue != r.getCrc32) throw new SnapshotException(s"$what: crc32 does not match the weights: the file is corrupt")
    val params = layers.zipWithIndex.map { case (l, i) =>
      val name = s"$what: layers[$i]"
      if (l.getNVisible <= 0 || l.getNHidden <= 0) throw new SnapshotException(s"$name: shape ${l.getNVisible}x${l.getNHidden} is not positive")
      if (i > 0 && l.getNVisible != layers(i - 1).getNHidden) {
        throw new SnapshotException(s"$name.nVisible is ${l.getNVisible}, layers[${i - 1}].nHidden is ${layers(i - 1).getNHidden}")
      }
      RbmLayerParams(l.getNVisible, l.getNHidden, l.getVisibleUnits == VisibleUnits.GAUSSIAN,
        floats(l.getWeights, l.getNVisible * l.getNHidden, s"$name.weights"),
        floats(l.getVisibleBias, l.getNVisible, s"$name.visibleBias"),
        floats(l.getHiddenBias, l.getNHidden, s"$name.hiddenBias"))
    }
    val output = Option(r.getOutput).map { o =>
      if (o.getNIn != params.last.nHidden) {
        throw new SnapshotException(s"$what: output.nIn is ${o.getNIn}, the top layer has ${params.last.nHidden} hidden units")
      }
      SoftmaxParams(o.getNIn, o.getNClasses, floats(o.getWeights, o.getNIn * o.getNClasses, s"$what: output.weights"),
        floats(o.getBias, o.getNClasses, s"$what: output.bias"))
    }
    val scaling = Option(r.getInputScaling).map { sc =>
      def doubles(b: ByteBuffer, field: String): Array[Double] = {
        val bb = b.duplicate().order(ByteOrder.LITTLE_ENDIAN)
        val n = params.head.nVisible
        if (bb.remaining() != n.toLong * 8) throw new SnapshotException(s"$what: inputScaling.$field has ${bb.remaining()} bytes, expected ${n * 8L}")
        val out = new Array[Double](n)
        bb.asDoubleBuffer().get(out)
        out
      }
      InputScalingParams(doubles(sc.getMean, "mean"), doubles(sc.getStd, "std"))
    }
    DbnWeights(params, output, raw, scaling)
  }

}
