package sparkdbn.sql

import org.apache.hadoop.hive.ql.exec.UDFArgumentException
import org.apache.hadoop.hive.ql.udf.generic.GenericUDF
import org.apache.hadoop.hive.ql.udf.generic.GenericUDF.DeferredObject
import org.apache.hadoop.hive.serde2.objectinspector.{ListObjectInspector, ObjectInspector, PrimitiveObjectInspector}
import org.apache.hadoop.hive.serde2.objectinspector.primitive.{BinaryObjectInspector, PrimitiveObjectInspectorFactory, PrimitiveObjectInspectorUtils}
import org.apache.hadoop.hive.serde2.objectinspector.PrimitiveObjectInspector.PrimitiveCategory

import sparkdbn.search.Codes

/**
 * SQL functions over codes, as Hive UDFs so that the catalog keeps them (`CREATE FUNCTION ... USING JAR`,
 * found by every later session; README "Image search"). The arithmetic is sparkdbn.search.Codes'.
 *   dbn_cosine(a, b)        cosine similarity of two codes (array of numbers), double
 *   dbn_euclidean(a, b)     euclidean distance of two codes, double
 *   dbn_binary_code(a)      a code's binary code (bit i: a[i] >= 0.5), binary
 *   dbn_hamming(a, b)       bits that differ between two binary codes, int
 * NULL in, NULL out; codes of different lengths and elements that are NULL fail, saying so.
 */
abstract class CodeFunction(name: String, arity: Int) extends GenericUDF {
  protected def check(args: Array[ObjectInspector]): Unit =
    if (args.length != arity) throw new UDFArgumentException(s"$name takes $arity argument${if (arity > 1) "s" else ""}, got ${args.length}")

  protected def numbers(args: Array[ObjectInspector], i: Int): ListObjectInspector = args(i) match {
    case l: ListObjectInspector if (l.getListElementObjectInspector match {
        case p: PrimitiveObjectInspector => PrimitiveObjectInspectorUtils.getPrimitiveGrouping(p.getPrimitiveCategory) ==
          PrimitiveObjectInspectorUtils.PrimitiveGrouping.NUMERIC_GROUP
        case _ => false
      }) => l
    case other => throw new UDFArgumentException(s"$name: argument ${i + 1} must be an array of numbers (a code), got ${other.getTypeName}")
  }

  protected def binary(args: Array[ObjectInspector], i: Int): BinaryObjectInspector = args(i) match {
    case b: BinaryObjectInspector if b.getPrimitiveCategory == PrimitiveCategory.BINARY => b
    case other => throw new UDFArgumentException(s"$name: argument ${i + 1} must be binary (a binary code from dbn_binary_code), got ${other.getTypeName}")
  }

  /** The code in `o` as floats, or null for NULL. */
  protected def code(l: ListObjectInspector, o: AnyRef): Array[Float] = if (o == null) null else {
    val n = l.getListLength(o)
    val e = l.getListElementObjectInspector.asInstanceOf[PrimitiveObjectInspector]
    Array.tabulate(n) { j =>
      val x = l.getListElement(o, j)
      if (x == null) throw new IllegalArgumentException(s"$name: element $j of a code is NULL")
      PrimitiveObjectInspectorUtils.getDouble(x, e).toFloat
    }
  }

  override def getDisplayString(children: Array[String]): String = s"$name(${children.mkString(", ")})"
}

/** Two codes in, a double out. */
abstract class PairFunction(name: String, f: (Array[Float], Array[Float]) => Double) extends CodeFunction(name, 2) {
  @transient private var a: ListObjectInspector = _
  @transient private var b: ListObjectInspector = _

  override def initialize(args: Array[ObjectInspector]): ObjectInspector = {
    check(args)
    a = numbers(args, 0)
    b = numbers(args, 1)
    PrimitiveObjectInspectorFactory.javaDoubleObjectInspector
  }

  override def evaluate(args: Array[DeferredObject]): AnyRef = {
    val (x, y) = (code(a, args(0).get()), code(b, args(1).get()))
    if (x == null || y == null) null else java.lang.Double.valueOf(f(x, y))
  }
}

class CosineSimilarity extends PairFunction("dbn_cosine", Codes.cosine)

class EuclideanDistance extends PairFunction("dbn_euclidean", Codes.euclidean)

class BinaryCode extends CodeFunction("dbn_binary_code", 1) {
  @transient private var a: ListObjectInspector = _

  override def initialize(args: Array[ObjectInspector]): ObjectInspector = {
    check(args)
    a = numbers(args, 0)
    PrimitiveObjectInspectorFactory.javaByteArrayObjectInspector
  }

  override def evaluate(args: Array[DeferredObject]): AnyRef = {
    val x = code(a, args(0).get())
    if (x == null) null else Codes.binaryCode(x)
  }
}

class HammingDistance extends CodeFunction("dbn_hamming", 2) {
  @transient private var a: BinaryObjectInspector = _
  @transient private var b: BinaryObjectInspector = _

  override def initialize(args: Array[ObjectInspector]): ObjectInspector = {
    check(args)
    a = binary(args, 0)
    b = binary(args, 1)
    PrimitiveObjectInspectorFactory.javaIntObjectInspector
  }

  override def evaluate(args: Array[DeferredObject]): AnyRef = {
    val (x, y) = (args(0).get(), args(1).get())
    if (x == null || y == null) null
    else Integer.valueOf(Codes.hamming(a.getPrimitiveJavaObject(x), b.getPrimitiveJavaObject(y)))
  }
}

object CodeFunctions {
  /** SQL name -> class, for `CREATE FUNCTION name AS 'class' USING JAR 'spark-dbn.jar'` (the `sql-functions` command). */
  val all: Seq[(String, String)] = Seq(
    "dbn_cosine" -> classOf[CosineSimilarity].getName,
    "dbn_euclidean" -> classOf[EuclideanDistance].getName,
    "dbn_binary_code" -> classOf[BinaryCode].getName,
    "dbn_hamming" -> classOf[HammingDistance].getName)
}
