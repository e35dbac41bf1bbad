"""Reads a Sluice Parquet archive with Apache Spark and prints row counts per signal and partition.

Usage: python spark_read_archive.py ARCHIVE_ROOT   (the interpreter needs pyspark and Java 17)

Prints `{"<signal>": {"date=YYYY-MM-DD/hour=HH": rows}}` as JSON, plus under `"checks"` a few
values read through Spark SQL (map lookups, nested lists, timestamps) so a schema Spark reads but
misinterprets shows up too.
"""

import json
import os
import sys

from pyspark.sql import SparkSession


def main():
    root = sys.argv[1]
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = {"checks": {}}
    for signal in ("logs", "metrics", "traces"):
        directory = os.path.join(root, f"signal={signal}")
        if not os.path.isdir(directory):
            continue
        frame = spark.read.parquet(directory)
        frame.createOrReplaceTempView(signal)
        out[signal] = {
            f"date={row['date']}/hour={row['hour']:02d}": row["count"]
            for row in frame.groupBy("date", "hour").count().collect()
        }
    if "logs" in out:
        row = spark.sql(
            "SELECT min(unix_micros(time)) AS first_time, "
            "max(CAST(attributes['index'] AS BIGINT)) AS max_index, "
            "count(DISTINCT hex(trace_id)) AS traces FROM logs"
        ).collect()[0]
        out["checks"]["logs"] = row.asDict()
    if "traces" in out:
        row = spark.sql(
            "SELECT sum(size(events)) AS events, max(get(links, 0).attributes['link.kind']) AS link_kind "
            "FROM traces"
        ).collect()[0]
        out["checks"]["traces"] = row.asDict()
    if "metrics" in out:
        row = spark.sql(
            "SELECT sum(aggregate(bucket_counts, 0L, (acc, x) -> acc + x)) AS bucket_total, "
            "max(get(quantiles, 1).value) AS p99 FROM metrics"
        ).collect()[0]
        out["checks"]["metrics"] = row.asDict()
    spark.stop()
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
