package sparkdbn.cli

import org.apache.spark.SparkException
import org.scalatest.funsuite.AnyFunSuite

import sparkdbn.sidecar.SidecarException

class FailureSpec extends AnyFunSuite {
  test("a task's own message, not Spark's job-abort wrapping of it") {
    val task = new IllegalArgumentException("DBN training rejected the input: stage 3 partition 1 attempt 0: row 17, column 3: value is NaN")
    val job = new SparkException("Job aborted due to stage failure: Task 1 in stage 3.0 failed 1 times, most recent failure: " +
      s"Lost task 1.0 in stage 3.0 (TID 5) (localhost executor driver): $task\n\tat sparkdbn.train.ReplicaTask$$.run", task)
    assert(Failure.explain(job) == task.getMessage)
    assert(Failure.explain(new java.util.concurrent.ExecutionException(new SidecarException("cannot run the sidecar with spark.dbn.node=/x"))) ==
      "cannot run the sidecar with spark.dbn.node=/x")
  }

  test("an exception whose message needs its name keeps it; a wrapper without a cause still says what it knows") {
    assert(Failure.explain(new NumberFormatException("For input string: \"abc\"")) == "For input string: \"abc\" (NumberFormatException)")
    assert(Failure.explain(new SparkException("Job 3 cancelled")) == "Job 3 cancelled (SparkException)")
    assert(Failure.explain(new RuntimeException(null, null)) == "java.lang.RuntimeException (RuntimeException)")
  }
}
