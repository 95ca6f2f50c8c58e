package sparkdbn.sidecar

import java.io.{BufferedInputStream, ByteArrayInputStream, EOFException, File, FileInputStream, InputStream}
import java.nio.charset.StandardCharsets
import java.util.Properties
import java.util.zip.GZIPInputStream

import scala.util.Using

import org.apache.spark.SparkConf

/**
 * The driver's look at the runtime archives a job ships (spark.archives, spark.yarn.dist.archives) before
 * Spark unpacks them: a truncated or foreign file, or one built for another jar, is refused in one line
 * naming the file, where Spark's own unpack would fail with a tar error on a copy of it.
 */
object RuntimeArchive {
  val ArchiveKeys: Seq[String] = Seq("spark.archives", "spark.yarn.dist.archives")
  private val Name = """spark-dbn-runtime-.*\.(tgz|tar\.gz)""".r

  /** Local files among those confs' entries that are named as runtime archives. */
  def shipped(conf: SparkConf): Seq[(String, File)] = for {
    key <- ArchiveKeys
    entry <- conf.getOption(key).toSeq.flatMap(_.split(",")).map(_.trim).filter(_.nonEmpty)
    path = entry.split("#", 2)(0)
    uri = new java.net.URI(path)
    if uri.getScheme == null || uri.getScheme == "file"
    file = new File(if (uri.getScheme == null) path else uri.getPath)
    if Name.pattern.matcher(file.getName).matches()
  } yield key -> file

  /** Refuses the first shipped runtime archive that cannot serve this jar, naming its conf and file. */
  def verifyShipped(conf: SparkConf): Unit = shipped(conf).foreach { case (key, file) =>
    problem(file, SidecarBundle.hash).foreach(p => throw new IllegalArgumentException(s"$key: $file $p"))
  }

  /** Why `file` is not a runtime archive for the jar whose bundle hash is `bundle`, or None. */
  def problem(file: File, bundle: String): Option[String] = {
    if (!file.isFile) return Some("does not exist")
    val magic = Using.resource(new FileInputStream(file))(_.readNBytes(2))
    if (!(magic.length == 2 && (magic(0) & 0xff) == 0x1f && (magic(1) & 0xff) == 0x8b)) {
      return Some("is not a gzip-compressed tar (Not in GZIP format): re-create it with scripts/package")
    }
    val runtime = try Using.resource(new FileInputStream(file))(in => readRuntime(in)) catch {
      case e: java.util.zip.ZipException => return Some(s"is not a gzip-compressed tar (${e.getMessage}): re-create it with scripts/package")
      case e: EOFException => return Some(s"is truncated (${Option(e.getMessage).getOrElse("unexpected end")}): copy it again")
      case e: java.io.IOException => return Some(s"cannot be read: ${e.getMessage}")
    }
    runtime match {
      case None => Some(s"holds no ${SidecarRuntime.MarkerFile} file: it is not a spark-dbn runtime archive (scripts/package writes one)")
      case Some(p) => SidecarRuntime.wrongJar(p, bundle)
    }
  }

  /** Reads the whole gzip-compressed tar (so that truncation shows) and returns its RUNTIME file's properties. */
  private def readRuntime(raw: InputStream): Option[Properties] = {
    val in = new GZIPInputStream(new BufferedInputStream(raw, 1 << 16), 1 << 16)
    val header = new Array[Byte](512)
    var found: Option[Properties] = None
    var done = false
    while (!done) {
      in.readNBytes(header, 0, 512) match {
        case 512 =>
        case _ => throw new EOFException("the tar ends inside a header")
      }
      if (header.forall(_ == 0)) done = true
      else {
        val name = new String(header, 0, 100, StandardCharsets.US_ASCII).takeWhile(_ != '\u0000').stripPrefix("./")
        val size = java.lang.Long.parseLong(new String(header, 124, 12, StandardCharsets.US_ASCII).takeWhile(c => c != '\u0000' && c != ' ').trim match {
          case "" => "0"
          case s => s
        }, 8)
        val padded = (size + 511) / 512 * 512
        if (name == SidecarRuntime.MarkerFile) {
          val body = in.readNBytes(size.toInt)
          if (body.length < size) throw new EOFException("the tar ends inside RUNTIME")
          found = Some(SidecarRuntime.readMarker(new ByteArrayInputStream(body)))
          skip(in, padded - size)
        } else skip(in, padded)
      }
    }
    // The gzip stream to its end: its trailer's check is what catches a truncated file.
    skip(in, Long.MaxValue)
    found
  }

  private def skip(in: InputStream, n: Long): Unit = {
    val buf = new Array[Byte](1 << 16)
    var left = n
    while (left > 0) {
      val r = in.read(buf, 0, math.min(buf.length.toLong, left).toInt)
      if (r < 0) {
        if (n == Long.MaxValue) return
        throw new EOFException("the tar ends inside an entry")
      }
      left -= r
    }
  }
}
