package sparkdbn.search

/**
 * Codes in the network's code space and distances between them: the one definition used by the
 * SQL functions (sparkdbn.sql) and the `search` command. A code is the top layer's P(h|v) of a row;
 * its binary code (Salakhutdinov & Hinton's semantic hashing) sets bit i when P(h_i = 1 | v) >= 1/2,
 * packed eight to a byte, bit i of the code at bit (i % 8) of byte i / 8.
 */
object Codes {
  /** Distances the `search` command ranks by. */
  val Metrics: Seq[String] = Seq("cosine", "euclidean", "hamming")

  /** The bit of a unit in the binary code. */
  @inline def on(p: Float): Boolean = p >= 0.5f

  def binaryCode(p: Array[Float]): Array[Byte] = {
    val out = new Array[Byte]((p.length + 7) / 8)
    var i = 0
    while (i < p.length) {
      if (on(p(i))) out(i >> 3) = (out(i >> 3) | (1 << (i & 7))).toByte
      i += 1
    }
    out
  }

  private def sameLength(what: String, a: Int, b: Int): Unit =
    if (a != b) throw new IllegalArgumentException(s"$what of codes of different lengths: $a and $b")

  /** Bits that differ between two binary codes of the same length. */
  def hamming(a: Array[Byte], b: Array[Byte]): Int = {
    sameLength("hamming distance", a.length, b.length)
    var d = 0
    var i = 0
    while (i < a.length) { d += Integer.bitCount((a(i) ^ b(i)) & 0xff); i += 1 }
    d
  }

  /** a.b / (|a| |b|); 0 when either is all zeros (no direction to compare). */
  def cosine(a: Array[Float], b: Array[Float]): Double = {
    sameLength("cosine similarity", a.length, b.length)
    var (ab, aa, bb) = (0.0, 0.0, 0.0)
    var i = 0
    while (i < a.length) { ab += a(i) * b(i); aa += a(i) * a(i); bb += b(i) * b(i); i += 1 }
    if (aa == 0 || bb == 0) 0.0 else ab / math.sqrt(aa * bb)
  }

  def euclidean(a: Array[Float], b: Array[Float]): Double = {
    sameLength("euclidean distance", a.length, b.length)
    var s = 0.0
    var i = 0
    while (i < a.length) { val d = a(i).toDouble - b(i); s += d * d; i += 1 }
    math.sqrt(s)
  }

  /**
   * The base side of a search: n codes of width w, kept as the metric needs them (unit vectors for
   * cosine, raw for euclidean, packed bits for hamming), so each query costs one pass over them.
   */
  final class Base(val metric: String, codes: Array[Array[Float]]) extends Serializable {
    require(Metrics.contains(metric), s"metric must be one of ${Metrics.mkString(", ")}, got '$metric'")
    val size: Int = codes.length
    val width: Int = if (codes.isEmpty) 0 else codes.head.length
    codes.zipWithIndex.find(_._1.length != width).foreach { case (c, i) =>
      throw new IllegalArgumentException(s"base row $i has a code of ${c.length} values, the others $width")
    }
    private val flat: Array[Float] = if (metric == "hamming") null else {
      val f = new Array[Float](size * width)
      codes.zipWithIndex.foreach { case (c, i) =>
        val scale = if (metric == "cosine") { val n = math.sqrt(c.map(x => x.toDouble * x).sum); if (n == 0) 0.0 else 1 / n } else 1.0
        var j = 0
        while (j < width) { f(i * width + j) = (c(j) * scale).toFloat; j += 1 }
      }
      f
    }
    private val bits: Array[Long] = if (metric != "hamming") null else {
      val words = (width + 63) / 64
      val b = new Array[Long](size * words)
      codes.zipWithIndex.foreach { case (c, i) =>
        var j = 0
        while (j < width) { if (on(c(j))) b(i * words + (j >> 6)) |= 1L << (j & 63); j += 1 }
      }
      b
    }

    /**
     * The k nearest base rows to the query code as (base index, distance), nearest first; ties by index.
     * Distances: 1 - cosine similarity, euclidean, or hamming (as the functions above define them).
     */
    def nearest(q: Array[Float], k: Int): Array[(Int, Double)] = {
      sameLength("search", q.length, width)
      // A max-heap of the k best so far, by (distance, index).
      val heap = new java.util.PriorityQueue[(Int, Double)](k + 1, (a: (Int, Double), b: (Int, Double)) =>
        if (a._2 != b._2) java.lang.Double.compare(b._2, a._2) else Integer.compare(b._1, a._1))
      val dist = distances(q)
      var i = 0
      while (i < size) {
        val d = dist(i)
        if (heap.size < k) heap.add((i, d))
        else {
          val worst = heap.peek()
          if (d < worst._2 || (d == worst._2 && i < worst._1)) { heap.poll(); heap.add((i, d)) }
        }
        i += 1
      }
      heap.toArray(new Array[(Int, Double)](0)).sortBy(p => (p._2, p._1))
    }

    private def distances(q: Array[Float]): Array[Double] = {
      val out = new Array[Double](size)
      metric match {
        case "cosine" =>
          val qn = math.sqrt(q.map(x => x.toDouble * x).sum)
          val inv = if (qn == 0) 0.0 else 1 / qn
          var i = 0
          while (i < size) {
            var s = 0f
            var j = 0
            val o = i * width
            while (j < width) { s += q(j) * flat(o + j); j += 1 }
            out(i) = 1 - s * inv
            i += 1
          }
        case "euclidean" =>
          var i = 0
          while (i < size) {
            var s = 0.0
            var j = 0
            val o = i * width
            while (j < width) { val d = q(j) - flat(o + j); s += d * d; j += 1 }
            out(i) = math.sqrt(s)
            i += 1
          }
        case "hamming" =>
          val words = (width + 63) / 64
          val qb = new Array[Long](words)
          var j = 0
          while (j < width) { if (on(q(j))) qb(j >> 6) |= 1L << (j & 63); j += 1 }
          var i = 0
          while (i < size) {
            var d = 0
            var w = 0
            while (w < words) { d += java.lang.Long.bitCount(qb(w) ^ bits(i * words + w)); w += 1 }
            out(i) = d
            i += 1
          }
      }
      out
    }
  }
}
