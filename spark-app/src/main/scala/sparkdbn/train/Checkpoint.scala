package sparkdbn.train

import java.nio.charset.StandardCharsets

import scala.jdk.CollectionConverters._

import org.apache.avro.file.{DataFileStream, DataFileWriter}
import org.apache.avro.specific.{SpecificDatumReader, SpecificDatumWriter}
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileSystem, Path}
import org.json4s._
import org.json4s.jackson.JsonMethods
import sparkdbn.avro.CheckpointRound

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
 * `<topic>-v<n>.momentum`, the block momentum merged with that version (BMUF,
 * float32 little-endian); `rounds-<k>.avro`, the metrics from round k on (an Avro
 * container of proto/checkpoint.avsc's CheckpointRound), one file per save holding
 * only the rounds added since the previous one (merged into `rounds-0.avro` now
 * and then), so a save costs the same late in a run as early; `state.json`, which
 * names them, says the format's version (Checkpoint.FormatVersion) and is replaced
 * last and atomically (write, then rename), so a reader never sees half a
 * checkpoint. Every file is one any Avro or JSON tool reads; none depends on the
 * JVM classes that wrote it (format 1 kept the rounds as Java-serialised objects).
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

  /** Rounds already in rounds-*.avro files. */
  private var savedRounds = 0
  private var roundFiles = 0

  private def writeRounds(from: Int, rounds: List[RoundMetrics]): Unit = {
    val bytes = new java.io.ByteArrayOutputStream()
    val out = new DataFileWriter(new SpecificDatumWriter(classOf[CheckpointRound])).create(CheckpointRound.getClassSchema, bytes)
    try rounds.foreach(r => out.append(Checkpoint.toRecord(r))) finally out.close()
    write(s"rounds-$from.avro", bytes.toByteArray)
  }

  private def readRounds(name: String): Vector[RoundMetrics] = {
    val in = new DataFileStream(new java.io.ByteArrayInputStream(read(name)), new SpecificDatumReader(classOf[CheckpointRound]))
    try in.iterator().asScala.map(Checkpoint.fromRecord).toVector finally in.close()
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
      "formatVersion" -> JInt(Checkpoint.FormatVersion),
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
      roundFileStarts.filter(_ > 0).foreach(k => fs.delete(new Path(root, s"rounds-$k.avro"), false))
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
    // A format this build does not know is refused before anything is read as if it were this one.
    val format = (j \ "formatVersion").extractOpt[Int].getOrElse(1)
    if (format != Checkpoint.FormatVersion) {
      throw new IllegalStateException(s"checkpoint $dir: format $format, but this spark-dbn reads format " +
        s"${Checkpoint.FormatVersion} only" + (if (format < Checkpoint.FormatVersion) " (it was written by an older spark-dbn)" else "") +
        ": resume it with the spark-dbn that wrote it, or start the run again with another checkpointDir")
    }
    // Files may overlap (a merge into rounds-0 whose clean-up did not finish): keep each round once.
    val rounds = roundFileStarts.foldLeft(Vector.empty[RoundMetrics]) { (acc, k) =>
      if (k > acc.size) acc else acc ++ readRounds(s"rounds-$k.avro").drop(acc.size - k)
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
  /** The layout above; format 1, of earlier builds, kept the rounds as Java-serialised RoundMetrics and no version in state.json. */
  val FormatVersion = 2

  private val RoundsFile = """rounds-(\d+)\.avro""".r

  private def toRecord(r: RoundMetrics): CheckpointRound = CheckpointRound.newBuilder()
    .setRunId(r.runId).setTopic(r.topic).setLayer(r.layer).setRound(r.round).setVersion(r.version).setBaseVersion(r.baseVersion)
    .setPartition(r.partition).setStaleness(r.staleness).setStatus(r.status).setEpoch(r.epoch).setSamples(r.samples)
    .setBatches(r.batches).setReconstructionError(r.reconstructionError).setFreeEnergy(r.freeEnergy)
    .setHeldOutFreeEnergy(r.heldOutFreeEnergy).setLoss(r.loss).setAccuracy(r.accuracy).setTrainSeconds(r.trainSeconds)
    .setTaskSeconds(r.taskSeconds).setRoundSeconds(r.roundSeconds).setMergeSeconds(r.mergeSeconds)
    .setPublishSeconds(r.publishSeconds).setExecutor(r.executor).setWarm(r.warm).setResent(r.resent)
    .setTimestampMs(r.timestampMs).setUpdateBytes(r.updateBytes).setUpdatesCombined(r.updatesCombined).build()

  private def fromRecord(c: CheckpointRound): RoundMetrics = RoundMetrics(c.getRunId, c.getTopic, c.getLayer, c.getRound,
    c.getVersion, c.getBaseVersion, c.getPartition, c.getStaleness, c.getStatus, c.getEpoch, c.getSamples, c.getBatches,
    c.getReconstructionError, c.getFreeEnergy, c.getHeldOutFreeEnergy, c.getLoss, c.getAccuracy, c.getTrainSeconds,
    c.getTaskSeconds, c.getRoundSeconds, c.getMergeSeconds, c.getPublishSeconds, c.getExecutor, c.getWarm, c.getResent,
    c.getTimestampMs, c.getUpdateBytes, c.getUpdatesCombined)
}
