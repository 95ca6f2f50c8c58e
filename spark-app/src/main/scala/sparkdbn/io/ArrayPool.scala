package sparkdbn.io

import java.lang.ref.SoftReference

/**
 * Large arrays that an executor's tasks borrow and give back when they end.
 * A task that allocated its batch buffers itself got memory the JVM had never
 * touched (G1 puts arrays of several MB in free regions): the kernel's clearing
 * of those fresh pages was a fifth of a scoring task's CPU in scripts/bench
 * ingest. Arrays given back are held through soft references, so the collector
 * may still take them when the heap runs short, and only up to `maxBytes`.
 */
final class ArrayPool[A <: AnyRef](make: Int => A, length: A => Int, bytesPerElement: Int, maxBytes: Long) {
  private val free = new java.util.ArrayList[SoftReference[A]]()

  /** An array of at least `min` elements, perhaps used before: its contents are arbitrary. */
  def borrow(min: Int): A = {
    require(min >= 0, s"cannot borrow an array of $min elements")
    synchronized {
      // The smallest array that fits, so that large ones stay for large requests; cleared references go.
      var best = -1
      var bestLength = Int.MaxValue
      var i = free.size - 1
      while (i >= 0) {
        val a = free.get(i).get()
        if (a == null) free.remove(i)
        else {
          val n = length(a)
          if (n >= min && n < bestLength) { best = i; bestLength = n }
        }
        i -= 1
      }
      if (best >= 0) {
        val a = free.remove(best).get()
        if (a != null) return a
      }
    }
    make(ArrayPool.roundUp(min))
  }

  /** Takes `a` back for a later borrower; the caller must not touch it again. */
  def giveBack(a: A): Unit = if (a != null) synchronized {
    var held = length(a).toLong * bytesPerElement
    var i = free.size - 1
    while (i >= 0) {
      val b = free.get(i).get()
      if (b == null) free.remove(i) else held += length(b).toLong * bytesPerElement
      i -= 1
    }
    if (held <= maxBytes) free.add(new SoftReference(a))
  }

  /** Arrays held now (for tests). */
  private[sparkdbn] def held: Int = synchronized {
    free.removeIf(_.get() == null)
    free.size
  }
}

object ArrayPool {
  /** Large requests rounded up to whole MiB, so that batches of slightly different sizes share arrays. */
  private[io] def roundUp(n: Int): Int =
    if (n < (1 << 20)) n else math.min(Int.MaxValue - 16L, (n.toLong + (1 << 20) - 1) >> 20 << 20).toInt

  /** Byte arrays, an eighth of the heap at most: the batches of a few concurrent tasks. */
  lazy val bytes: ArrayPool[Array[Byte]] =
    new ArrayPool[Array[Byte]](new Array[Byte](_), _.length, 1, Runtime.getRuntime.maxMemory / 8)
}
