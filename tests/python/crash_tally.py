"""Checks a Sluice logs archive against the records a client saw acknowledged, with DuckDB.

Usage: python crash_tally.py ARCHIVE_ROOT ACKNOWLEDGED_CSV

The crash harness (tests/support/crash.rs) numbers its log records, the number as the body, and
writes the acknowledged numbers as ranges to ACKNOWLEDGED_CSV (`start,stop`, stop excluded). This
reads `ARCHIVE_ROOT/signal=logs/**/*.parquet` with Hive partitioning and prints one JSON object:
archived_rows, lost (acknowledged numbers not archived), duplicated (numbers archived more than
once), duplicate_rows (rows beyond the first of each number), archived_unacknowledged (numbers
archived but never acknowledged) and first_lost (up to ten lost numbers, lowest first).
"""

import json
import os
import sys

import duckdb


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def main():
    root, acknowledged_csv = sys.argv[1], sys.argv[2]
    pattern = os.path.join(root, "signal=logs", "**", "*.parquet")
    connection = duckdb.connect()
    connection.execute(
        f"CREATE TABLE archived AS SELECT CAST(body AS BIGINT) AS number "
        f"FROM read_parquet({literal(pattern)}, hive_partitioning = 1)"
    )
    connection.execute(
        f"CREATE TABLE acknowledged AS SELECT unnest(range(start, stop)) AS number "
        f"FROM read_csv({literal(acknowledged_csv)}, header = true, "
        f"columns = {{'start': 'BIGINT', 'stop': 'BIGINT'}})"
    )
    connection.execute(
        "CREATE TABLE copies AS SELECT number, count(*) AS copies FROM archived GROUP BY number"
    )

    def scalar(sql):
        return int(connection.sql(sql).fetchall()[0][0] or 0)

    lost_numbers = "SELECT number FROM acknowledged a WHERE NOT EXISTS (SELECT 1 FROM copies c WHERE c.number = a.number)"
    out = {
        "archived_rows": scalar("SELECT count(*) FROM archived"),
        "lost": scalar(f"SELECT count(*) FROM ({lost_numbers})"),
        "duplicated": scalar("SELECT count(*) FROM copies WHERE copies > 1"),
        "duplicate_rows": scalar("SELECT sum(copies - 1) FROM copies"),
        "archived_unacknowledged": scalar(
            "SELECT count(*) FROM copies c WHERE NOT EXISTS "
            "(SELECT 1 FROM acknowledged a WHERE a.number = c.number)"
        ),
        "first_lost": [
            int(row[0])
            for row in connection.sql(f"{lost_numbers} ORDER BY number LIMIT 10").fetchall()
        ],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
