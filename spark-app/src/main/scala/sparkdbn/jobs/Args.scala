package sparkdbn.jobs

/** One `--name value` option of a subcommand, with its help text and default. */
final case class Opt(name: String, help: String, default: Option[String] = None, required: Boolean = false,
    flag: Boolean = false)

/** Thrown for bad command lines; Main prints the message and the usage. */
final class UsageException(message: String) extends IllegalArgumentException(message)

/** A minimal `--name value` parser that rejects unknown and missing options by name. */
final class Args(command: String, opts: Seq[Opt], argv: Seq[String]) {
  private val known = opts.map(o => o.name -> o).toMap

  val values: Map[String, String] = {
    def loop(rest: List[String], acc: Map[String, String]): Map[String, String] = rest match {
      case Nil => acc
      case flag :: tail if flag.startsWith("--") =>
        val name = flag.stripPrefix("--")
        if (!known.contains(name)) throw new UsageException(s"$command: unknown option --$name")
        tail match {
          case v :: more if !v.startsWith("--") => loop(more, acc + (name -> v))
          // A flag alone means true.
          case more if known(name).flag => loop(more, acc + (name -> "true"))
          case _ => throw new UsageException(s"$command: option --$name needs a value")
        }
      case other :: _ => throw new UsageException(s"$command: unexpected argument '$other'")
    }
    val parsed = loop(argv.toList, Map.empty)
    opts.filter(o => o.required && !parsed.contains(o.name)).map(_.name) match {
      case Seq() => parsed
      case missing => throw new UsageException(s"$command: missing required ${missing.map("--" + _).mkString(", ")}")
    }
  }

  def get(name: String): Option[String] = values.get(name).orElse(known(name).default)
  def apply(name: String): String = get(name).getOrElse(throw new UsageException(s"$command: --$name is not set"))

  def int(name: String): Int = get(name).fold(throw new UsageException(s"$command: --$name is not set")) { v =>
    v.toIntOption.getOrElse(throw new UsageException(s"$command: --$name must be an integer, got '$v'"))
  }
  def intOpt(name: String): Option[Int] = get(name).map(_ => int(name))
  def long(name: String): Long = {
    val v = apply(name)
    v.toLongOption.getOrElse(throw new UsageException(s"$command: --$name must be an integer, got '$v'"))
  }
  def double(name: String): Double = {
    val v = apply(name)
    v.toDoubleOption.filterNot(_.isNaN).getOrElse(throw new UsageException(s"$command: --$name must be a number, got '$v'"))
  }
}

object Args {
  def usage(command: String, summary: String, opts: Seq[Opt]): String = {
    val width = opts.map(_.name.length).maxOption.getOrElse(0) + 4
    val lines = opts.map { o =>
      val d = if (o.required) "(required)" else o.default.fold("(optional)")(v => s"(default: $v)")
      s"  --${o.name.padTo(width, ' ')}${o.help} $d"
    }
    (s"usage: spark-submit --class sparkdbn.cli.Main spark-dbn.jar $command [options]" +: s"  $summary" +: "" +: lines)
      .mkString("\n")
  }
}
