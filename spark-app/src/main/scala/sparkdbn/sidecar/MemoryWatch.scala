package sparkdbn.sidecar

import java.nio.file.{Files, Path, Paths}

import scala.util.Try

/**
 * The resident memory of a running sidecar, sampled once a second on a daemon thread, and the memory
 * cgroup it runs in: what is left to say when the process dies by a signal, since a container's OOM
 * killer leaves no message of its own (the sidecar just ends with exit code 137).
 */
private[sidecar] final class MemoryWatch(pid: Long, budget: Long, everyMs: Long = 1000) {
  @volatile private var last = 0L
  @volatile private var peak = 0L
  /** The v1 memory controller's or the v2 unified cgroup directory, read while the process is alive. */
  private val cgroup: Option[Path] = MemoryWatch.cgroupDir(pid)
  private val oomAtStart = cgroup.flatMap(MemoryWatch.oomKills)

  private val thread = new Thread(() => {
    try while (true) {
      MemoryWatch.rss(pid) match {
        case Some(b) => last = b; peak = math.max(peak, b)
        case None => throw new InterruptedException() // gone
      }
      Thread.sleep(everyMs)
    } catch { case _: InterruptedException => () }
  }, s"sidecar-$pid-memory")
  thread.setDaemon(true)
  thread.start()

  def lastRssBytes: Long = last
  def peakRssBytes: Long = peak
  def stop(): Unit = thread.interrupt()

  /** Why a process ended by SIGKILL most likely did, in a clause: its last size and the cgroup's OOM kills. */
  def killedClause: String = {
    val mb = (b: Long) => f"${b / 1048576.0}%.0f MB"
    val oom = for (dir <- cgroup; now <- MemoryWatch.oomKills(dir)) yield {
      val during = now - oomAtStart.getOrElse(0L)
      s"; its memory cgroup ${dir.getFileName} counts $during OOM kill${if (during == 1) "" else "s"} since it started" +
        MemoryWatch.limit(dir).fold("")(l => s" (limit ${mb(l)})")
    }
    s"killed by SIGKILL, most likely for memory: resident ${mb(last)} when last seen (peak ${mb(peak)}, budget " +
      s"${SidecarConf.MemoryKey}=${SidecarMemory.mib(budget)})${oom.getOrElse("")}"
  }
}

private[sidecar] object MemoryWatch {
  /** VmRSS of a live process, bytes. */
  def rss(pid: Long): Option[Long] = Try {
    Files.readAllLines(Paths.get(s"/proc/$pid/status")).toArray.map(_.toString).find(_.startsWith("VmRSS:"))
      .map(_.split("\\s+")(1).toLong * 1024)
  }.toOption.flatten

  /** The process's memory cgroup directory: v1 `memory` controller, else the v2 unified hierarchy. */
  def cgroupDir(pid: Long): Option[Path] = Try {
    val lines = Files.readAllLines(Paths.get(s"/proc/$pid/cgroup")).toArray.map(_.toString)
    val v1 = lines.map(_.split(":", 3)).collectFirst { case Array(_, ctl, p) if ctl.split(",").contains("memory") => Paths.get("/sys/fs/cgroup/memory" + p) }
    val v2 = lines.map(_.split(":", 3)).collectFirst { case Array("0", "", p) => Paths.get("/sys/fs/cgroup" + p) }
    v1.filter(Files.isDirectory(_)).orElse(v2.filter(Files.isDirectory(_)))
  }.toOption.flatten

  /** OOM kills counted in a cgroup: v1 memory.oom_control's oom_kill, v2 memory.events' oom_kill. */
  def oomKills(dir: Path): Option[Long] = Seq("memory.oom_control", "memory.events").map(dir.resolve).find(Files.isReadable(_))
    .flatMap(f => Try(Files.readAllLines(f).toArray.map(_.toString).find(_.startsWith("oom_kill ")).map(_.split(" ")(1).toLong)).toOption.flatten)

  /** The cgroup's memory limit, when it has one. */
  def limit(dir: Path): Option[Long] = Seq("memory.limit_in_bytes", "memory.max").map(dir.resolve).find(Files.isReadable(_))
    .flatMap(f => Try(Files.readString(f).trim).toOption).flatMap(_.toLongOption).filter(_ < (1L << 60))
}
