package sparkdbn.sidecar

import java.io.{BufferedReader, File, InputStream, InputStreamReader}
import java.nio.charset.StandardCharsets
import java.security.SecureRandom
import java.util.HexFormat
import java.util.concurrent.{CompletableFuture, ExecutionException, TimeUnit, TimeoutException}

import scala.jdk.CollectionConverters._
import scala.util.control.NonFatal

import io.grpc.{ManagedChannel, Metadata, StatusRuntimeException}
import io.grpc.health.v1.{HealthCheckRequest, HealthCheckResponse, HealthGrpc}
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
import io.grpc.stub.MetadataUtils
import org.slf4j.LoggerFactory

import sparkdbn.proto.{SidecarLaunch, SidecarReady}

/**
 * One running sidecar process, supervised: started with its handshake, checked healthy, its stderr kept,
 * stopped. Its calls are [[SidecarClient]]'s (`client`), the only user of the channel. Created by
 * [[Sidecar.start]]; owned by [[SidecarManager]] on executors (which replaces a dead one).
 */
final class Sidecar private (
    val process: Process,
    val port: Int,
    secret: String,
    private[sidecar] val channel: ManagedChannel,
    private[sidecar] val stderr: StderrTail,
    callTimeoutMs: Long,
    /** spark.dbn.sidecar.memory: named when the process dies for memory. */
    budget: Long) extends AutoCloseable {

  private val secretHeaders = {
    val md = new Metadata()
    md.put(Sidecar.SecretKey, secret)
    md
  }
  private[sidecar] val auth = MetadataUtils.newAttachHeadersInterceptor(secretHeaders)

  /** The process's one client: every call to it goes through this. */
  val client: SidecarClient = new SidecarClient(this, callTimeoutMs)

  def pid: Long = process.pid()
  def isAlive: Boolean = process.isAlive && !channel.isShutdown

  /** Its resident memory, sampled; what a death by SIGKILL is explained with. */
  private[sidecar] val memory = new MemoryWatch(process.pid(), budget)

  private[sidecar] def healthStub: HealthGrpc.HealthBlockingStub = HealthGrpc.newBlockingStub(channel).withInterceptors(auth)

  /**
   * Whether the process is running, or how it ended. `settleMs`: how long to give a process whose connection
   * just dropped to be seen dead (the socket closes before the exit is reaped).
   */
  private[sidecar] def state(settleMs: Long = 0): String = {
    if (settleMs > 0) process.waitFor(settleMs, TimeUnit.MILLISECONDS)
    if (process.isAlive) s"sidecar pid $pid is running"
    else if (process.exitValue() == 137) s"sidecar pid $pid has died (exit code 137: ${memory.killedClause})"
    else s"sidecar pid $pid has died (exit code ${process.exitValue()})"
  }

  /** Stops the process: closes stdin (it exits by itself), then SIGTERM, then SIGKILL. */
  override def close(): Unit = {
    memory.stop()
    try channel.shutdownNow() catch { case NonFatal(_) => }
    try process.getOutputStream.close() catch { case NonFatal(_) => }
    if (!process.waitFor(2, TimeUnit.SECONDS)) {
      process.destroy()
      if (!process.waitFor(2, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
    }
    try channel.awaitTermination(1, TimeUnit.SECONDS) catch { case NonFatal(_) => }
  }
}

object Sidecar {
  private val log = LoggerFactory.getLogger(classOf[Sidecar])
  val SecretKey: Metadata.Key[String] = Metadata.Key.of(Contract.SecretMetadata, Metadata.ASCII_STRING_MARSHALLER)
  /** The handshake's two names (proto/sidecar.proto, SidecarLaunch): the launch message's variable, the ready line's prefix. */
  private val LaunchEnv = Contract.LaunchEnv
  private val ReadyPrefix = Contract.ReadyPrefix
  private val random = new SecureRandom()
  /** The JVM side's HTTP/2 receive window (the sidecar raises its own to the same). */
  private val ReceiveWindowBytes = Contract.ReceiveWindowBytes

  private def newSecret(): String = {
    val b = new Array[Byte](32)
    random.nextBytes(b)
    HexFormat.of().formatHex(b)
  }

  /**
   * Starts the sidecar (the runtime archive's under `workDir`, else the jar's, unpacked there: SidecarRuntime)
   * and returns once it answers health SERVING. On failure nothing is left running and the exception, one
   * line naming the executor and its host, carries the process's stderr.
   */
  def start(conf: SidecarConf, workDir: File, executorId: String): Sidecar = {
    conf.validate()
    try launch(conf, workDir, executorId) catch {
      case e: SidecarException =>
        // A host whose own name does not resolve still gets its start failure, named by what there is.
        val host = scala.util.Try(java.net.InetAddress.getLocalHost.getHostName).getOrElse("a host with no resolvable name")
        throw new SidecarException(s"executor $executorId on $host: ${e.getMessage}", e.getCause)
    }
  }

  private def launch(conf: SidecarConf, workDir: File, executorId: String): Sidecar = {
    val runtime = SidecarRuntime.locate(workDir, conf, conf.nodeExplicit)
    val script = runtime.script
    val secret = newSecret()
    checkNode(runtime)
    val pb = new ProcessBuilder((runtime.node +: conf.nodeFlags :+ script.getAbsolutePath).asJava)
    pb.directory(workDir)
    val env = pb.environment()
    // The whole config as one typed message (proto/sidecar.proto, SidecarLaunch); unset fields: its defaults.
    val launch = SidecarLaunch.newBuilder().setSecret(secret).setExecutorId(executorId).setHost("127.0.0.1").setPort(0)
      .setMaxReceiveMessageBytes(conf.maxMessageBytes).setTrainWorkers(conf.trainWorkers).setWorkerThreads(conf.taskCpus)
      .setCacheBytes(conf.cacheBytes).setKernels(conf.kernels).setWorkerHeapMb(conf.memoryPlan.workerHeapMb).build()
    env.put(LaunchEnv, java.util.Base64.getEncoder.encodeToString(launch.toByteArray))
    // OpenBLAS sizes its buffers at load for this many threads; the kernels' own pool takes the same.
    env.put("OPENBLAS_NUM_THREADS", conf.threads.toString)
    conf.extraEnv.foreach { case (k, v) => env.put(k, v) }
    val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(conf.startTimeoutMs)
    val process = try pb.start() catch {
      case NonFatal(e) =>
        throw new SidecarException(s"cannot run the sidecar from ${runtime.source}: ${e.getMessage}", e)
    }
    val stderr = new StderrTail(process.getErrorStream, s"sidecar-${process.pid()}-stderr")
    var channel: ManagedChannel = null
    try {
      val port = awaitPort(process, stderr, deadline, conf, runtime.node)
      channel = NettyChannelBuilder.forAddress("127.0.0.1", port)
        .usePlaintext()
        .maxInboundMessageSize(conf.maxMessageBytes)
        // A round's answer is a whole model update (1.6 MB for 784-500): with the 1 MiB default window
        // it waits on a WINDOW_UPDATE round trip.
        .flowControlWindow(Sidecar.ReceiveWindowBytes)
        .build()
      val sidecar = new Sidecar(process, port, secret, channel, stderr, conf.callTimeoutMs, conf.memory)
      awaitServing(sidecar, deadline, conf)
      log.info(s"started sidecar pid ${process.pid()} on 127.0.0.1:$port for executor $executorId from ${runtime.source}")
      sidecar
    } catch {
      case NonFatal(e) =>
        // Keep the start failure as the primary error; cleanup problems are secondary.
        try {
          if (channel != null) channel.shutdownNow()
          process.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
        } catch { case NonFatal(c) => e.addSuppressed(c) }
        e match {
          case s: SidecarException => throw s
          case other => throw new SidecarException(s"sidecar failed to start: ${other.getMessage}${stderr.suffix}", other)
        }
    }
  }

  private val NodeVersion = """v(\d+)\.(\d+)\.\d+""".r

  /** `node --version` is a Node.js at least as new as the bundle needs (its MANIFEST's node-min), or a clear line. */
  private def checkNode(runtime: SidecarRuntime): Unit = {
    val what = s"${SidecarConf.NodeKey}=${runtime.node} (${runtime.source})"
    // Its output to a file, not a pipe: a child that keeps the pipe open would block the read past the timeout.
    val outFile = File.createTempFile("spark-dbn-node-version", ".txt")
    val out = try {
      val p = new ProcessBuilder(runtime.node, "--version").redirectErrorStream(true).redirectOutput(outFile).start()
      if (!p.waitFor(10, TimeUnit.SECONDS)) { p.destroyForcibly(); throw new SidecarException(s"$what: `--version` did not answer in 10 s") }
      java.nio.file.Files.readString(outFile.toPath, StandardCharsets.UTF_8).trim.linesIterator.nextOption().getOrElse("").take(200)
    } catch {
      case e: java.io.IOException =>
        throw new SidecarException(s"cannot run $what: ${e.getMessage}; on hosts without Node.js ship the runtime archive " +
          "(--archives spark-dbn-runtime-<version>-linux-x64.tgz#sparkdbn, README \"Running on a cluster\")", e)
    } finally outFile.delete()
    val (minMajor, minMinor) = SidecarBundle.nodeMin
    out match {
      case NodeVersion(a, b) if a.toInt > minMajor || (a.toInt == minMajor && b.toInt >= minMinor) => ()
      case NodeVersion(_, _) => throw new SidecarException(s"$what is Node.js $out; the sidecar needs $minMajor.$minMinor or newer")
      case other => throw new SidecarException(s"$what is not Node.js: `--version` printed '$other'")
    }
  }

  private def remainingMs(deadline: Long): Long = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())

  /** Reads stdout until the port line; later lines are logged. */
  private def awaitPort(process: Process, stderr: StderrTail, deadline: Long, conf: SidecarConf, node: String): Int = {
    val port = new CompletableFuture[Int]()
    val reader = new Thread(() => {
      val in = new BufferedReader(new InputStreamReader(process.getInputStream, StandardCharsets.UTF_8))
      try {
        var line = in.readLine()
        while (line != null) {
          if (line.startsWith(ReadyPrefix)) {
            try port.complete(SidecarReady.parseFrom(java.util.Base64.getDecoder.decode(line.substring(ReadyPrefix.length).trim)).getPort)
            catch { case NonFatal(e) => port.completeExceptionally(new SidecarException(s"sidecar's ready line is not a SidecarReady: $line", e)) }
          } else log.info(s"sidecar ${process.pid()}: $line")
          line = in.readLine()
        }
      } catch { case NonFatal(_) => }
      port.completeExceptionally(new SidecarException("sidecar closed stdout before reporting its port"))
    }, s"sidecar-${process.pid()}-stdout")
    reader.setDaemon(true)
    reader.start()
    try port.get(math.max(1, remainingMs(deadline)), TimeUnit.MILLISECONDS)
    catch {
      case _: TimeoutException =>
        throw new SidecarException(s"sidecar pid ${process.pid()} did not report a port within " +
          s"${conf.startTimeoutMs} ms (${SidecarConf.StartTimeoutKey})${stderr.suffix}")
      case e: ExecutionException =>
        val exit = if (process.waitFor(2, TimeUnit.SECONDS)) s"exited with code ${process.exitValue()}"
        else "is still running"
        stderr.awaitEof(1000)
        throw new SidecarException(s"sidecar ($node) $exit before serving: " +
          s"${e.getCause.getMessage}${stderr.suffix}", e.getCause)
    }
  }

  private def awaitServing(s: Sidecar, deadline: Long, conf: SidecarConf): Unit = {
    var last: Throwable = null
    while (remainingMs(deadline) > 0) {
      if (!s.process.isAlive) {
        throw new SidecarException(s"sidecar pid ${s.pid} exited with code ${s.process.exitValue()} " +
          s"before reporting health${s.stderr.suffix}")
      }
      try {
        val status = s.healthStub.withDeadlineAfter(math.max(1, math.min(2000, remainingMs(deadline))), TimeUnit.MILLISECONDS)
          .check(HealthCheckRequest.newBuilder().setService("").build()).getStatus
        if (status == HealthCheckResponse.ServingStatus.SERVING) return
        last = new IllegalStateException(s"health is $status")
      } catch {
        case e: StatusRuntimeException => last = e
      }
      Thread.sleep(50)
    }
    throw new SidecarException(s"sidecar pid ${s.pid} was not SERVING within ${conf.startTimeoutMs} ms " +
      s"(${SidecarConf.StartTimeoutKey}); last answer: ${Option(last).map(_.getMessage).orNull}${s.stderr.suffix}")
  }
}

/** Drains a stream on a daemon thread, keeping its last `limit` characters. */
private[sidecar] final class StderrTail(in: InputStream, name: String, limit: Int = 16 * 1024) {
  private val buf = new java.lang.StringBuilder()
  private val done = new CompletableFuture[Unit]()
  private val log = LoggerFactory.getLogger(classOf[Sidecar])
  private val thread = new Thread(() => {
    val r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))
    try {
      var line = r.readLine()
      while (line != null) {
        log.warn(s"$name: $line")
        buf.synchronized {
          buf.append(line).append('\n')
          if (buf.length > limit) buf.delete(0, buf.length - limit)
        }
        line = r.readLine()
      }
    } catch { case NonFatal(_) => }
    done.complete(())
  }, name)
  thread.setDaemon(true)
  thread.start()

  def awaitEof(ms: Long): Unit = try done.get(ms, TimeUnit.MILLISECONDS) catch { case NonFatal(_) => }
  def text: String = buf.synchronized(buf.toString)
  /** ", stderr: ..." or "" when it wrote nothing. */
  def suffix: String = {
    val t = text.trim
    if (t.isEmpty) " (the sidecar wrote nothing to stderr)"
    else if (!t.contains('\n')) s"; sidecar stderr: $t"
    else s"; sidecar stderr:\n$t"
  }
}
