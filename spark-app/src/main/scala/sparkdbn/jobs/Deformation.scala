package sparkdbn.jobs

import java.util.SplittableRandom

/**
 * Deformed digits in the manner of infinite MNIST (Loosli, Canu & Bottou 2007): a small random affine
 * map about the image's centre, then an elastic distortion (Simard, Steinkraus & Platt 2003): a random
 * displacement field, each component uniform in [-1, 1] a pixel, smoothed by a Gaussian of `sigma`
 * pixels and scaled so that its largest component is `alpha`; the source sampled bilinearly at each
 * displaced point (0 outside).
 * Everything about one output row follows from (seed, row id): the same row whatever the partitioning.
 * The defaults are mild, so that the data stays MNIST's distribution: a 1-NN of 10,000 original digits
 * recognises 92.2% of 500 others and 84.6% of their deformations (DeformJobSpec).
 *
 * @param alpha     elastic scale, pixels: the largest displacement in x or in y
 * @param sigma     smoothing of the displacement field, pixels (> 0)
 * @param rotation  largest rotation, degrees
 * @param scale     largest relative change of size (0.1: 0.9x to 1.1x, each axis)
 * @param shear     largest shear factor
 * @param shift     largest translation, pixels, each axis
 */
final case class Deformation(alpha: Double = 1.5, sigma: Double = 4.0, rotation: Double = 8.0, scale: Double = 0.08,
    shear: Double = 0.1, shift: Double = 1.0) {
  import Deformation._

  /** The first setting out of range, as "name must be ..., got v", or None. */
  def problem: Option[String] = Seq(
    ("alpha", alpha, alpha >= 0 && alpha <= 20, "in [0, 20] pixels"),
    ("sigma", sigma, sigma > 0 && sigma <= 20, "in (0, 20] pixels"),
    ("rotation", rotation, rotation >= 0 && rotation <= 90, "in [0, 90] degrees"),
    ("scale", scale, scale >= 0 && scale < 1, "in [0, 1)"),
    ("shear", shear, shear >= 0 && shear <= 1, "in [0, 1]"),
    ("shift", shift, shift >= 0 && shift <= 10, "in [0, 10] pixels")
  ).collectFirst { case (n, v, ok, range) if !ok || v.isNaN => s"$n must be $range, got $v" }

  /** The draws for one row: its affine map and its smoothed displacement field, from (seed, id) alone. */
  def draw(seed: Long, id: Long, side: Int): Draw = {
    val rnd = new SplittableRandom(mix(seed, id))
    def sym(r: Double) = (2 * rnd.nextDouble() - 1) * r
    val angle = math.toRadians(sym(rotation))
    val (sx, sy, sh, tx, ty) = (1 + sym(scale), 1 + sym(scale), sym(shear), sym(shift), sym(shift))
    val n = side * side
    val dx = smooth(Array.fill(n)(2 * rnd.nextDouble() - 1), side, sigma)
    val dy = smooth(Array.fill(n)(2 * rnd.nextDouble() - 1), side, sigma)
    // Smoothing shrinks the field (by ~1/(2 sigma sqrt(3 pi)) in deviation): scaled so that its largest
    // component is alpha, alpha says how far the digit bends whatever sigma is.
    val k = alpha / math.max(1e-12, (dx.iterator ++ dy.iterator).map(math.abs).max)
    Draw(angle, sx, sy, sh, tx, ty, dx.map(_ * k), dy.map(_ * k))
  }

  /** Row `id`'s deformation of `src` (side x side, row-major, values in [0, 1]). */
  def apply(src: Array[Float], side: Int, seed: Long, id: Long): Array[Float] = draw(seed, id, side).applyTo(src, side)
}

object Deformation {
  /**
   * @param dx, dy the elastic displacement at each output pixel (row-major), pixels
   */
  final case class Draw(angle: Double, sx: Double, sy: Double, shear: Double, tx: Double, ty: Double,
      dx: Array[Double], dy: Array[Double]) {
    /**
     * Output pixel (x, y) takes the source at A^-1 ((x, y) + d(x, y) - c - t) + c, c the centre: the affine
     * map A = R(angle) [sx shear; 0 sy] moves the digit, then the field bends it.
     */
    def applyTo(src: Array[Float], side: Int): Array[Float] = {
      val c = (side - 1) / 2.0
      val (cos, sin) = (math.cos(angle), math.sin(angle))
      // A = R S, S = [sx shear; 0 sy]; A^-1 = S^-1 R^T.
      val (a, b, cc, d) = (sx * cos - 0 * sin, shear * cos - sy * sin, sx * sin, shear * sin + sy * cos)
      val det = a * d - b * cc
      val out = new Array[Float](side * side)
      var y = 0
      while (y < side) {
        var x = 0
        while (x < side) {
          val i = y * side + x
          val px = x + dx(i) - c - tx
          val py = y + dy(i) - c - ty
          val u = (d * px - b * py) / det + c
          val v = (-cc * px + a * py) / det + c
          out(i) = bilinear(src, side, u, v)
          x += 1
        }
        y += 1
      }
      out
    }
  }

  /** src at (u, v) (column, row), bilinearly; 0 outside the image. */
  private def bilinear(src: Array[Float], side: Int, u: Double, v: Double): Float = {
    val x0 = math.floor(u).toInt
    val y0 = math.floor(v).toInt
    val (fx, fy) = (u - x0, v - y0)
    def at(x: Int, y: Int): Double = if (x < 0 || y < 0 || x >= side || y >= side) 0.0 else src(y * side + x)
    val top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
    val bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
    (top * (1 - fy) + bottom * fy).toFloat
  }

  /** A field (side x side) convolved with a normalised Gaussian of sigma, separably, zero beyond the edges. */
  def smooth(f: Array[Double], side: Int, sigma: Double): Array[Double] = {
    val r = math.ceil(3 * sigma).toInt
    val k = Array.tabulate(2 * r + 1)(i => math.exp(-0.5 * (i - r) * (i - r) / (sigma * sigma)))
    val ks = k.sum
    for (i <- k.indices) k(i) /= ks
    def pass(in: Array[Double], horizontal: Boolean): Array[Double] = Array.tabulate(side * side) { i =>
      val (y, x) = (i / side, i % side)
      var s = 0.0
      var t = -r
      while (t <= r) {
        val (xx, yy) = if (horizontal) (x + t, y) else (x, y + t)
        if (xx >= 0 && yy >= 0 && xx < side && yy < side) s += k(t + r) * in(yy * side + xx)
        t += 1
      }
      s
    }
    pass(pass(f, horizontal = true), horizontal = false)
  }

  /** One stream per (seed, id): SplitMix64's finaliser over both, so neighbouring ids are unrelated. */
  def mix(seed: Long, id: Long): Long = {
    var z = seed * 0x9E3779B97F4A7C15L + id
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL
    z ^ (z >>> 31)
  }
}
