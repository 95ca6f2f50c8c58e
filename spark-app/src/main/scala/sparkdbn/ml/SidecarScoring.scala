package sparkdbn.ml

import scala.collection.mutable

import com.google.protobuf.ByteString
import io.grpc.Status
import org.apache.spark.TaskContext
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType
import org.apache.spark.unsafe.Platform

import sparkdbn.io.{ArrayPool, BoundSource, FeatureArrow, InputRowException, ResultArrow, RowKey}
import sparkdbn.proto.{TransformRequest, TransformStart}
import sparkdbn.sidecar.{Alignment, SidecarCallException, SidecarClient, SidecarException}

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
    client: SidecarClient,
    version: String,
    snapshot: () => Array[Byte],
    rows: Iterator[InternalRow],
    schema: StructType,
    source: BoundSource,
    nInputs: Int,
    probabilities: Boolean,
    scores: Boolean,
    conf: ScoringConf,
    task: String,
    /** The input partition the rows are of: a bad row is named by it and its row there (InputLocation). */
    partition: Int,
    /** Names a bad row by the user's id column too, when one is given. */
    rowKey: Option[RowKey] = None) extends Iterator[(InternalRow, ResultArrow.Result, Int)] {

  private val perBatch = conf.rowsPerBatch(nInputs)
  // Sent and not yet answered, oldest first: rows and their encoded batch (kept to replay).
  private val pending = mutable.Queue.empty[(Array[InternalRow], ByteString)]
  private var call: client.TransformCall = _
  private var sentEnd = false
  private var replayed = false
  private var rowNumber = 0L
  private var current: (Array[InternalRow], ResultArrow.Result) = _
  private var pos = 0
  // Rows' values are written once (fillAt): into the message itself for a full batch (`layout`),
  // else into the encoder's Arrow buffer.
  private var encoder: FeatureArrow.Encoder = _
  private var layout: Option[FeatureArrow.FullBatchLayout] = None
  private var messageBytes = 0
  // Batch b's rows live in arenas(b % arenas.length) until handed on: up to maxInFlight batches
  // pending, the current one, and the one before it (its last row may still be in the consumer's
  // hands). Its message lives in messages(b % maxInFlight) until answered (gRPC is done with it then,
  // and only pending batches are replayed). So a task allocates them once, not per batch.
  // Both come from the executor's ArrayPool and go back when the task ends.
  private var arenas: Array[RowArena] = _
  private var messages: Array[Array[Byte]] = _
  private var batchNumber = 0L

  try client.ensureModel(version, snapshot()) catch { case e: SidecarException => throw fail(e) }
  open()

  /** A Transform call (bound to the task by the client) with the batches still awaiting answers sent again. */
  private def open(): Unit = {
    call = client.transform(TransformRequest.newBuilder().setStart(TransformStart.newBuilder()
      .setModelVersion(version).setTask(task).setProbabilities(probabilities).setScores(scores)).build())
    pending.foreach { case (_, bytes) => sendBatch(bytes) }
  }

  private def sendBatch(bytes: ByteString): Unit =
    call.send(TransformRequest.newBuilder().setAlign(Alignment.pad(bytes.size)).setBatch(bytes).build())

  /** Reads up to one batch of input rows, encodes and sends it. */
  private def sendNext(): Unit = {
    if (encoder == null) allocate()
    val b = batchNumber
    batchNumber += 1
    val batch = arenas((b % arenas.length).toInt)
    batch.clear()
    val m = (b % messages.length).toInt
    if (messages(m) == null) messages(m) = ArrayPool.bytes.borrow(messageBytes)
    val message = messages(m)
    // Values go where a full batch has them in its message, else into the encoder's Arrow buffer.
    val (base, at): (AnyRef, Long) = layout match {
      case Some(l) => (message, Platform.BYTE_ARRAY_OFFSET + l.valuesOffset.toLong)
      case None => (null, encoder.valuesAddress)
    }
    while (batch.size < perBatch && rows.hasNext) {
      val row = rows.next()
      val r = rowNumber
      // batch.size < perBatch, the encoder's row count: room for the row's nInputs floats.
      try source.fillAt(row, base, at + batch.size * nInputs * 4L, nInputs, s"$task: row $r")
      catch { case e: InputRowException => throw e.at(partition, r).keyedBy(rowKey, row) }
      // Spark reuses the row object: keep a copy until its answer arrives.
      batch.add(row)
      rowNumber += 1
    }
    val encoded = layout match {
      case Some(l) if batch.size == perBatch => l.finishFull(message)
      case Some(_) =>
        // A task's last, short batch: its Arrow layout differs; through the encoder's buffer.
        Platform.copyMemory(message, at, null, encoder.valuesAddress, batch.size * nInputs * 4L)
        encoder.encodeFilled(batch.size, null, message)
      case None => encoder.encodeFilled(batch.size, null, message)
    }
    val bytes = encoded.bytes
    pending.enqueue((batch.rows, bytes))
    sendBatch(bytes)
  }

  /** The task's encoder and buffers, released when the task ends, however it ends. */
  private def allocate(): Unit = {
    encoder = new FeatureArrow.Encoder(nInputs, labelled = false, perBatch)
    layout = encoder.fullBatchLayout
    messageBytes = math.max(encoder.capacityFor(perBatch), layout.map(_.length.toLong).getOrElse(0L)).toInt
    arenas = Array.fill(conf.maxInFlight + 2)(new RowArena(schema, perBatch))
    messages = new Array[Array[Byte]](conf.maxInFlight)
    val (e, a, ms) = (encoder, arenas, messages)
    Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit] { _ =>
      e.close() // off-heap Arrow buffers
      a.foreach(_.release())
      ms.foreach(ArrayPool.bytes.giveBack)
    })
  }

  /** Bad input as the user's error, naming the value as the user knows it (InputLocation: the file's row); anything else as it is. */
  private def fail(e: SidecarException): Throwable = e match {
    case c: SidecarCallException if c.isBadInput => c.badValue match {
      case Some(bad) =>
        val e = InputRowException(s"DBN scoring rejected the input: $task: row ${bad.row}",
          s"${source.valueName(bad.column)}: ${bad.reason}").at(partition, bad.row)
        pendingRow(bad.row).fold(e)(e.keyedBy(rowKey, _))
      case None => new IllegalArgumentException(s"DBN scoring rejected the input: ${c.description}")
    }
    case other => other
  }

  /** Row `r` of the partition if it is in a batch still awaiting its answer (a bad one is: its answer is the error). */
  private def pendingRow(r: Long): Option[InternalRow] = {
    var first = rowNumber - pending.iterator.map(_._1.length.toLong).sum // the oldest pending batch's first row
    pending.iterator.map(_._1).find { rows =>
      val hit = r >= first && r < first + rows.length
      if (!hit) first += rows.length
      hit
    }.map(rows => rows((r - first).toInt))
  }

  override def hasNext: Boolean = {
    while (current == null || pos >= current._1.length) {
      current = null
      while (pending.size < conf.maxInFlight && rows.hasNext) sendNext()
      if (pending.isEmpty) {
        if (!sentEnd) {
          sentEnd = true
          call.complete()
        }
        return false
      }
      if (!rows.hasNext && !sentEnd) {
        sentEnd = true
        call.complete()
      }
      // Left: the sidecar no longer holds the model (evicted, or a new process), once a call.
      val answer = try Right(call.next()) catch {
        case e: SidecarCallException if e.code == Status.Code.FAILED_PRECONDITION && !replayed => Left(e)
        case e: SidecarException => throw fail(e)
      }
      answer match {
        case Right(Some(resp)) =>
          val (input, _) = pending.dequeue()
          val result = ResultArrow.decode(resp.getBatch)
          if (result.rows != input.length) {
            throw new SidecarException(s"$task: the sidecar answered ${result.rows} rows for a batch of ${input.length}")
          }
          current = (input, result)
          pos = 0
        case Left(_) =>
          // Send the model and replay the batches awaiting answers.
          replayed = true
          try client.reloadModel(version, snapshot()) catch { case e: SidecarException => throw fail(e) }
          sentEnd = false
          open()
        case Right(None) =>
          throw new SidecarException(s"$task: the sidecar ended the stream with ${pending.size} batches unanswered")
      }
    }
    true
  }

  override def next(): (InternalRow, ResultArrow.Result, Int) = {
    if (!hasNext) throw new NoSuchElementException
    val r = (current._1(pos), current._2, pos)
    pos += 1
    r
  }
}
