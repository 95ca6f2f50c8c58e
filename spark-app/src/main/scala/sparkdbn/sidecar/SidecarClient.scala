package sparkdbn.sidecar

import java.util.concurrent.{CompletableFuture, ConcurrentHashMap, ExecutionException, Future, LinkedBlockingQueue, TimeUnit, TimeoutException}

import scala.util.control.NonFatal

import com.google.protobuf.UnsafeByteOperations
import io.grpc.{Status, StatusRuntimeException}
import io.grpc.stub.{ClientCallStreamObserver, ClientResponseObserver, StreamObserver}
import org.apache.spark.{TaskContext, TaskKilledException}

import sparkdbn.proto.{CacheDataRequest, CacheDataResponse, CombineRequest, CombineResponse, DescribeRequest, DescribeResponse, GetModelRequest,
  InitLayerRequest, MergeRequest, PutModelRequest, ReportRequest, ReportResponse, SidecarGrpc, SnapshotResponse, TrainRequest,
  TrainResponse, TransformRequest, TransformResponse}

/**
 * The one client of a sidecar process ([[Sidecar]] supervises the process; this owns the protocol). Callers
 * see typed calls only, never a stub or the transport, and every failure as one [[SidecarCallException]].
 *
 *  - Deadlines: every short call (PutModel, Describe, InitLayer, Merge, Combine, GetModel, Report) has
 *    `spark.dbn.sidecar.callTimeout`. A Train call or a stream lasts as long as its data does, so it has no
 *    deadline: it is bound to its task and to the process instead (below), and ends when either does.
 *  - Bound to the task: a call made inside a Spark task is cancelled when the task is killed (its wait checks
 *    `TaskContext.isInterrupted` every [[SidecarClient.WaitStepMs]] ms, as Spark's own readers do, and a
 *    thread interrupt cancels it at once) and, for a stream that outlives one wait, when the task completes
 *    (a `limit` that stops reading must not leave the sidecar scoring for nobody).
 *  - Model versions: which versions this JVM sent is the client's alone; a call refused with
 *    FAILED_PRECONDITION (the process evicted the version, or is new) sends it again once ([[withModel]]).
 */
final class SidecarClient private[sidecar] (sidecar: Sidecar, callTimeoutMs: Long) {
  import SidecarClient._

  private def unaryStub = SidecarGrpc.newFutureStub(sidecar.channel).withInterceptors(sidecar.auth)
  private def streamStub = SidecarGrpc.newStub(sidecar.channel).withInterceptors(sidecar.auth)
  private def short = unaryStub.withDeadlineAfter(callTimeoutMs, TimeUnit.MILLISECONDS)

  /** Versions this JVM has sent to the process (it may evict them; a call then sends again). */
  private val loaded = ConcurrentHashMap.newKeySet[String]()
  private val sending = new ConcurrentHashMap[String, Object]()

  def pid: Long = sidecar.pid

  def describe(): DescribeResponse = unary("Describe")(short.describe(DescribeRequest.getDefaultInstance))
  def initLayer(r: InitLayerRequest): SnapshotResponse = unary("InitLayer")(short.initLayer(r))
  /** A merge whose request has `publish_as` leaves that version in the process: the client knows it is there. */
  def merge(r: MergeRequest): SnapshotResponse = {
    val answer = unary("Merge")(short.merge(r))
    if (!r.getPublishAs.isEmpty) loaded.add(r.getPublishAs)
    answer
  }
  def getModel(r: GetModelRequest): SnapshotResponse = unary("GetModel")(short.getModel(r))
  def combine(r: CombineRequest): CombineResponse = unary("Combine")(short.combine(r))
  def report(r: ReportRequest): ReportResponse = unary("Report")(short.report(r))
  /** A round of training: no deadline (its length is the data's), bound to the task and the process. */
  def train(r: TrainRequest): TrainResponse = unary("Train")(unaryStub.train(r))

  /**
   * Sends a version's snapshot unless this JVM already did. The tasks of one round start together: one
   * sends, the others wait for it (each sending its own copy cost a transfer of the whole model per task).
   */
  def ensureModel(version: String, snapshot: => Array[Byte]): Unit = if (!loaded.contains(version)) {
    val lock = sending.computeIfAbsent(version, _ => new Object)
    try lock.synchronized {
      if (!loaded.contains(version)) {
        // The array is the caller's and never changes: wrapped, not copied.
        unary("PutModel")(short.putModel(PutModelRequest.newBuilder().setVersion(version)
          .setSnapshot(UnsafeByteOperations.unsafeWrap(snapshot)).build()))
        loaded.add(version)
      }
    } finally sending.remove(version, lock)
  }

