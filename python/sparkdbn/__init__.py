"""Python side of the JVM package `sparkdbn` (see `spark_dbn`, the package users import)."""
