package sparkdbn.jobs

import org.scalatest.funsuite.AnyFunSuite

class ArgsSpec extends AnyFunSuite {
  private val opts = Seq(
    Opt("input", "input path", required = true),
    Opt("rows", "row count", Some("10")),
    Opt("partitions", "partitions", None))

  test("reads given values and falls back to defaults") {
    val a = new Args("cmd", opts, Seq("--input", "/data", "--partitions", "4"))
    assert(a("input") == "/data")
    assert(a.int("rows") == 10)
    assert(a.intOpt("partitions").contains(4))
  }

  test("names unknown, valueless, missing and non-numeric options") {
    def msg(argv: String*) = intercept[UsageException](new Args("cmd", opts, argv).int("rows")).getMessage
    assert(msg("--input", "x", "--nope", "1") == "cmd: unknown option --nope")
    assert(msg("--input") == "cmd: option --input needs a value")
    assert(msg("--rows", "3") == "cmd: missing required --input")
    assert(msg("--input", "x", "--rows", "many") == "cmd: --rows must be an integer, got 'many'")
    assert(msg("--input", "x", "stray") == "cmd: unexpected argument 'stray'")
  }

  test("usage lists every option with its default") {
    val u = Args.usage("cmd", "does things", opts)
    assert(u.contains("--input") && u.contains("(required)"))
    assert(u.contains("--rows") && u.contains("(default: 10)"))
    assert(u.contains("--partitions") && u.contains("(optional)"))
  }
}
