package sparkdbn.search

import org.scalatest.funsuite.AnyFunSuite

/** The code distances against naive formulas, and the search's ranking against a full sort. */
class CodesSpec extends AnyFunSuite {
  private val rng = new scala.util.Random(7)
  private def code(n: Int) = Array.fill(n)(rng.nextFloat())

  test("cosine, euclidean and binary codes with hamming equal their closed forms") {
    assert(math.abs(Codes.cosine(Array(1f, 2f, 3f), Array(3f, 2f, 1f)) - 10.0 / 14) < 1e-12)
    assert(Codes.cosine(Array(0f, 0f), Array(1f, 2f)) == 0.0)
    assert(math.abs(Codes.euclidean(Array(1f, 2f, 3f), Array(3f, 2f, 1f)) - math.sqrt(8)) < 1e-12)
    // Bit i of the code at bit i % 8 of byte i / 8; a unit is on at P >= 0.5.
    assert(Codes.binaryCode(Array(0.9f, 0.2f, 0.5f)).toSeq == Seq(5.toByte))
    assert(Codes.binaryCode(Array.tabulate(10)(i => if (i == 9) 1f else 0f)).toSeq == Seq(0.toByte, 2.toByte))
    assert(Codes.hamming(Codes.binaryCode(Array(0.9f, 0.2f, 0.7f)), Codes.binaryCode(Array(0.1f, 0.6f, 0.8f))) == 2)
    val e = intercept[IllegalArgumentException](Codes.cosine(Array(1f), Array(1f, 2f)))
    assert(e.getMessage == "cosine similarity of codes of different lengths: 1 and 2")
  }

  test("a search returns the k nearest by each metric, nearest first, as a full sort of the naive distances does") {
    val base = Array.fill(500)(code(70))
    for (metric <- Codes.Metrics; q <- Seq(code(70), base(17))) {
      val naive: Int => Double = metric match {
        case "cosine" => i => 1 - Codes.cosine(q, base(i))
        case "euclidean" => i => Codes.euclidean(q, base(i))
        case "hamming" => i => Codes.hamming(Codes.binaryCode(q), Codes.binaryCode(base(i))).toDouble
      }
      val want = base.indices.map(i => (i, naive(i))).sortBy(p => (p._2, p._1)).take(7)
      val got = new Codes.Base(metric, base).nearest(q, 7)
      assert(got.map(_._1).toSeq == want.map(_._1), metric)
      got.zip(want).foreach { case ((_, d), (_, w)) => assert(math.abs(d - w) < 1e-5, (metric, d, w)) }
    }
    val one = new Codes.Base("cosine", base).nearest(base(17), 1)
    assert(one.head._1 == 17 && math.abs(one.head._2) < 1e-6)
    assert(intercept[IllegalArgumentException](new Codes.Base("cosine", base).nearest(code(3), 2)).getMessage.contains("search of codes of different lengths: 3 and 70"))
    assert(intercept[IllegalArgumentException](new Codes.Base("l1", base)).getMessage.contains("metric must be one of cosine, euclidean, hamming"))
  }
}
