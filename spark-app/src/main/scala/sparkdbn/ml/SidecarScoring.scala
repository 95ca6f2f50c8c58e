package sparkdbn.ml

import java.util.concurrent.{LinkedBlockingQueue, TimeUnit}

import scala.collection.mutable
import scala.util.control.NonFatal

import com.google.protobuf.ByteString
import io.grpc.{Status, StatusRuntimeException}
import io.grpc.stub.StreamObserver
import org.apache.spark.TaskContext
import org.apache.spark.sql.catalyst.InternalRow

import sparkdbn.io.{BoundSource, FeatureArrow}
import sparkdbn.proto.{TransformRequest, TransformResponse, TransformStart}
import sparkdbn.sidecar.{Alignment, Sidecar, SidecarException}

/** How a task streams its rows through the sidecar. */
final case class ScoringConf(batchRows: Int, batchBytes: Long, maxInFlight: Int) {
  /** Rows per batch: the row cap, lowered so that a batch stays under the byte cap. */
  def rowsPerBatch(n: Int): Int = math.max(1, math.min(batchRows.toLong, batchBytes / (4L * n)).toInt)
}

/**
 * One task's scoring call: a bidirectional stream with at most `maxInFlight`
 * batches sent ahead of their answers, so neither side holds the partition.
 * Yields (input row, answer, index of the row in the answer) in input order.
 */
final class SidecarScoring(
    sidecar: Sidecar,
    version: String,
    snapshot: () => Array[Byte],
    rows: Iterator[InternalRow],
    source: BoundSource,
    nInputs: Int,
    probabilities: Boolean,
    conf: ScoringConf,
    task: String) extends Iterator[(InternalRow, FeatureArrow.Result, Int)] {

  private val perBatch = conf.rowsPerBatch(nInputs)
  // Sent and not yet answered, oldest first: rows and their encoded batch (kept to replay).
  private val pending = mutable.Queue.empty[(Array[InternalRow], ByteString)]
  private val answers = new LinkedBlockingQueue[Either[Throwable, TransformResponse]]()
  private case object Ended extends Throwable
  private var requests: StreamObserver[TransformRequest] = _
  private var sentEnd = false
  private var replayed = false
  private var rowNumber = 0L
  private var current: (Array[InternalRow], FeatureArrow.Result) = _
  private var pos = 0
  // One batch of input values, refilled for every batch: encode copies it out.
  private lazy val values = new Array[Float](perBatch * nInputs)
  private var encoder: FeatureArrow.Encoder = _

  ensureModel()
  open()

  private def ensureModel(): Unit =
    try sidecar.ensureModel(version, snapshot()) catch {
      case NonFatal(e) => throw fail(e)
    }

  private def open(): Unit = {
    requests = sidecar.asyncStub.transform(new StreamObserver[TransformResponse] {
      override def onNext(r: TransformResponse): Unit = answers.put(Right(r))
      override def onError(t: Throwable): Unit = answers.put(Left(t))
      override def onCompleted(): Unit = answers.put(Left(Ended))
    })
    requests.onNext(TransformRequest.newBuilder().setStart(TransformStart.newBuilder()
      .setModelVersion(version).setTask(task).setProbabilities(probabilities)).build())
    pending.foreach { case (_, bytes) => sendBatch(bytes) }
  }

  private def sendBatch(bytes: ByteString): Unit =
    requests.onNext(TransformRequest.newBuilder().setAlign(Alignment.pad(bytes.size)).setBatch(bytes).build())

  /** Reads up to one batch of input rows, encodes and sends it. */
  private def sendNext(): Unit = {
    val batch = new mutable.ArrayBuffer[InternalRow](perBatch)
    while (batch.length < perBatch && rows.hasNext) {
      val row = rows.next()
      val r = rowNumber
      source.fill(row, values, batch.length * nInputs, nInputs, s"$task: row $r")
      // Spark reuses the row object: keep a copy until its answer arrives.
      batch += row.copy()
      rowNumber += 1
    }
    if (encoder == null) {
      encoder = new FeatureArrow.Encoder(nInputs, labelled = false, perBatch)
      // Its Arrow buffers are off-heap: freed when the task ends, however it ends.
      val e = encoder
      Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => e.close()))
    }
    val bytes = encoder.encode(values, batch.length, null)
    pending.enqueue((batch.toArray, bytes))
    sendBatch(bytes)
  }

  private def fail(e: Throwable): Throwable = e match {
    case s: StatusRuntimeException if s.getStatus.getCode == Status.Code.INVALID_ARGUMENT =>
      // Bad data: the sidecar's message names the row; no need for process state.
      new IllegalArgumentException(s"DBN scoring rejected the input: ${s.getStatus.getDescription}")
    case s: SidecarException => s
    case other => sidecar.explain(other)
  }

  override def hasNext: Boolean = {
    while (current == null || pos >= current._1.length) {
      current = null
      while (pending.size < conf.maxInFlight && rows.hasNext) sendNext()
      if (pending.isEmpty) {
        if (!sentEnd) {
          sentEnd = true
          requests.onCompleted()
        }
        return false
      }
      if (!rows.hasNext && !sentEnd) {
        sentEnd = true
        requests.onCompleted()
      }
      nextAnswer() match {
        case Right(resp) =>
          val (input, _) = pending.dequeue()
          val result = FeatureArrow.decode(resp.getBatch)
          if (result.rows != input.length) {
            throw new SidecarException(s"$task: the sidecar answered ${result.rows} rows for a batch of ${input.length}")
          }
          current = (input, result)
          pos = 0
        case Left(s: StatusRuntimeException) if s.getStatus.getCode == Status.Code.FAILED_PRECONDITION && !replayed =>
          // The sidecar no longer holds the model (evicted, or a new process): send it and replay.
          replayed = true
          sidecar.loadedModels.remove(version)
          ensureModel()
          sentEnd = false
          open()
        case Left(Ended) =>
          throw new SidecarException(s"$task: the sidecar ended the stream with ${pending.size} batches unanswered")
        case Left(t) =>
          throw fail(t)
      }
    }
    true
  }

  /** Waits for the next answer, checking that the process is alive: a dead sidecar never hangs a task. */
  private def nextAnswer(): Either[Throwable, TransformResponse] = {
    var a = answers.poll(1, TimeUnit.SECONDS)
    while (a == null) {
      if (!sidecar.process.isAlive) {
        answers.poll(2, TimeUnit.SECONDS) match {
          case null => throw sidecar.explain(new SidecarException(s"$task: the sidecar died while scoring"))
          case got => return got
        }
      }
      a = answers.poll(1, TimeUnit.SECONDS)
    }
    a
  }

  override def next(): (InternalRow, FeatureArrow.Result, Int) = {
    if (!hasNext) throw new NoSuchElementException
    val r = (current._1(pos), current._2, pos)
    pos += 1
    r
  }
}
