package sparkdbn.cli

import scala.annotation.tailrec

import sparkdbn.jobs.UsageException

/** What went wrong, in the words of the exception that knows, not of the layers that wrapped it. */
object Failure {
  /** Wrappers that add nothing a user can act on: Spark's job abort, futures, reflection. */
  private def wrapper(t: Throwable): Boolean = t match {
    case _: org.apache.spark.SparkException | _: java.util.concurrent.ExecutionException |
        _: java.lang.reflect.InvocationTargetException | _: java.lang.reflect.UndeclaredThrowableException => true
    case _ => false
  }

  /**
   * The message of the first exception in the cause chain that is not a wrapper (a task's own
   * exception travels as the cause of Spark's "Job aborted due to stage failure"); its class is
   * named when it is not one whose message says it all.
   */
  def explain(e: Throwable): String = {
    @tailrec def chain(t: Throwable, acc: List[Throwable]): List[Throwable] =
      if (t == null || acc.contains(t) || acc.size > 20) acc.reverse else chain(t.getCause, t :: acc)
    val all = chain(e, Nil)
    val t = all.find(x => !wrapper(x) && Option(x.getMessage).exists(_.trim.nonEmpty)).getOrElse(all.last)
    val msg = Option(t.getMessage).map(_.trim).filter(_.nonEmpty)
      .map(m => m.linesIterator.takeWhile(l => !l.trim.startsWith("at ")).mkString("\n").trim)
      .getOrElse(t.getClass.getName)
    t match {
      // Says nothing of what was being parsed: the class name at least says it was a number.
      case _: NumberFormatException => s"$msg (NumberFormatException)"
      case _: IllegalArgumentException | _: UsageException | _: sparkdbn.sidecar.SidecarException => msg
      case other if other.getClass.getName.startsWith("sparkdbn.") => msg
      case other => s"$msg (${other.getClass.getSimpleName})"
    }
  }
}
