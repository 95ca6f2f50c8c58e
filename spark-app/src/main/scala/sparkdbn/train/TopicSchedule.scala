package sparkdbn.train

/**
 * A topic's mini-batches: each of the P partitions trains `perEpoch` an epoch, `total` in all; `done` counts
 * each one's so far (from a checkpoint when resumed). Also the topic's pace for the progress display.
 */
private[train] final class TopicSchedule(val topic: String, val epochs: Int, val perEpoch: Int, val total: Long,
    val done: Array[Long]) {
  private val P = done.length
  private val startedNanos = System.nanoTime()
  private val doneAtStart = done.sum
  private var samples = 0L

  /** Records a merged round's rows; answers the topic's progress for the display. */
  def report(rows: Long, figure: String): TopicProgress = {
    samples += rows
    val elapsed = (System.nanoTime() - startedNanos) / 1e9
    // ETA from this session's pace (a resumed run's earlier batches took no time here).
    val doneHere = done.sum - doneAtStart
    val remaining = total * P - done.sum
    TopicProgress(topic, minEpoch, epochs, done.sum, total * P, samples / math.max(elapsed, 1e-9), figure, elapsed,
      if (doneHere > 0) elapsed * remaining / doneHere else Double.NaN)
  }

  def remaining(p: Int): Long = total - done(p)
  def epoch(p: Int): Int = (done(p) / perEpoch).toInt
  def minEpoch: Int = (0 until P).map(epoch).min
  def finished: Boolean = (0 until P).forall(p => remaining(p) <= 0)
}
