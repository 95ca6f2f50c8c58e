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

  /** (hash, relative paths) from the MANIFEST written by scripts/bundle.mjs. */
  private def manifest(): (String, Seq[String]) = {
    val in = getClass.getClassLoader.getResourceAsStream(Prefix + "MANIFEST")
    if (in == null) {
      throw new SidecarException(s"the sidecar bundle is missing from the classpath (${Prefix}MANIFEST); " +
        "was the jar built with `npm run build` first?")
    }
    val lines = Using.resource(Source.fromInputStream(in, "UTF-8"))(_.getLines().toList)
    val hash = lines.headOption.filter(_.startsWith("hash ")).map(_.stripPrefix("hash "))
      .getOrElse(throw new SidecarException(s"malformed ${Prefix}MANIFEST: first line must be `hash <hex>`"))
    (hash, lines.tail.filter(l => l.nonEmpty && !l.startsWith(NodeMinPrefix)))
  }

  private val NodeMinPrefix = "node-min "

  /** The oldest Node.js the bundle runs on (package.json's engines, carried by the MANIFEST). */
  def nodeMin: (Int, Int) = {
    val in = getClass.getClassLoader.getResourceAsStream(Prefix + "MANIFEST")
    if (in == null) throw new SidecarException(s"the sidecar bundle is missing from the classpath (${Prefix}MANIFEST)")
    val line = Using.resource(Source.fromInputStream(in, "UTF-8"))(_.getLines().find(_.startsWith(NodeMinPrefix)))
      .getOrElse(throw new SidecarException(s"malformed ${Prefix}MANIFEST: no `$NodeMinPrefix<major>.<minor>` line"))
    line.stripPrefix(NodeMinPrefix).trim.split('.') match {
      case Array(a, b) => (a.toInt, b.toInt)
      case _ => throw new SidecarException(s"malformed ${Prefix}MANIFEST line: $line")
    }
  }

  /** The bundle's content hash (its MANIFEST's first line): what a runtime archive must carry too. */
  def hash: String = manifest()._1

  /** Unpacks the bundle under `root` (idempotent, safe against concurrent callers); returns the entry script. */
  def unpack(root: File): File = {
    val (hash, files) = manifest()
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
