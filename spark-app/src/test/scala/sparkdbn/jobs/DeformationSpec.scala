package sparkdbn.jobs

import org.scalatest.funsuite.AnyFunSuite

/** The deformation against closed forms and a naive convolution; its bounds; its determinism. */
class DeformationSpec extends AnyFunSuite {
  private val side = 28
  private val rnd = new scala.util.Random(5)
  private val src = Array.fill(side * side)(rnd.nextFloat())

  test("with every range at zero it is the identity, exactly") {
    val none = Deformation(alpha = 0, rotation = 0, scale = 0, shear = 0, shift = 0)
    for (id <- 0L until 5L) assert(none(src, side, 9, id).sameElements(src))
  }

  test("an integer translation moves every pixel by it, zeros coming in (closed form)") {
    val zero = Array.fill(side * side)(0.0)
    val out = Deformation.Draw(0, 1, 1, 0, 2, -1, zero, zero).applyTo(src, side)
    for (y <- 0 until side; x <- 0 until side) {
      val (sx, sy) = (x - 2, y + 1)
      val want = if (sx < 0 || sy >= side) 0f else src(sy * side + sx)
      assert(math.abs(out(y * side + x) - want) < 1e-6, s"($x, $y)")
    }
  }

  test("a rotation by 90 degrees of a square image about its centre is the transpose flipped (closed form)") {
    val zero = Array.fill(side * side)(0.0)
    val out = Deformation.Draw(math.Pi / 2, 1, 1, 0, 0, 0, zero, zero).applyTo(src, side)
    // Output (x, y) takes source A^-1 (p - c) + c with A = R(90): source (y, side - 1 - x).
    for (y <- 0 until side; x <- 0 until side) assert(math.abs(out(y * side + x) - src((side - 1 - x) * side + y)) < 1e-5)
  }

  test("the smoothing equals a naive 2-D convolution with the normalised Gaussian (to 1e-12)") {
    val f = Array.fill(side * side)(2 * rnd.nextDouble() - 1)
    val sigma = 2.5
    val r = math.ceil(3 * sigma).toInt
    val w = (-r to r).map(t => math.exp(-0.5 * t * t / (sigma * sigma)))
    val norm = w.sum
    val got = Deformation.smooth(f, side, sigma)
    for (y <- 0 until side; x <- 0 until side) {
      var s = 0.0
      for (v <- -r to r; u <- -r to r if x + u >= 0 && x + u < side && y + v >= 0 && y + v < side)
        s += w(u + r) * w(v + r) / (norm * norm) * f((y + v) * side + x + u)
      assert(math.abs(got(y * side + x) - s) < 1e-12)
    }
  }

  test("every draw stays within its stated bounds; the elastic field reaches alpha and is smooth") {
    val d = Deformation()
    var largest = 0.0
    for (id <- 0L until 300L) {
      val g = d.draw(3, id, side)
      assert(math.abs(math.toDegrees(g.angle)) <= d.rotation)
      assert(math.abs(g.sx - 1) <= d.scale && math.abs(g.sy - 1) <= d.scale && math.abs(g.shear) <= d.shear)
      assert(math.abs(g.tx) <= d.shift && math.abs(g.ty) <= d.shift)
      // The field's largest component is alpha (closed form of its scaling); smooth: neighbours differ by little.
      assert(math.abs((g.dx ++ g.dy).map(math.abs).max - d.alpha) < 1e-12)
      for (i <- 0 until side * side - 1 if (i + 1) % side != 0) largest = math.max(largest, math.abs(g.dx(i + 1) - g.dx(i)))
    }
    assert(largest < 0.5 * d.alpha, s"largest step between neighbours $largest")
  }

  test("a row follows from (seed, id) alone: the same twice, another for the next id or seed") {
    val d = Deformation()
    assert(d(src, side, 1, 42).sameElements(d(src, side, 1, 42)))
    assert(!d(src, side, 1, 42).sameElements(d(src, side, 1, 43)))
    assert(!d(src, side, 1, 42).sameElements(d(src, side, 2, 42)))
  }

  test("settings out of range are named with their range") {
    assert(Deformation(scale = -0.1).problem.contains("scale must be in [0, 1), got -0.1"))
    assert(Deformation(sigma = 0).problem.contains("sigma must be in (0, 20] pixels, got 0.0"))
    assert(Deformation(alpha = Double.NaN).problem.exists(_.startsWith("alpha must be")))
    assert(Deformation().problem.isEmpty)
  }
}
