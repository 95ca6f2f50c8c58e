package sparkdbn.jobs

import java.io.PrintStream

import sparkdbn.train.{TopicProgress, TrainProgress}

/**
 * Training progress for a person. On a terminal, one line per topic that is rewritten in place after
 * every round (and closed when the topic ends or another line is printed); otherwise (a pipe, a log
 * file) a plain line when `everyMs` have passed since the topic's last one, and its final line.
 */
final class ProgressPrinter(out: PrintStream, terminal: Boolean, prefix: String, everyMs: Long = 5000,
    clockMs: () => Long = () => System.currentTimeMillis()) extends TrainProgress {
  private var open = false
  private val printedAt = scala.collection.mutable.Map.empty[String, Long]

  def line(text: String): Unit = synchronized {
    close()
    out.println(prefix + text)
    out.flush()
  }

  def topic(p: TopicProgress): Unit = synchronized {
    val text = prefix + TrainProgress.render(p)
    if (terminal) {
      // Carriage return, the line, erase what a longer previous line left.
      out.print("\r" + text + "\u001b[K")
      open = true
      if (p.finished) close()
      out.flush()
    } else {
      val now = clockMs()
      if (p.finished || printedAt.get(p.topic).forall(now - _ >= everyMs)) {
        out.println(text)
        out.flush()
        printedAt(p.topic) = now
      }
    }
  }

  private def close(): Unit = if (open) {
    out.println()
    open = false
  }
}

object ProgressPrinter {
  /** For standard output: in place when it is a terminal. */
  def stdout(prefix: String): ProgressPrinter = new ProgressPrinter(System.out, System.console() != null, prefix)
}
