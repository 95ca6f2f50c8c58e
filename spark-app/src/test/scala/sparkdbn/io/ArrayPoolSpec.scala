package sparkdbn.io

import org.scalatest.funsuite.AnyFunSuite

class ArrayPoolSpec extends AnyFunSuite {
  private def pool(maxBytes: Long) = new ArrayPool[Array[Byte]](new Array[Byte](_), _.length, 1, maxBytes)

  test("borrow gives an array at least as large as asked, large ones rounded up to whole MiB") {
    val p = pool(1L << 30)
    assert(p.borrow(10).length == 10)
    assert(p.borrow(3 << 20).length == (3 << 20))
    assert(p.borrow((3 << 20) + 1).length == (4 << 20))
    intercept[IllegalArgumentException](p.borrow(-1))
  }

  test("an array given back is lent again, the smallest that fits first") {
    val p = pool(1L << 30)
    val small = p.borrow(1 << 20)
    val large = p.borrow(8 << 20)
    p.giveBack(large)
    p.giveBack(small)
    assert(p.held == 2)
    assert(p.borrow(1000) eq small)
    assert(p.borrow(2 << 20) eq large)
    assert(p.held == 0)
    // Nothing that fits: a new array.
    p.giveBack(small)
    val fresh = p.borrow(2 << 20)
    assert(!(fresh eq small) && p.held == 1)
  }

  test("holds at most maxBytes; null is ignored") {
    val p = pool(3L << 20)
    p.giveBack(new Array[Byte](2 << 20))
    p.giveBack(new Array[Byte](2 << 20)) // 4 MiB in all: over the limit, dropped
    p.giveBack(new Array[Byte](1 << 20))
    p.giveBack(null)
    assert(p.held == 2)
  }
}
