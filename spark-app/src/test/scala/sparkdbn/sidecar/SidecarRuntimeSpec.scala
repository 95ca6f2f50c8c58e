package sparkdbn.sidecar

import java.io.File
import java.nio.file.{Files, Path}
import java.nio.file.attribute.PosixFilePermissions

import org.scalatest.funsuite.AnyFunSuite

/** Finding and checking an unpacked runtime archive (no process is started here). */
class SidecarRuntimeSpec extends AnyFunSuite {
  private def archive(root: Path, alias: String, runtime: String, node: Boolean = true): File = {
    val dir = Files.createDirectories(root.resolve(alias))
    Files.writeString(dir.resolve("RUNTIME"), runtime)
    if (node) {
      val bin = Files.createDirectories(dir.resolve("node/bin")).resolve("node")
      Files.writeString(bin, "#!/bin/sh\n")
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
    }
    Files.createDirectories(dir.resolve("sidecar/lib/node"))
    Files.writeString(dir.resolve("sidecar/" + SidecarBundle.EntryPoint), "")
    dir.toFile
  }
  private val ok = s"os=linux\narch=x64\nversion=0.1.0\nbundle=${SidecarBundle.hash}\n"

  test("an archive under any alias, or in a Spark Connect session's subdirectory, runs with its own Node") {
    val root = Files.createTempDirectory("runtime-spec")
    archive(root.resolve("c0ffee-session"), "whatever", ok)
    val r = SidecarRuntime.locate(root.toFile, SidecarConf(), nodeSet = false)
    assert(r.node == root.resolve("c0ffee-session/whatever/node/bin/node").toString && r.source.startsWith("the runtime archive whatever"))
    // spark.dbn.node, when set, still decides the Node.
    assert(SidecarRuntime.locate(root.toFile, SidecarConf(nodeBinary = "/opt/node"), nodeSet = true).node == "/opt/node")
  }

  test("without an archive, the jar's sidecar with spark.dbn.node") {
    val r = SidecarRuntime.locate(Files.createTempDirectory("runtime-spec").toFile, SidecarConf(), nodeSet = false)
    assert(r.node == "node" && r.source == "the jar's sidecar" && r.script.isFile)
  }

  test("an archive for another OS, architecture or jar, or one missing its Node, is refused naming it and what was expected") {
    val root = Files.createTempDirectory("runtime-spec")
    def refusal(runtime: String, node: Boolean = true): String =
      SidecarRuntime.check(archive(root, s"a${runtime.hashCode.abs}-$node", runtime, node), SidecarBundle.hash).getOrElse("")
    assert(refusal(ok.replace("os=linux", "os=darwin")).matches(".*runtime archive \\S+ \\(.*\\) is for darwin-x64; this executor is linux-x64.*"))
    assert(refusal(ok.replace("arch=x64", "arch=arm64")).contains("is for linux-arm64; this executor is linux-x64"))
    assert(refusal(ok.replace(s"bundle=${SidecarBundle.hash}", "bundle=0123456789abcdef"))
      .contains(s"holds sidecar 0123456789abcdef (version 0.1.0); this jar's is ${SidecarBundle.hash}"))
    assert(refusal(ok, node = false).contains("is incomplete: node/bin/node or sidecar/lib/node/sidecar.cjs is missing"))
    assert(refusal(ok).isEmpty)
    // locate refuses with that line when no archive under the root is usable.
    val only = Files.createTempDirectory("runtime-spec")
    archive(only, "sparkdbn", ok.replace("arch=x64", "arch=arm64"))
    val e = intercept[SidecarException](SidecarRuntime.locate(only.toFile, SidecarConf(), nodeSet = false))
    assert(e.getMessage.contains("runtime archive sparkdbn") && e.getMessage.contains("is for linux-arm64"), e.getMessage)
  }
}
