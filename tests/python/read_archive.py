"""Reads a Sluice Parquet archive the way a data team would, and prints what it found as JSON.

Usage: python read_archive.py ARCHIVE_ROOT < queries.json

For each signal directory (`signal=logs`, `signal=metrics`, `signal=traces`) under the root:
- pyarrow: `pyarrow.dataset` with Hive partitioning; row counts per `date`/`hour` partition and
  every row, with timestamps as Unix microseconds, binary as hex and maps as objects;
- DuckDB: `read_parquet('<root>/signal=<s>/**/*.parquet', hive_partitioning = true)`; row counts
  per partition.
Standard input holds `{"queries": {"name": "SQL"}}`: each SQL runs in DuckDB with `{logs}`,
`{metrics}` and `{traces}` replaced by the `read_parquet(...)` of that signal; its rows are printed
under `"queries"`.
"""

import datetime
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds

SIGNALS = ("logs", "metrics", "traces")


def plain(value):
    """A pyarrow Python value as JSON: times as Unix microseconds, bytes as hex, maps as objects."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp without a time zone: {value}")
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def partition_name(date, hour):
    return f"date={date}/hour={int(hour):02d}"


def read_with_pyarrow(directory):
    dataset = ds.dataset(directory, format="parquet", partitioning="hive")
    table = dataset.to_table()
    counts = {}
    for date, hour in zip(table.column("date").to_pylist(), table.column("hour").to_pylist()):
        name = partition_name(date, hour)
        counts[name] = counts.get(name, 0) + 1
    rows = [
        {key: plain(value) for key, value in row.items()}
        for row in table.to_pylist(maps_as_pydicts="strict")
    ]
    schema = {field.name: str(field.type) for field in dataset.schema}
    return counts, rows, schema


def source(root, signal):
    pattern = os.path.join(root, f"signal={signal}", "**", "*.parquet").replace("'", "''")
    return f"read_parquet('{pattern}', hive_partitioning = true)"


def main():
    root = sys.argv[1]
    request = json.load(sys.stdin) if not sys.stdin.isatty() else {}
    out = {"signals": {}, "queries": {}}
    connection = duckdb.connect()
    present = [s for s in SIGNALS if os.path.isdir(os.path.join(root, f"signal={s}"))]
    for signal in present:
        counts, rows, schema = read_with_pyarrow(os.path.join(root, f"signal={signal}"))
        duckdb_counts = {
            partition_name(date, hour): count
            for date, hour, count in connection.sql(
                f"SELECT CAST(date AS VARCHAR), hour, count(*) FROM {source(root, signal)} GROUP BY ALL"
            ).fetchall()
        }
        out["signals"][signal] = {
            "pyarrow_counts": counts,
            "duckdb_counts": duckdb_counts,
            "rows": rows,
            "schema": schema,
        }
    for name, sql in request.get("queries", {}).items():
        for signal in SIGNALS:
            sql = sql.replace("{" + signal + "}", source(root, signal))
        result = connection.sql(sql)
        columns = result.columns
        out["queries"][name] = [
            {column: plain(value) for column, value in zip(columns, row)} for row in result.fetchall()
        ]
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
