package sparkdbn.train

import java.io.{ByteArrayInputStream, ByteArrayOutputStream, ObjectInputStream, ObjectOutputStream}
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
    rounds: List[RoundMetrics])

/**
 * A run's checkpoint directory (any Hadoop path): `<topic>-v<n>.avro`, every
 * published snapshot as it is published (the last two of a topic are kept); `rounds.bin`,
 * the metrics so far; `state.json`, which names them and is replaced last and
 * atomically (write, then rename), so a reader never sees half a checkpoint.
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

  def save(st: CheckpointState): Unit = {
    fs.mkdirs(root)
    val file = s"${st.topic}-v${st.number}.avro"
    write(file, st.snapshot)
    val buf = new ByteArrayOutputStream()
    val oos = new ObjectOutputStream(buf)
    oos.writeObject(st.rounds)
    oos.close()
    write("rounds.bin", buf.toByteArray)
    val json = JObject(
      "runId" -> JString(st.runId),
      "fingerprint" -> JString(st.fingerprint),
      "topic" -> JString(st.topic),
      "number" -> JInt(st.number),
      "done" -> JArray(st.done.toList.map(d => JInt(d))),
      "finished" -> JBool(st.finished),
      "snapshot" -> JString(file),
      "rounds" -> JInt(st.rounds.size))
    write("state.json", JsonMethods.compact(JsonMethods.render(json)).getBytes(StandardCharsets.UTF_8))
    fs.delete(new Path(root, s"${st.topic}-v${st.number - 2}.avro"), false)
  }

  /** The saved state, or None when the directory holds no checkpoint. */
  def load(): Option[CheckpointState] = {
    if (!fs.exists(new Path(root, "state.json"))) return None
    implicit val formats: Formats = DefaultFormats
    val j = JsonMethods.parse(new String(read("state.json"), StandardCharsets.UTF_8))
    // The jar's own loader: under spark-submit the system loader does not see the application's classes.
    val loader = getClass.getClassLoader
    val ois = new ObjectInputStream(new ByteArrayInputStream(read("rounds.bin"))) {
      override def resolveClass(d: java.io.ObjectStreamClass): Class[_] =
        try Class.forName(d.getName, false, loader) catch { case _: ClassNotFoundException => super.resolveClass(d) }
    }
    val rounds = try ois.readObject().asInstanceOf[List[RoundMetrics]] finally ois.close()
    Some(CheckpointState(
      (j \ "runId").extract[String],
      (j \ "fingerprint").extract[String],
      (j \ "topic").extract[String],
      (j \ "number").extract[Int],
      (j \ "done").extract[List[Long]].toArray,
      (j \ "finished").extract[Boolean],
      read((j \ "snapshot").extract[String]),
      rounds.take((j \ "rounds").extract[Int])))
  }
}
