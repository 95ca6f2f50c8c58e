package sparkdbn.cli

import org.scalatest.funsuite.AnyFunSuite

class MainSpec extends AnyFunSuite {
  test("Main: --help exits 0, an unknown command or bad option exits 2 before Spark starts") {
    assert(Main.run(Seq("--help")) == 0)
    assert(Main.run(Seq("transform", "--help")) == 0)
    assert(Main.run(Seq("frobnicate")) == 2)
    assert(Main.run(Seq("transform", "--input", "x")) == 2)
    assert(Main.run(Seq()) == 2)
  }
}
