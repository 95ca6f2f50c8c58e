"""spark-dbn for PySpark: deep belief networks trained data-parallel over Apache Spark.

    from spark_dbn import DBN, DBNModel
    spark = spark_dbn.session()                     # or any session started with spark_dbn.jar_path() in spark.jars
    model = DBN(layers=[500, 500], labelCol="label", epochs=5).fit(train)
    model.transform(test)                            # dbn_features, probability, prediction

The estimator and the model wrap the Scala `sparkdbn.ml.DBN` and `sparkdbn.ml.DBNModel`: their params,
documentation, defaults and types are generated from the JVM's (spark_dbn/_params.py), and errors raised
there arrive as PySpark exceptions with the JVM's message.
"""
from spark_dbn._jar import jar_path, runtime_path, session
from spark_dbn._ml import DBN, DBNError, DBNModel
from spark_dbn._version import __version__

__all__ = ["DBN", "DBNError", "DBNModel", "jar_path", "runtime_path", "session", "__version__"]
