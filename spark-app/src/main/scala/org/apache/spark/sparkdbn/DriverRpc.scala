package org.apache.spark.sparkdbn

import scala.concurrent.duration._
import scala.reflect.ClassTag

import org.apache.spark.{SparkContext, SparkEnv}
import org.apache.spark.rpc.{RpcCallContext, RpcEnv, RpcTimeout, ThreadSafeRpcEndpoint}
import org.apache.spark.util.RpcUtils

/**
 * One of the project's two uses of Spark internals (ExecutorBlocks is the other): an endpoint on the driver's
 * own RpcEnv that running tasks ask, as Spark's BarrierCoordinator is asked by BarrierTaskContext. Why not a
 * server of our own: Spark's RPC already reaches the driver from every executor (spark.driver.host/port), with
 * Spark's authentication and encryption when the user turned them on, and no second port to open or secret
 * to hand out.
 *
 * Payloads are opaque bytes, serialised by the caller (sparkdbn.io.JavaBytes): Spark's RPC threads resolve
 * classes with Spark's loader, which under spark-submit does not see the application's jar.
 */
object DriverRpc {
  /** Answers one request: `reply` with the answer's bytes, or `fail`. Either may be called later, from any thread. */
  trait Reply {
    def apply(answer: Array[Byte]): Unit
    def fail(e: Throwable): Unit
  }

  /** Serves `handle` under `name` on the driver until the returned function is called. */
  def serve(sc: SparkContext, name: String)(handle: (Array[Byte], Reply) => Unit): () => Unit = {
    val env = sc.env.rpcEnv
    val ref = env.setupEndpoint(name, new ThreadSafeRpcEndpoint {
      override val rpcEnv: RpcEnv = env
      override def receiveAndReply(context: RpcCallContext): PartialFunction[Any, Unit] = {
        case bytes: Array[Byte] =>
          handle(bytes, new Reply {
            def apply(answer: Array[Byte]): Unit = context.reply(answer)
            def fail(e: Throwable): Unit = context.sendFailure(e)
          })
      }
    })
    () => env.stop(ref)
  }

  /**
   * A client of the endpoint `name` on the driver, for a task: a blocking ask whose wait a killed task's
   * interrupt ends. `waitFor` bounds one answer (an answer may wait for every other replica's round).
   */
  def connect(name: String, waitFor: FiniteDuration): Array[Byte] => Array[Byte] = {
    val env = SparkEnv.get
    val ref = RpcUtils.makeDriverRef(name, env.conf, env.rpcEnv)
    val timeout = new RpcTimeout(waitFor, "spark.dbn (driver round hub)")
    (request: Array[Byte]) => ref.askSync[Array[Byte]](request, timeout)(ClassTag(classOf[Array[Byte]]))
  }
}
