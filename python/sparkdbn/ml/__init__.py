"""The PySpark classes of the JVM's `sparkdbn.ml`.

They live under this module path so that PySpark, which maps a JVM stage class to the Python class
of the same name (`sparkdbn.ml.DBNModel` -> `sparkdbn.ml.DBNModel`), finds them when it loads a saved
Pipeline or PipelineModel that holds them. Users import them from `spark_dbn`.
"""
from spark_dbn._ml import DBN, DBNModel

__all__ = ["DBN", "DBNModel"]
