package sparkdbn.sidecar

import java.io.{File, IOException}
import java.nio.file.{Files, Path, StandardCopyOption}

import scala.io.Source
import scala.util.Using

/**
 * The Node program travels inside this jar (the way Spark ships code), under
 * `sparkdbn-sidecar/`, with a MANIFEST listing its files and a content hash.
 * An executor unpacks it once into a directory named by that hash.
 */
object SidecarBundle {
  private val Prefix = "sparkdbn-sidecar/"
  val EntryPoint = "lib/node/sidecar.cjs"

  /** The MANIFEST written by scripts/bundle.mjs: the content hash, the oldest Node it runs on, its files. */
  private final case class Manifest(hash: String, nodeMin: (Int, Int), files: Seq[String])
  private val NodeMinPrefix = "node-min "

  /** Read once: the jar's bundle does not change while the JVM runs. */
  private lazy val manifest: Manifest = {
    val in = getClass.getClassLoader.getResourceAsStream(Prefix + "MANIFEST")
    if (in == null) {
      throw new SidecarException(s"the sidecar bundle is missing from the classpath (${Prefix}MANIFEST); " +
        "was the jar built with `npm run build` first?")
    }
    val lines = Using.resource(Source.fromInputStream(in, "UTF-8"))(_.getLines().toList)
    val hash = lines.headOption.filter(_.startsWith("hash ")).map(_.stripPrefix("hash "))
      .getOrElse(throw new SidecarException(s"malformed ${Prefix}MANIFEST: first line must be `hash <hex>`"))
    val nodeMin = lines.find(_.startsWith(NodeMinPrefix)).map(_.stripPrefix(NodeMinPrefix).trim.split('.')) match {
      case Some(Array(a, b)) if a.toIntOption.isDefined && b.toIntOption.isDefined => (a.toInt, b.toInt)
      case _ => throw new SidecarException(s"malformed ${Prefix}MANIFEST: no `$NodeMinPrefix<major>.<minor>` line")
    }
    Manifest(hash, nodeMin, lines.tail.filter(l => l.nonEmpty && !l.startsWith(NodeMinPrefix)))
  }

  /** The bundle's content hash: what a runtime archive must carry too. */
  def hash: String = manifest.hash

  /** The oldest Node.js the bundle runs on (package.json's engines, carried by the MANIFEST). */
  def nodeMin: (Int, Int) = manifest.nodeMin

  /** Unpacks the bundle under `root` (idempotent, safe against concurrent callers); returns the entry script. */
  def unpack(root: File): File = {
    val Manifest(hash, _, files) = manifest
    val target = root.toPath.resolve(s"spark-dbn-sidecar-$hash")
    val entry = target.resolve(EntryPoint)
    if (Files.isRegularFile(entry)) return entry.toFile
    Files.createDirectories(root.toPath)
    val staging = Files.createTempDirectory(root.toPath, s".spark-dbn-sidecar-$hash-")
    try {
      files.foreach { rel =>
        val in = getClass.getClassLoader.getResourceAsStream(Prefix + rel)
        if (in == null) throw new SidecarException(s"sidecar bundle file $rel listed in MANIFEST is not in the jar")
        val out = staging.resolve(rel)
        Files.createDirectories(out.getParent)
        Using.resource(in)(Files.copy(_, out))
      }
      try Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE)
      catch {
        // Another task of this executor won the race: its copy is identical.
        case _: IOException if Files.isRegularFile(entry) => ()
      }
    } finally deleteRecursively(staging)
    if (!Files.isRegularFile(entry)) throw new SidecarException(s"failed to unpack the sidecar into $target")
    entry.toFile
  }

  private def deleteRecursively(p: Path): Unit = {
    if (Files.exists(p)) {
      Using.resource(Files.walk(p)) { s =>
        s.sorted(java.util.Comparator.reverseOrder[Path]()).forEach(q => Files.deleteIfExists(q))
      }
    }
  }
}
