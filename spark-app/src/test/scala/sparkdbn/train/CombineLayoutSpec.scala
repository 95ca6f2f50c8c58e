package sparkdbn.train

import org.scalatest.funsuite.AnyFunSuite

class CombineLayoutSpec extends AnyFunSuite {
  private val F = ExecutorCombine.FanIn

  test("the executors' leaders form one tree of the least depth: each but the first has one parent that lists it") {
    for (e <- 1 to 3 * F * F; leaders = (0 until e).map(_ * 4 + 1)) {
      val l = CombineLayout(Seq(leaders.head), leaders)
      assert(l.parent(leaders.head).isEmpty)
      for (p <- leaders.tail) {
        val up = l.parent(p).get
        assert(l.children(up).count(_ == p) == 1, s"$e executors: $up should list $p")
      }
      // Every leader is some leader's child exactly once (none combined twice, none left out).
      assert(leaders.flatMap(l.children).sorted == leaders.tail, s"$e executors")
      def depth(p: Int): Int = l.parent(p).fold(0)(depth(_) + 1)
      // As shallow as a tree of fan-in F can be: levels 1, F, F^2, ... filled in order.
      var (levels, reach, width) = (0, 1, 1)
      while (reach < e) { width *= F; reach += width; levels += 1 }
      assert(leaders.map(depth).max == levels, s"$e executors")
      assert(leaders.forall(p => l.children(p).size <= F))
    }
  }

  test("a leader leads its own executor's group only") {
    val l = CombineLayout(Seq(3, 5, 6), IndexedSeq(0, 3, 9))
    assert(l.leads(3) && !l.leads(5) && !l.leads(0))
    assert(l.children(0) == Seq(3, 9) && l.children(3).isEmpty && l.parent(9).contains(0))
  }
}
