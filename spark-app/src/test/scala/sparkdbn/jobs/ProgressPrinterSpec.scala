package sparkdbn.jobs

import java.io.{ByteArrayOutputStream, PrintStream}

import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.train.{TopicProgress, TrainProgress}

class ProgressPrinterSpec extends AnyFunSuite {
  private def at(done: Long, seconds: Double) =
    TopicProgress("layer0", epoch = (done / 10).toInt, epochs = 4, batchesDone = done, batchesTotal = 40,
      samplesPerSecond = 1234.5, figure = "reconstruction error 5.123", elapsedSeconds = seconds,
      etaSeconds = if (done == 0) Double.NaN else seconds * (40 - done) / done)

  test("a line says epoch x/y, share done, samples/s, the figure and the ETA (or the total time when done)") {
    assert(TrainProgress.render(at(15, 30)) ==
      "layer0: epoch 2/4 (37%), 1,235 samples/s, reconstruction error 5.123, ETA 0:50")
    assert(TrainProgress.render(at(399, 30).copy(batchesTotal = 400)).contains("(99%)"), "100% only when done")
    assert(TrainProgress.render(at(40, 75)) == "layer0: epoch 4/4 (100%), 1,235 samples/s, reconstruction error 5.123, done in 1:15")
    assert(TrainProgress.clock(3725) == "1:02:05")
  }

  test("not a terminal: a plain line when 5 s have passed since the topic's last one, and always its last") {
    val bytes = new ByteArrayOutputStream()
    var now = 0L
    val p = new ProgressPrinter(new PrintStream(bytes, true, "UTF-8"), terminal = false, "train: ", 5000, () => now)
    for (done <- 1L to 40L) {
      now = done * 350 // a round every 0.35 s: 14 s in all
      p.topic(at(done, now / 1000.0))
    }
    val lines = bytes.toString("UTF-8").split("\n").toSeq
    // The first round, then 5 s later (done 16 at 5.6 s), 31 (10.85 s), and the last (3.15 s after that one).
    assert(lines.map(_.replaceAll(".*\\((\\d+)%\\).*", "$1")) == Seq("2", "40", "77", "100"), lines)
    assert(lines.forall(l => l.startsWith("train: layer0: epoch ") && !l.contains("\r")), lines)
  }

  test("a terminal: one line rewritten in place, closed when the topic ends or another line is printed") {
    val bytes = new ByteArrayOutputStream()
    val p = new ProgressPrinter(new PrintStream(bytes, true, "UTF-8"), terminal = true, "train: ")
    p.topic(at(1, 1))
    p.topic(at(2, 2))
    p.line("layer0 partition 1: rejected")
    p.topic(at(40, 40))
    assert(bytes.toString("UTF-8").endsWith("done in 0:40\u001b[K\n"), "the topic's last line is closed at once")
    p.line("layer1: 4 epochs")
    val out = bytes.toString("UTF-8")
    assert(out.split("\n").length == 4, out)
    assert(out.startsWith("\rtrain: layer0: epoch 1/4 (2%)"))
    assert(out.contains("\u001b[K\rtrain: layer0: epoch 1/4 (5%)"), out)
    assert(out.contains("\u001b[K\ntrain: layer0 partition 1: rejected\n\rtrain: layer0: epoch 4/4 (100%)"), out)
    assert(out.endsWith("done in 0:40\u001b[K\ntrain: layer1: 4 epochs\n"), out)
  }
}
