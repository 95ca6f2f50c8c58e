package sparkdbn.io

import java.io.{ByteArrayInputStream, ByteArrayOutputStream, ObjectInputStream, ObjectOutputStream, ObjectStreamClass}

/**
 * Java serialisation of the JVM's own transient values (the round hub's messages, the checkpoint's rounds
 * list), read back with the application's class loader: under spark-submit the system loader, and the one
 * Spark's RPC threads use, do not see the jar's classes.
 */
object JavaBytes {
  def encode(value: AnyRef): Array[Byte] = {
    val out = new ByteArrayOutputStream()
    val oos = new ObjectOutputStream(out)
    try oos.writeObject(value) finally oos.close()
    out.toByteArray
  }

  def decode[T](bytes: Array[Byte]): T = {
    val loader = getClass.getClassLoader
    val ois = new ObjectInputStream(new ByteArrayInputStream(bytes)) {
      override def resolveClass(d: ObjectStreamClass): Class[_] =
        try Class.forName(d.getName, false, loader) catch { case _: ClassNotFoundException => super.resolveClass(d) }
    }
    try ois.readObject().asInstanceOf[T] finally ois.close()
  }
}
