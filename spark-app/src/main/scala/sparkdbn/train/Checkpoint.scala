package sparkdbn.train

import java.nio.charset.StandardCharsets

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileSystem, Path}
import org.json4s._
import org.json4s.jackson.JsonMethods

/** Where a run stands: the latest published version of its current topic, and each partition's progress in it. */
final case class CheckpointState(
    runId: String,
    fingerprint: String,
    topic: String,
    number: Int,
    /** Mini-batches each partition has contributed to the topic. */
    done: Array[Long],
    /** The topic is complete: a resumed run goes on with the next. */
    finished: Boolean,
    snapshot: Array[Byte],
    /** The topic's block momentum (float32 little-endian, as the engine answered it); empty: none. */
    momentum: Array[Byte],
    rounds: List[RoundMetrics])

/**
 * A run's checkpoint directory (any Hadoop path): `<topic>-v<n>.avro`, every
 * published snapshot as it is published (the last two of a topic are kept);
 * `<topic>-v<n>.momentum`, the block momentum merged with that version (BMUF);
 * `rounds-<k>.bin`, the metrics from round k on, one file per save holding only
 * the rounds added since the previous one (merged into `rounds-0.bin` now and
 * then), so a save costs the same late in a run as early; `state.json`, which
 * names them and is replaced last and atomically (write, then rename), so a
 * reader never sees half a checkpoint.
 */
final class Checkpoint(dir: String, hadoop: Configuration) {
  private val root = new Path(dir)
  private val fs: FileSystem = root.getFileSystem(hadoop)

  private def write(name: String, bytes: Array[Byte]): Unit = {
    val tmp = new Path(root, s".$name.tmp")
    val out = fs.create(tmp, true)
    try out.write(bytes) finally out.close()
    val dst = new Path(root, name)
    if (fs.exists(dst)) fs.delete(dst, false)
    if (!fs.rename(tmp, dst)) throw new java.io.IOException(s"cannot rename $tmp to $dst")
  }

  private def read(name: String): Array[Byte] = {
    val in = fs.open(new Path(root, name))
    try in.readAllBytes() finally in.close()
  }

  /** Rounds already in rounds-*.bin files. */
  private var savedRounds = 0
  private var roundFiles = 0

  private def writeRounds(from: Int, rounds: List[RoundMetrics]): Unit = {
    write(s"rounds-$from.bin", sparkdbn.io.JavaBytes.encode(rounds))
  }

  def save(st: CheckpointState): Unit = {
    fs.mkdirs(root)
    val file = s"${st.topic}-v${st.number}.avro"
    write(file, st.snapshot)
    val momentumFile = if (st.momentum.isEmpty) "" else s"${st.topic}-v${st.number}.momentum"
    if (momentumFile.nonEmpty) write(momentumFile, st.momentum)
    val compact = roundFiles >= 64
    if (compact) writeRounds(0, st.rounds)
    else if (st.rounds.size > savedRounds) {
      writeRounds(savedRounds, st.rounds.drop(savedRounds))
      roundFiles += 1
    }
    savedRounds = st.rounds.size
    val json = JObject(
      "runId" -> JString(st.runId),
      "fingerprint" -> JString(st.fingerprint),
      "topic" -> JString(st.topic),
      "number" -> JInt(st.number),
      "done" -> JArray(st.done.toList.map(d => JInt(d))),
      "finished" -> JBool(st.finished),
      "snapshot" -> JString(file),
      "momentum" -> JString(momentumFile),
      "rounds" -> JInt(st.rounds.size))
    write("state.json", JsonMethods.compact(JsonMethods.render(json)).getBytes(StandardCharsets.UTF_8))
    fs.delete(new Path(root, s"${st.topic}-v${st.number - 2}.avro"), false)
    fs.delete(new Path(root, s"${st.topic}-v${st.number - 2}.momentum"), false)
    if (compact) {
      roundFileStarts.filter(_ > 0).foreach(k => fs.delete(new Path(root, s"rounds-$k.bin"), false))
      roundFiles = 0
    }
  }

  private def roundFileStarts: Seq[Int] =
    Option(fs.listStatus(root)).toSeq.flatten.map(_.getPath.getName).collect {
      case Checkpoint.RoundsFile(k) => k.toInt
    }.sorted

  /** The saved state, or None when the directory holds no checkpoint. */
  def load(): Option[CheckpointState] = {
    if (!fs.exists(new Path(root, "state.json"))) return None
    implicit val formats: Formats = DefaultFormats
    val j = JsonMethods.parse(new String(read("state.json"), StandardCharsets.UTF_8))
    def readRounds(name: String): List[RoundMetrics] = sparkdbn.io.JavaBytes.decode[List[RoundMetrics]](read(name))
    // Files may overlap (a merge into rounds-0 whose clean-up did not finish): keep each round once.
    val rounds = roundFileStarts.foldLeft(Vector.empty[RoundMetrics]) { (acc, k) =>
      if (k > acc.size) acc else acc ++ readRounds(s"rounds-$k.bin").drop(acc.size - k)
    }
    val count = (j \ "rounds").extract[Int]
    savedRounds = count
    roundFiles = roundFileStarts.size
    Some(CheckpointState(
      (j \ "runId").extract[String],
      (j \ "fingerprint").extract[String],
      (j \ "topic").extract[String],
      (j \ "number").extract[Int],
      (j \ "done").extract[List[Long]].toArray,
      (j \ "finished").extract[Boolean],
      read((j \ "snapshot").extract[String]),
      (j \ "momentum").extractOpt[String].filter(_.nonEmpty).map(read).getOrElse(Array.emptyByteArray),
      rounds.take(count).toList))
  }
}

object Checkpoint {
  private val RoundsFile = """rounds-(\d+)\.bin""".r
}
