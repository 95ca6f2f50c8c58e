package sparkdbn.ml

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Paths}

import org.scalatest.funsuite.AnyFunSuite

class PythonApiSpec extends AnyFunSuite {
  private val module = Paths.get("..", "python", "spark_dbn", "_params.py")

  test("python/spark_dbn/_params.py is the JVM's params rendered (scripts/gen-python-api writes it)") {
    val want = PythonApi.render(new DBN())
    if (sys.env.get("SPARK_DBN_WRITE_PYTHON_API").contains("1")) Files.write(module, want.getBytes(UTF_8))
    val have = if (Files.exists(module)) new String(Files.readAllBytes(module), UTF_8) else ""
    assert(have == want, s"$module differs from the JVM's params (a param added, changed or removed): run scripts/gen-python-api")
  }

  test("values as Python literals: floats as Python's repr writes them, strings escaped, arrays as lists") {
    assert(Seq(0.05, 1e-4, 2e-5, 1e16, 500.0, -0.5, 0.0, 1.5e-7).map(PythonApi.literal) ==
      Seq("0.05", "0.0001", "2e-05", "1e+16", "500.0", "-0.5", "0.0", "1.5e-07"))
    assert(PythonApi.literal("a \"b\" \\ c") == "\"a \\\"b\\\" \\\\ c\"")
    assert(PythonApi.literal(Array(500, 500)) == "[500, 500]")
    assert(PythonApi.literal(true) == "True" && PythonApi.literal(7L) == "7")
  }
}