  /** The process said it does not hold `version` (FAILED_PRECONDITION): send it again. */
  def reloadModel(version: String, snapshot: => Array[Byte]): Unit = {
    loaded.remove(version)
    ensureModel(version, snapshot)
  }

  /**
   * `call` with `version` in the process: sent first unless `sendFirst` is false (a merge there is about to
   * hold it), and sent again once when the call is refused for the want of it.
   */
  def withModel[T](version: String, snapshot: () => Array[Byte], sendFirst: Boolean = true)(call: => T): T = {
    if (sendFirst) ensureModel(version, snapshot())
    try call catch {
      case e: SidecarCallException if e.code == Status.Code.FAILED_PRECONDITION =>
        reloadModel(version, snapshot())
        call
    }
  }

  def cacheData(messages: Iterator[CacheDataRequest]): CacheDataResponse = clientStream("CacheData", streamStub.cacheData(_), messages)

  /** Opens a Transform stream with its start message; see [[TransformCall]]. */
  def transform(start: TransformRequest): TransformCall = new TransformCall(start)

  /**
   * A bidirectional Transform call: the caller sends batches, reads answers in order (`next`) and ends its
   * side (`complete`). Bound to the task: cancelled when the task completes or is killed, whatever the caller
   * does; a wait for an answer ends when the process dies.
   */
  final class TransformCall private[SidecarClient] (start: TransformRequest) {
    private val answers = new LinkedBlockingQueue[Either[Throwable, Option[TransformResponse]]]()
    private val requests = streamStub.transform(new StreamObserver[TransformResponse] {
      override def onNext(r: TransformResponse): Unit = answers.put(Right(Some(r)))
      override def onError(t: Throwable): Unit = answers.put(Left(t))
      override def onCompleted(): Unit = answers.put(Right(None))
    }).asInstanceOf[ClientCallStreamObserver[TransformRequest]]
    Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => cancel("the task ended")))
    requests.onNext(start)

    def send(r: TransformRequest): Unit = requests.onNext(r)
    def complete(): Unit = requests.onCompleted()
    def cancel(why: String): Unit = try requests.cancel(why, null) catch { case NonFatal(_) => }

    /** The next answer, or None when the sidecar ended the stream. */
    def next(): Option[TransformResponse] = {
      val ctx = TaskContext.get()
      var a: Either[Throwable, Option[TransformResponse]] = null
      var deadSince = 0L
      try {
        while (a == null) {
          a = answers.poll(WaitStepMs, TimeUnit.MILLISECONDS)
          if (a == null) {
            killedCheck(ctx, () => cancel("the task was killed"))
            // A dead process closes the connection and the call fails; the grace covers a close that never comes.
            if (!sidecar.process.isAlive) {
              if (deadSince == 0) deadSince = System.nanoTime()
              else if (System.nanoTime() - deadSince > TimeUnit.SECONDS.toNanos(2)) {
                throw failure("Transform", new SidecarException("the sidecar died while scoring"))
              }
            }
          }
        }
      } catch {
        case e: InterruptedException => cancel("the task was interrupted"); throw e
      }
      a match {
        case Right(r) => r
        case Left(t) => throw failure("Transform", t)
      }
    }
  }

  /** A unary call's answer; its wait bound to the task. */
  private def unary[T](call: String)(start: => com.google.common.util.concurrent.ListenableFuture[T]): T = {
    val f = try start catch { case NonFatal(e) => throw failure(call, e) }
    await(call, f, () => f.cancel(true))
  }

  /**
   * A client-streaming call with HTTP/2 flow control: every message of `messages` is sent (drawn lazily,
   * only when the transport is ready, so neither side holds the whole stream), then the one answer is
   * returned. A failure of `messages` itself (the caller's data) cancels the call and is thrown as it is.
   */
  private def clientStream[Req, Resp](call: String, open: StreamObserver[Resp] => StreamObserver[Req], messages: Iterator[Req]): Resp = {
    val result = new CompletableFuture[Resp]()
    val ready = new Object
    val observer = new ClientResponseObserver[Req, Resp] {
      override def beforeStart(req: ClientCallStreamObserver[Req]): Unit =
        req.setOnReadyHandler(() => ready.synchronized(ready.notifyAll()))
      override def onNext(v: Resp): Unit = result.complete(v)
      override def onError(t: Throwable): Unit = {
        result.completeExceptionally(t)
        ready.synchronized(ready.notifyAll())
      }
      override def onCompleted(): Unit = ()
    }
    val requests = try open(observer).asInstanceOf[ClientCallStreamObserver[Req]] catch { case NonFatal(e) => throw failure(call, e) }
    def cancel(why: String, cause: Throwable = null): Unit = try requests.cancel(why, cause) catch { case NonFatal(_) => }
    val ctx = TaskContext.get()
    try {
      while (!result.isDone && messages.hasNext) {
        ready.synchronized {
          while (!requests.isReady && !result.isDone) {
            ready.wait(WaitStepMs)
            killedCheck(ctx, () => cancel("the task was killed"))
          }
        }
        if (!result.isDone) requests.onNext(messages.next())
      }
      if (!result.isDone) requests.onCompleted()
    } catch {
      case NonFatal(e) =>
        // The caller's data failed (a bad row) or the task was killed: the sidecar must not wait for the rest.
        cancel("the caller failed", e)
        throw e
      case e: InterruptedException =>
        cancel("the task was interrupted")
        throw e
    }
    await(call, result, () => cancel("the task was killed"))
  }

  /** Waits for `f`, checking every WaitStepMs that the task was not killed; a thread interrupt cancels at once. */
  private def await[T](call: String, f: Future[T], cancel: () => Unit): T = {
    val ctx = TaskContext.get()
    try {
      var out: Option[T] = None
      while (out.isEmpty) {
        try out = Some(f.get(WaitStepMs, TimeUnit.MILLISECONDS)) catch {
          case _: TimeoutException => killedCheck(ctx, cancel)
        }
      }
      out.get
    } catch {
      case e: ExecutionException => throw failure(call, e.getCause)
      case e: InterruptedException => cancel(); throw e
    }
  }

  /** Any failure of a call as the one exception type, with the process's state when the process may be why. */
  private def failure(call: String, t: Throwable): SidecarException = t match {
    case e: SidecarCallException => e
    case s: StatusRuntimeException =>
      val st = s.getStatus
      val bad = Option(Status.trailersFromThrowable(s)).flatMap(m => Option(m.get(RowErrorKey)))
        .map(r => BadValue(r.getRow, r.getColumn, r.getReason))
      // The sidecar's own refusals (bad input, data or a version it does not hold) say all; anything else may be the process.
      val state = if (Answers.contains(st.getCode)) "" else s"; ${sidecar.state(settleMs = 500)}${sidecar.stderr.suffix}"
      new SidecarCallException(call, st.getCode, Option(st.getDescription).getOrElse(""), TaskId.current, bad, state)
    case other =>
      new SidecarCallException(call, Status.Code.UNKNOWN, String.valueOf(other.getMessage), TaskId.current, None,
        s"; ${sidecar.state(settleMs = 500)}${sidecar.stderr.suffix}")
  }
}

object SidecarClient {
  /** Codes the sidecar answers on purpose about the request; the process is fine. */
  private val Answers = Set(Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND, Status.Code.FAILED_PRECONDITION)
  /** How often a wait checks that its task was not killed. */
  val WaitStepMs = 100L
  /** The trailer of a Transform call that a bad value ended (proto/sidecar.proto's RowError). */
  val RowErrorKey: io.grpc.Metadata.Key[sparkdbn.proto.RowError] =
    io.grpc.Metadata.Key.of(Contract.RowErrorTrailer, io.grpc.protobuf.ProtoUtils.metadataMarshaller(sparkdbn.proto.RowError.getDefaultInstance))

  /** Throws TaskKilledException, after cancelling the call, when the task was killed (Spark's own readers' check). */
  private def killedCheck(ctx: TaskContext, cancel: () => Unit): Unit =
    if (ctx != null && ctx.isInterrupted()) {
      cancel()
      throw new TaskKilledException("the task was killed while it waited for its sidecar")
    }
}
