package sparkdbn.train

import java.util.concurrent.{CompletableFuture, TimeUnit}

import scala.jdk.CollectionConverters._
import scala.util.control.NonFatal

import com.google.protobuf.{ByteString, UnsafeByteOperations}
import io.grpc.{Status, StatusRuntimeException}
import io.grpc.stub.{ClientCallStreamObserver, ClientResponseObserver}
import org.apache.spark.{SparkEnv, TaskContext}

import sparkdbn.io.FeatureArrow
import sparkdbn.proto.{CacheDataRequest, CacheDataResponse, CacheStart, PutModelRequest, TrainRequest, TrainResponse}
import sparkdbn.sidecar.{Sidecar, SidecarException, SidecarManager}

/** What the driver asks of one partition's replica in one round. */
final case class RoundSpec(
    runId: String,
    layer: Int,
    configJson: String,
    nInputs: Int,
    independent: Boolean,
    inputSums: Boolean) {
  def session(partition: Int): String = s"$runId/$partition"
}

/** What a replica sends back: its update (proto/update.avsc) and where and how it ran. */
final case class RoundResult(
    partition: Int,
    update: Array[Byte],
    inputSums: Array[Double],
    rows: Long,
    warm: Boolean,
    resent: Boolean,
    executor: String,
    taskSeconds: Double)

/** The executor side of a round: runs inside a Spark task, talks to this executor's sidecar. */
object ReplicaTask {
  def run(spec: RoundSpec, version: String, snapshot: () => Array[Byte], batches: Int, epoch: Int,
      chunks: Iterator[Chunk]): RoundResult = {
    val t0 = System.nanoTime()
    val ctx = TaskContext.get()
    val p = ctx.partitionId()
    val task = s"stage ${ctx.stageId()} partition $p attempt ${ctx.attemptNumber()}"
    val sidecar = SidecarManager.get()
    val req = TrainRequest.newBuilder().setSession(spec.session(p)).setModelVersion(version).setLayer(spec.layer)
      .setConfigJson(spec.configJson).setBatches(batches).setEpoch(epoch).setInputSums(spec.inputSums)
      .setIndependent(spec.independent).setTask(task).build()
    var resent = false
    var modelSent = false

    def train(): TrainResponse = {
      if (!sidecar.loadedModels.contains(version)) putModel(sidecar, version, snapshot())
      // A round can be long; the sidecar's death fails the call at once (the connection closes).
      sidecar.blockingStub.withDeadlineAfter(6, TimeUnit.HOURS).train(req)
    }

    val resp = try {
      var answer: TrainResponse = null
      var attempts = 0
      while (answer == null) {
        attempts += 1
        try answer = train() catch {
          case s: StatusRuntimeException if s.getStatus.getCode == Status.Code.NOT_FOUND && !resent =>
            // The sidecar does not hold this partition's rows (new process, or evicted): send them.
            cacheData(sidecar, spec.session(p), spec.nInputs, chunks, task)
            resent = true
          case s: StatusRuntimeException if s.getStatus.getCode == Status.Code.FAILED_PRECONDITION && !modelSent =>
            sidecar.loadedModels.remove(version)
            modelSent = true
        }
        if (attempts > 3 && answer == null) throw new SidecarException(s"$task: the sidecar kept refusing the round")
      }
      answer
    } catch {
      case s: StatusRuntimeException if s.getStatus.getCode == Status.Code.INVALID_ARGUMENT =>
        throw new IllegalArgumentException(s"DBN training rejected the input: ${s.getStatus.getDescription}")
      case s: SidecarException => throw s
      case NonFatal(e) => throw sidecar.explain(e)
    }
    RoundResult(p, resp.getUpdate.toByteArray, resp.getInputSumsList.asScala.map(_.doubleValue()).toArray, resp.getRows,
      resp.getWarm, resent, SparkEnv.get.executorId, (System.nanoTime() - t0) / 1e9)
  }

  def putModel(sidecar: Sidecar, version: String, snapshot: Array[Byte]): Unit = {
    sidecar.blockingStub.withDeadlineAfter(5, TimeUnit.MINUTES)
      .putModel(PutModelRequest.newBuilder().setVersion(version).setSnapshot(UnsafeByteOperations.unsafeWrap(snapshot)).build())
    sidecar.loadedModels.add(version)
  }

  /** Streams a partition's chunks to the sidecar's session cache, with gRPC flow control. */
  def cacheData(sidecar: Sidecar, session: String, n: Int, chunks: Iterator[Chunk], task: String): CacheDataResponse = {
    val result = new CompletableFuture[CacheDataResponse]()
    val ready = new Object
    val observer = new ClientResponseObserver[CacheDataRequest, CacheDataResponse] {
      override def beforeStart(req: ClientCallStreamObserver[CacheDataRequest]): Unit =
        req.setOnReadyHandler(() => ready.synchronized(ready.notifyAll()))
      override def onNext(v: CacheDataResponse): Unit = result.complete(v)
      override def onError(t: Throwable): Unit = {
        result.completeExceptionally(t)
        ready.synchronized(ready.notifyAll())
      }
      override def onCompleted(): Unit = ()
    }
    val requests = sidecar.asyncStub.cacheData(observer).asInstanceOf[ClientCallStreamObserver[CacheDataRequest]]
    try {
      requests.onNext(CacheDataRequest.newBuilder().setStart(
        CacheStart.newBuilder().setSession(session).setTask(task).setNInputs(n)).build())
      chunks.foreach { c =>
        ready.synchronized {
          while (!requests.isReady && !result.isDone) ready.wait(100)
        }
        if (!result.isDone) {
          val bytes = FeatureArrow.encode(c.values, c.rows, n, c.labels)
          requests.onNext(CacheDataRequest.newBuilder().setBatch(UnsafeByteOperations.unsafeWrap(bytes)).build())
        }
      }
      if (!result.isDone) requests.onCompleted()
      result.get(1, TimeUnit.HOURS)
    } catch {
      case NonFatal(e) =>
        val cause = e match {
          case ee: java.util.concurrent.ExecutionException => ee.getCause
          case other => other
        }
        try requests.cancel("task failed", cause) catch { case NonFatal(c) => cause.addSuppressed(c) }
        cause match {
          case s: StatusRuntimeException => throw s
          case other => throw sidecar.explain(other)
        }
    }
  }
}
