package sparkdbn.sidecar

import java.io.File
import java.nio.file.{Files, Path}

import org.scalatest.funsuite.AnyFunSuite

/** The driver's check of shipped runtime archives, on archives made here with tar. */
class RuntimeArchiveSpec extends AnyFunSuite {
  private val dir: Path = Files.createTempDirectory("runtime-archive-spec")

  /** A .tgz of a RUNTIME file (when given) and a node binary of `bytes` random bytes. */
  private def tgz(name: String, runtime: Option[String], bytes: Int = 300000): File = {
    val stage = Files.createTempDirectory(dir, "stage")
    runtime.foreach(r => Files.writeString(stage.resolve("RUNTIME"), r))
    Files.createDirectories(stage.resolve("node/bin"))
    val rnd = new Array[Byte](bytes)
    new scala.util.Random(1).nextBytes(rnd)
    Files.write(stage.resolve("node/bin/node"), rnd)
    val out = dir.resolve(name).toFile
    val entries = if (runtime.isDefined) Seq("RUNTIME", "node") else Seq("node")
    val p = new ProcessBuilder((Seq("tar", "-czf", out.toString, "-C", stage.toString) ++ entries): _*).inheritIO().start()
    assert(p.waitFor() == 0)
    out
  }
  private val hash = SidecarBundle.hash
  private val ok = s"os=linux\narch=x64\nversion=0.1.0\nbundle=$hash\n"

  test("a good archive passes; truncated, not gzip, without RUNTIME or for another jar is refused, naming why") {
    val good = tgz("spark-dbn-runtime-0.1.0-linux-x64.tgz", Some(ok))
    assert(RuntimeArchive.problem(good, hash).isEmpty)
    val cut = dir.resolve("spark-dbn-runtime-cut.tgz").toFile
    Files.write(cut.toPath, Files.readAllBytes(good.toPath).take(good.length.toInt / 2))
    assert(RuntimeArchive.problem(cut, hash).exists(_.startsWith("is truncated")), RuntimeArchive.problem(cut, hash))
    val junk = dir.resolve("spark-dbn-runtime-junk.tgz").toFile
    Files.writeString(junk.toPath, "not an archive")
    assert(RuntimeArchive.problem(junk, hash).exists(_.startsWith("is not a gzip-compressed tar")))
    assert(RuntimeArchive.problem(tgz("spark-dbn-runtime-bare.tgz", None), hash).exists(_.contains("holds no RUNTIME file")))
    assert(RuntimeArchive.problem(tgz("spark-dbn-runtime-old.tgz", Some(ok.replace(hash, "0123456789abcdef"))), hash)
      .exists(_.startsWith("holds sidecar 0123456789abcdef (version 0.1.0); this jar's is")))
    assert(RuntimeArchive.problem(new File(dir.toFile, "spark-dbn-runtime-none.tgz"), hash).contains("does not exist"))
  }

  test("the driver refuses a bad shipped archive naming its conf and file; other archives are not its business") {
    val junk = dir.resolve("spark-dbn-runtime-9.tgz").toFile
    Files.writeString(junk.toPath, "x")
    val conf = new org.apache.spark.SparkConf(false).set("spark.archives", s"file://${dir.resolve("other.zip")}#o, ${junk}#sparkdbn")
    assert(RuntimeArchive.shipped(conf).map(_._2) == Seq(junk))
    val e = intercept[IllegalArgumentException](RuntimeArchive.verifyShipped(conf))
    assert(e.getMessage == s"spark.archives: $junk is not a gzip-compressed tar (Not in GZIP format): re-create it with scripts/package",
      e.getMessage)
    RuntimeArchive.verifyShipped(new org.apache.spark.SparkConf(false).set("spark.yarn.dist.archives", "hdfs:///r/spark-dbn-runtime-1.tgz"))
  }
}
