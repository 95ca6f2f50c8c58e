package sparkdbn.sidecar

import java.io.{File, FileInputStream}
import java.nio.charset.StandardCharsets
import java.util.Properties

import scala.util.Using

/**
 * Where an executor's sidecar comes from: the runtime archive the job shipped (`--archives
 * spark-dbn-runtime-<version>-linux-x64.tgz#sparkdbn`: a pinned Node.js, the sidecar and its native
 * kernels; scripts/package writes it), found under SparkFiles' root with no setting; or, without one,
 * the sidecar bundled in this jar run by `spark.dbn.node` (default: `node` on PATH). An explicit
 * `spark.dbn.node` is used with either.
 *
 * The archive's `RUNTIME` file (key=value lines) says what it is for: `os`, `arch`, `version`, and
 * `bundle` (the sidecar bundle's content hash, which must be this jar's own).
 */
final case class SidecarRuntime(node: String, script: File, source: String)

object SidecarRuntime {
  val MarkerFile = "RUNTIME"
  val NodePath = "node/bin/node"
  val ScriptPath = "sidecar/" + SidecarBundle.EntryPoint

  /**
   * The runtime to start: a runtime archive under `root` (its directories, and one level below them:
   * a Spark Connect session's files live in a directory of their own), else the jar's bundle.
   */
  def locate(root: File, conf: SidecarConf, nodeSet: Boolean): SidecarRuntime = {
    val found = archivesUnder(root)
    if (found.isEmpty) {
      return SidecarRuntime(conf.nodeBinary, SidecarBundle.unpack(root), "the jar's sidecar")
    }
    val hash = SidecarBundle.hash
    val checked = found.map(d => d -> check(d, hash))
    val usable = checked.collect { case (d, None) => d }
    val dir = usable.headOption.getOrElse(throw new SidecarException(checked.head._2.get))
    val node = if (nodeSet) conf.nodeBinary else new File(dir, NodePath).getAbsolutePath
    SidecarRuntime(node, new File(dir, ScriptPath), s"the runtime archive ${dir.getName} (${dir.getAbsolutePath})")
  }

  /** Directories under root (and one level deeper) that hold a RUNTIME file. */
  private def archivesUnder(root: File): Seq[File] = {
    def dirs(d: File): Seq[File] = Option(d.listFiles()).toSeq.flatten.filter(_.isDirectory).sortBy(_.getName)
    val top = dirs(root)
    (top ++ top.flatMap(dirs)).filter(d => new File(d, MarkerFile).isFile)
  }

  /** The reason this unpacked archive cannot serve this jar on this machine, or None. */
  def check(dir: File, jarBundleHash: String): Option[String] = {
    val name = s"runtime archive ${dir.getName} (${dir.getAbsolutePath})"
    val props = try Using.resource(new FileInputStream(new File(dir, MarkerFile)))(readMarker)
    catch { case e: java.io.IOException => return Some(s"$name: cannot read its $MarkerFile: ${e.getMessage}") }
    val os = sys.props.getOrElse("os.name", "").toLowerCase
    val arch = sys.props.getOrElse("os.arch", "") match { case "amd64" | "x86_64" => "x64"; case "aarch64" => "arm64"; case a => a }
    val want = Option(props.getProperty("os")).getOrElse("?") -> Option(props.getProperty("arch")).getOrElse("?")
    if (want._1 != os || want._2 != arch) {
      Some(s"$name is for ${want._1}-${want._2}; this executor is $os-$arch (build it there with scripts/package)")
    } else wrongJar(props, jarBundleHash).map(w => s"$name $w").orElse {
      if (new File(dir, NodePath).canExecute && new File(dir, ScriptPath).isFile) None
      else Some(s"$name is incomplete: $NodePath or $ScriptPath is missing (or not executable); re-create it with scripts/package")
    }
  }

  /** A RUNTIME file's properties. */
  def readMarker(in: java.io.InputStream): Properties = {
    val props = new Properties()
    props.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8))
    props
  }

  /** Why a runtime archive with these RUNTIME properties does not go with the jar whose bundle is `jarBundleHash`. */
  def wrongJar(props: Properties, jarBundleHash: String): Option[String] =
    if (Option(props.getProperty("bundle")).contains(jarBundleHash)) None
    else Some(s"holds sidecar ${props.getProperty("bundle")} (version ${props.getProperty("version")}); this jar's is " +
      s"$jarBundleHash: ship the archive scripts/package wrote beside this jar")
}
