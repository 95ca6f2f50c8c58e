package sparkdbn.train

import scala.collection.mutable

import org.apache.spark.SparkContext
import org.apache.spark.broadcast.Broadcast

/**
 * One published model version: immutable, numbered within its topic, carried
 * to the executors as a Spark broadcast of the Avro snapshot. `version` is the
 * id sidecars cache it by: the channel's own id, the topic and the number.
 */
final case class Publication(topic: String, number: Int, version: String, snapshot: Broadcast[Array[Byte]],
    publishedAtMs: Long) {
  override def toString: String = s"$topic@$number"
}

/**
 * Publish/subscribe over Spark broadcast, on the driver. A topic (one per
 * layer being pre-trained, one for fine-tuning) is a sequence of numbered
 * versions; `publish` makes version n+1 the latest; a subscriber (a job
 * being submitted) takes the latest and holds it until its task has run.
 *
 * Old versions' broadcasts are destroyed, so a long run does not leak: of a
 * topic, the latest two stay alive, plus any older one a running job still
 * holds (a queued task must still be able to fetch its version); such a
 * version is destroyed when the last holder lets go.
 */
final class ModelChannel(sc: SparkContext) {
  /**
   * Names this channel's versions apart from every other's in the application (sidecars outlive a fit:
   * another fit, or one with the same run id, must never find this one's version 3 in a cache). An id
   * by construction, not a content hash: hashing the snapshot cost 1-3 ms a version (1.6 MB, SHA-256).
   */
  val id: String = java.util.UUID.randomUUID().toString

  private final class Entry(val pub: Publication) {
    var holders = 0
    var destroyed = false
  }

  private val topics = mutable.LinkedHashMap.empty[String, mutable.ArrayBuffer[Entry]]
  private var destroyedCount = 0

  /** The version id the next `publish` of `topic` will give (for a sidecar asked to hold the model first). */
  def upcoming(topic: String): String = synchronized(versionId(topic, nextNumber(topic)))

  private def nextNumber(topic: String): Int = topics.get(topic).flatMap(_.lastOption).map(_.pub.number + 1).getOrElse(0)
  private def versionId(topic: String, number: Int): String = s"$id/$topic@$number"

  /** Publishes `snapshot` as the next version of `topic` (or as `number` when resuming). */
  def publish(topic: String, snapshot: Array[Byte], number: Option[Int] = None): Publication = synchronized {
    val entries = topics.getOrElseUpdate(topic, mutable.ArrayBuffer.empty)
    val next = number.getOrElse(nextNumber(topic))
    require(entries.isEmpty || next > entries.last.pub.number, s"$topic: version $next is not after ${entries.last.pub.number}")
    val pub = Publication(topic, next, versionId(topic, next), sc.broadcast(snapshot), System.currentTimeMillis())
    entries += new Entry(pub)
    collect(topic)
    pub
  }

  /** The latest version of a topic, held for the caller until `release`. */
  def subscribe(topic: String): Publication = synchronized {
    val e = topics.get(topic).flatMap(_.lastOption).getOrElse(throw new NoSuchElementException(s"nothing published on $topic"))
    e.holders += 1
    e.pub
  }

  def release(pub: Publication): Unit = synchronized {
    topics.get(pub.topic).flatMap(_.find(_.pub eq pub)).foreach { e =>
      e.holders = math.max(0, e.holders - 1)
    }
    collect(pub.topic)
  }

  def latest(topic: String): Option[Publication] = synchronized(topics.get(topic).flatMap(_.lastOption).map(_.pub))

  /** Versions of a topic whose broadcast is alive. */
  def alive(topic: String): Seq[Int] = synchronized(topics.get(topic).toSeq.flatten.filterNot(_.destroyed).map(_.pub.number))

  /** Broadcasts destroyed so far, all topics. */
  def destroyed: Int = synchronized(destroyedCount)

  /** Destroys every old version nobody holds (keeps the last two of the topic). */
  private def collect(topic: String): Unit = {
    val entries = topics(topic)
    val old = entries.dropRight(2)
    old.foreach { e =>
      if (!e.destroyed && e.holders == 0) {
        e.pub.snapshot.destroy()
        e.destroyed = true
        destroyedCount += 1
      }
    }
    // Forget entries that are gone, so the list stays short.
    entries.filterInPlace(e => !e.destroyed)
  }

  /** Destroys every broadcast of every topic (end of run). */
  def close(): Unit = synchronized {
    topics.values.flatten.filterNot(_.destroyed).foreach { e =>
      e.pub.snapshot.destroy()
      e.destroyed = true
      destroyedCount += 1
    }
    topics.clear()
  }
}
