package sparkdbn.train

/**
 * Where a topic (a layer's pre-training, or fine-tuning) stands after one of its rounds: what a
 * person watching the run wants (how far, how fast, how well, how long still), for a progress display.
 */
final case class TopicProgress(
    topic: String,
    /** Epochs every partition has completed. */
    epoch: Int,
    epochs: Int,
    batchesDone: Long,
    batchesTotal: Long,
    /** Rows trained per second of the topic's wall time so far (rounds, merges and publishing included). */
    samplesPerSecond: Double,
    /** The latest round's quality: reconstruction error (pre-training) or training accuracy (fine-tuning). */
    figure: String,
    elapsedSeconds: Double,
    /** Seconds still to go at this session's pace (NaN when unknown). */
    etaSeconds: Double) {
  def finished: Boolean = batchesDone >= batchesTotal
}

/** The trainer's two kinds of news: a line to print as it is, and a topic's progress after each round. */
trait TrainProgress {
  def line(text: String): Unit
  def topic(p: TopicProgress): Unit
}

object TrainProgress {
  /** Lines to `f`, one per round as well (for logs). */
  def lines(f: String => Unit): TrainProgress = new TrainProgress {
    def line(text: String): Unit = f(text)
    def topic(p: TopicProgress): Unit = f(render(p))
  }

  def render(p: TopicProgress): String = {
    val eta = if (p.finished) f"done in ${clock(p.elapsedSeconds)}" else if (p.etaSeconds.isNaN) "ETA ?" else s"ETA ${clock(p.etaSeconds)}"
    f"${p.topic}: epoch ${math.min(p.epoch + (if (p.finished) 0 else 1), p.epochs)}/${p.epochs} " +
      s"(${percent(p)}%), " + f"${p.samplesPerSecond}%,.0f samples/s, ${p.figure}, $eta"
  }

  /** Share done, rounded down: 100 only when the topic is. */
  private def percent(p: TopicProgress): Long =
    if (p.finished) 100 else math.min(99L, math.floor(100.0 * p.batchesDone / math.max(1L, p.batchesTotal)).toLong)

  /** 75 -> "1:15", 3725 -> "1:02:05". */
  def clock(seconds: Double): String = {
    val s = math.max(0L, math.round(seconds))
    if (s >= 3600) f"${s / 3600}:${s / 60 % 60}%02d:${s % 60}%02d" else f"${s / 60}:${s % 60}%02d"
  }
}
