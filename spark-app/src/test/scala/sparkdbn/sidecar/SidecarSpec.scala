package sparkdbn.sidecar

import java.io.File
import java.nio.file.{Files, Path}
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.TimeUnit

import io.grpc.{Metadata, Status, StatusRuntimeException}
import io.grpc.health.v1.{HealthCheckRequest, HealthCheckResponse, HealthGrpc}
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
import io.grpc.stub.MetadataUtils
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.proto.{DescribeRequest, GetModelRequest, SidecarGrpc}

class SidecarSpec extends AnyFunSuite with BeforeAndAfterAll {
  private val work: Path = Files.createTempDirectory("sidecar-spec")
  private var sidecar: Sidecar = _

  override def beforeAll(): Unit = sidecar = Sidecar.start(SidecarConf(threads = 2), work.toFile, "exec-1")
  override def afterAll(): Unit = if (sidecar != null) sidecar.close()

  /** A stand-in for node: answers `--version` as Node 20.20.2 does, then runs `body`. */
  private def script(name: String, body: String, version: String = "echo v20.20.2; exit 0"): String = {
    val p = work.resolve(name)
    Files.writeString(p, "#!/bin/sh\nif [ \"$1\" = --version ]; then " + version + "; fi\n" + body + "\n")
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"))
    p.toString
  }

  test("starts on a free loopback port and answers health SERVING and Describe with the secret") {
    assert(sidecar.port > 0)
    assert(sidecar.healthStub.check(HealthCheckRequest.getDefaultInstance).getStatus ==
      HealthCheckResponse.ServingStatus.SERVING)
    val d = sidecar.client.describe()
    assert(d.getPid.toLong == sidecar.pid)
    assert(d.getExecutorId == "exec-1")
    // The kernels use the threads the executor gave (native path; the TS fallback has one).
    assert(d.getThreads == (if (d.getKernels == "ts") 1 else 2), d.toString)
    assert(d.getMaxRssBytes > 10L * 1024 * 1024)
  }

