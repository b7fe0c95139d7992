"""ENGINE=spark: the same dbt project and pipeline on Apache Spark.

The input is still checked and read by the DuckDB ingest; Spark receives it as Parquet,
dbt-spark builds the same models, Spark MLlib fits the segments, and the small marts come
back into the DuckDB warehouse the report reads. Everything runs in one Python process
(one Spark session shared by dbt and the fits): the embedded metastore admits one
process at a time, and the JVM starts once.
"""
