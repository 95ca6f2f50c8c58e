package sparkdbn.sidecar

import java.io.File

import scala.util.control.NonFatal

import org.apache.spark.{SparkEnv, SparkFiles}
import org.slf4j.LoggerFactory

/**
 * At most one sidecar per executor JVM, started lazily by the first task that
 * needs it and shared by every task after. A sidecar found dead is replaced on
 * the next call, so a retried task gets a fresh one. Stopped when the JVM exits.
 */
object SidecarManager {
  private val log = LoggerFactory.getLogger(getClass)
  private var current: Option[Sidecar] = None
  private var hookInstalled = false

  /** The live sidecar of this executor, starting one if there is none. */
  def get(): Sidecar = synchronized {
    current match {
      case Some(s) if s.isAlive => s
      case other =>
        other.foreach { dead =>
          log.warn(s"sidecar pid ${dead.pid} is gone (exit ${dead.process.exitValue()}); starting a new one")
          try dead.close() catch { case NonFatal(_) => }
        }
        val env = SparkEnv.get
        if (env == null) throw new SidecarException("SidecarManager.get() is for code running inside Spark tasks")
        val s = Sidecar.start(SidecarConf.fromSparkConf(env.conf), new File(SparkFiles.getRootDirectory()), env.executorId)
        installHook()
        current = Some(s)
        s
    }
  }

  /** The live sidecar's client (starting one if there is none): how jobs call it. */
  def client(): SidecarClient = get().client

  /** Stops this executor's sidecar, if any. */
  def stop(): Unit = synchronized {
    current.foreach(s => try s.close() catch { case NonFatal(e) => log.warn(s"stopping sidecar: ${e.getMessage}") })
    current = None
  }

  private def installHook(): Unit = if (!hookInstalled) {
    hookInstalled = true
    sys.addShutdownHook(stop())
  }
}