  test("a call with a wrong or no secret is UNAUTHENTICATED, and the sidecar keeps serving") {
    val channel = NettyChannelBuilder.forAddress("127.0.0.1", sidecar.port).usePlaintext().build()
    try {
      val md = new Metadata()
      md.put(Sidecar.SecretKey, "0" * 64)
      val wrong = SidecarGrpc.newBlockingStub(channel).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md))
      val e1 = intercept[StatusRuntimeException](wrong.describe(DescribeRequest.getDefaultInstance))
      assert(e1.getStatus.getCode == Status.Code.UNAUTHENTICATED)
      val e2 = intercept[StatusRuntimeException](
        HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance))
      assert(e2.getStatus.getCode == Status.Code.UNAUTHENTICATED)
    } finally channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
    assert(sidecar.client.describe().getPid.toLong == sidecar.pid)
  }

  test("a refused call is one SidecarCallException: the call and its gRPC status as fields, no task on the driver, no process state") {
    val e = intercept[SidecarCallException](sidecar.client.getModel(GetModelRequest.newBuilder().setVersion("nope").build()))
    assert(e.call == "GetModel" && e.code == Status.Code.NOT_FOUND && e.task.isEmpty && !e.isBadInput && e.badValue.isEmpty)
    // The sidecar's own refusal says all: no "sidecar pid ... is running" and no stderr appended.
    assert(e.getMessage == s"GetModel failed: gRPC NOT_FOUND: ${e.description}" && e.description.contains("version nope is not held"), e.getMessage)
  }

  test("a call to a sidecar that died is a SidecarCallException naming the call and how the process ended") {
    val s = Sidecar.start(SidecarConf(), work.toFile, "dying")
    try {
      Thread.sleep(1200) // a sample of its memory taken
      s.process.destroyForcibly().waitFor(10, TimeUnit.SECONDS)
      val e = intercept[SidecarCallException](s.client.describe())
      // How gRPC sees the dead peer depends on when the kernel closed its socket: refused (UNAVAILABLE) or
      // closed under the call (UNKNOWN "channel closed", seen on a loaded machine). Either way the process's end is said.
      assert(e.call == "Describe" && Set(Status.Code.UNAVAILABLE, Status.Code.UNKNOWN)(e.code), e.getMessage)
      assert(e.getMessage.contains(s"sidecar pid ${s.pid} has died (exit code 137: killed by SIGKILL, most likely for memory: " +
        "resident "), e.getMessage)
      // Its size was sampled while it ran (a sidecar is some tens of MB resident).
      assert(e.getMessage.matches("(?s).*resident [1-9]\\d* MB when last seen \\(peak [1-9]\\d* MB, budget spark\\.dbn\\.sidecar\\.memory=1536m\\).*"), e.getMessage)
    } finally s.close()
  }

  test("a start failure carries the process's stderr and exit code into the exception") {
    val bad = script("fails.sh", "echo 'boom: no GPU in this toaster' >&2\nexit 3")
    val e = intercept[SidecarException](Sidecar.start(SidecarConf(nodeBinary = bad), work.toFile, "x"))
    assert(e.getMessage.contains("boom: no GPU in this toaster"), e.getMessage)
    assert(e.getMessage.contains("exited with code 3"), e.getMessage)
  }

  test("a node that is not Node.js, or is too old, is refused before the sidecar starts, naming the conf") {
    val old = script("old-node.sh", "exit 0", version = "echo v18.20.1; exit 0")
    val e1 = intercept[SidecarException](Sidecar.start(SidecarConf(nodeBinary = old), work.toFile, "7"))
    assert(e1.getMessage.matches(s"executor 7 on \\S+: spark.dbn.node=\\Q$old\\E \\(the jar's sidecar\\) is Node.js v18.20.1; " +
      "the sidecar needs 20.19 or newer"), e1.getMessage)
    val other = script("not-node.sh", "exit 0", version = "echo 'cowsay 3.0'; echo 'second line'; exit 0")
    val e2 = intercept[SidecarException](Sidecar.start(SidecarConf(nodeBinary = other), work.toFile, "7"))
    assert(e2.getMessage.endsWith(s"spark.dbn.node=$other (the jar's sidecar) is not Node.js: `--version` printed 'cowsay 3.0'"), e2.getMessage)
  }

  test("a sidecar that cannot load the native kernels exits before serving, saying why (unless spark.dbn.kernels=ts)") {
    // SPARK_DBN_KERNELS=ts stands in for a host where the addon cannot load.
    val e = intercept[SidecarException](Sidecar.start(SidecarConf(extraEnv = Map("SPARK_DBN_KERNELS" -> "ts")), work.toFile, "x"))
    assert(e.getMessage.contains("exited with code 3"), e.getMessage)
    assert(e.getMessage.matches("(?s).*sidecar stderr: spark-dbn: the native kernels cannot load on \\S+: SPARK_DBN_KERNELS=ts; .*spark.dbn.kernels=ts.*"),
      e.getMessage)
    val ts = Sidecar.start(SidecarConf(extraEnv = Map("SPARK_DBN_KERNELS" -> "ts"), kernels = sparkdbn.proto.Kernels.KERNELS_TS), work.toFile, "x")
    try assert(ts.client.describe().getKernels == "ts") finally ts.close()
  }

  test("a missing node binary is named in the error") {
    val e = intercept[SidecarException](
      Sidecar.start(SidecarConf(nodeBinary = "/nonexistent/node"), work.toFile, "x"))
    assert(e.getMessage.contains("spark.dbn.node=/nonexistent/node"), e.getMessage)
  }

  test("a sidecar that never reports a port is killed after the start timeout") {
    val pidFile = work.resolve("hang.pid")
    val hang = script("hang.sh", s"echo $$$$ > $pidFile\necho 'starting slowly' >&2\nexec sleep 60")
    val t0 = System.nanoTime()
    val e = intercept[SidecarException](
      Sidecar.start(SidecarConf(nodeBinary = hang, startTimeoutMs = 800), work.toFile, "x"))
    val ms = (System.nanoTime() - t0) / 1000000
    assert(e.getMessage.contains("within 800 ms"), e.getMessage)
    assert(e.getMessage.contains("spark.dbn.sidecar.startTimeout"), e.getMessage)
    assert(e.getMessage.contains("starting slowly"), e.getMessage)
    assert(ms < 10000, s"start gave up after $ms ms")
    val pid = Files.readString(pidFile).trim.toLong
    val handle = java.lang.ProcessHandle.of(pid)
    assert(!handle.isPresent || !handle.get.isAlive, s"pid $pid still running")
  }

  test("close() stops the process") {
    val s = Sidecar.start(SidecarConf(), work.toFile, "closing")
    s.close()
    assert(!s.process.isAlive)
    assert(!s.isAlive)
  }

  test("the bundle is unpacked once into a directory named by its hash") {
    val a = SidecarBundle.unpack(work.toFile)
    val b = SidecarBundle.unpack(work.toFile)
    assert(a == b && a.isFile)
    assert(a.getParentFile.getParentFile.getParentFile.getName.matches("spark-dbn-sidecar-[0-9a-f]{16}"))
    assert(new File(a.getParentFile.getParentFile.getParentFile, "proto/health/v1/health.proto").isFile)
  }

  test("SidecarConf: defaults, Spark conf keys and validation") {
    val d = SidecarConf()
    assert(d.nodeBinary == "node" && d.startTimeoutMs == 30000 && d.maxMessageBytes == 64 * 1024 * 1024)
    val c = SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false)
      .set("spark.dbn.node", "/opt/node/bin/node")
      .set("spark.dbn.sidecar.startTimeout", "5s")
      .set("spark.dbn.sidecar.maxMessageBytes", "8m")
      .set("spark.dbn.sidecar.env.FOO", "bar"))
    assert(c == SidecarConf("/opt/node/bin/node", 5000, 8 * 1024 * 1024, Map("FOO" -> "bar"), threads = 1, nodeExplicit = true))
    assert(!d.nodeExplicit && d.kernels == sparkdbn.proto.Kernels.KERNELS_NATIVE)
    def kernels(v: String) = SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false).set("spark.dbn.kernels", v)).kernels
    assert(kernels("ts") == sparkdbn.proto.Kernels.KERNELS_TS && kernels("native") == sparkdbn.proto.Kernels.KERNELS_NATIVE)
    assert(intercept[IllegalArgumentException](kernels("gpu")).getMessage == "spark.dbn.kernels=gpu: expected native or ts")
    assert(d.nodeOptions == Nil)
    def nodeOptions(v: String) = SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false)
      .set("spark.dbn.sidecar.nodeOptions", v)).nodeOptions
    assert(nodeOptions(" --max-semi-space-size=32   --initial-old-space-size=64 ") ==
      Seq("--max-semi-space-size=32", "--initial-old-space-size=64"))
    assert(nodeOptions("") == Nil)
    val bad = intercept[IllegalArgumentException](nodeOptions("--stack-size=900 script.js"))
    assert(bad.getMessage.contains("spark.dbn.sidecar.nodeOptions") && bad.getMessage.contains("'script.js'"))
    def threads(kv: (String, String)*) = SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false).setAll(kv)).threads
    assert(threads("spark.master" -> "local[3]") == 3)
    assert(threads("spark.master" -> "local[2,4]") == 2)
    assert(threads("spark.master" -> "spark://h:1", "spark.executor.cores" -> "4") == 4)
    assert(threads("spark.master" -> "local[4]", "spark.dbn.sidecar.threads" -> "2") == 2)
    intercept[IllegalArgumentException](SidecarConf(threads = 0).validate())
    val e = intercept[IllegalArgumentException](SidecarConf(startTimeoutMs = 0).validate())
    assert(e.getMessage.contains("spark.dbn.sidecar.startTimeout"))
    intercept[IllegalArgumentException](SidecarConf(nodeBinary = " ").validate())
    intercept[IllegalArgumentException](SidecarConf(maxMessageBytes = 10).validate())
  }

  test("SidecarConf: a bad or unknown spark.dbn conf is refused naming the key, the value and what is accepted") {
    def err(kv: (String, String)*) =
      intercept[IllegalArgumentException](SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false).setAll(kv))).getMessage
    assert(err("spark.dbn.sidecar.threads" -> "abc") == "spark.dbn.sidecar.threads=abc: expected an integer from 1 to 256")
    assert(err("spark.dbn.sidecar.threads" -> "0") == "spark.dbn.sidecar.threads=0: expected an integer from 1 to 256")
    assert(err("spark.dbn.sidecar.cacheBytes" -> "lots") == "spark.dbn.sidecar.cacheBytes=lots: expected a size such as 2g or 512m")
    assert(err("spark.dbn.sidecar.startTimeout" -> "soon") == "spark.dbn.sidecar.startTimeout=soon: expected a positive duration such as 30s or 500ms")
    assert(err("spark.dbn.sidecar.maxMessageBytes" -> "4g") == "spark.dbn.sidecar.maxMessageBytes=4g: expected a size from 1k to 2047m, such as 64m")
    assert(err("spark.dbn.sidecar.thread" -> "2").startsWith("spark.dbn.sidecar.thread is not a spark-dbn conf; they are spark.dbn.node, "))
    assert(SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false).set("spark.dbn.sidecar.cacheBytes", "512m")).cacheBytes == 512L << 20)
    assert(err("spark.dbn.sidecar.callTimeout" -> "soon") == "spark.dbn.sidecar.callTimeout=soon: expected a positive duration such as 10min or 30s")
    // Zero would be no deadline at all in gRPC's terms: refused by the reader, naming the value as given.
    assert(err("spark.dbn.sidecar.callTimeout" -> "0s") == "spark.dbn.sidecar.callTimeout=0s: expected a positive duration such as 10min or 30s")
    assert(SidecarConf.fromSparkConf(new org.apache.spark.SparkConf(false).set("spark.dbn.sidecar.callTimeout", "30s")).callTimeoutMs == 30000)
    assert(SidecarConf().callTimeoutMs == 600000)
  }
}
