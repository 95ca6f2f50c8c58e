package sparkdbn.io

import org.apache.arrow.memory.{BufferAllocator, RootAllocator}

/** The JVM's one Arrow allocator: every batch's buffers are accounted to it and freed when the batch closes. */
object ArrowMemory {
  lazy val allocator: BufferAllocator = new RootAllocator(Long.MaxValue)
}
