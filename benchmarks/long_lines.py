"""A landing file holding one line of 2 GB, loaded by the orders dataset: peak memory against the
same file without that line, each load in a process of its own.

The line is longer than any record may be (``source.max_record_bytes``, 16 MiB by default), so
it becomes one ``RecordTooLarge`` dead letter keeping its first 4 KiB, read past without being
held: the load's peak RSS should not grow with it. Before, lines were read whole: a 1 GB line
took 6.4 GB and failed the partition, a 2.1 GB line 10.7 GB.

    python benchmarks/long_lines.py [--line-mb 2048] [--rows 200000]

Prints one JSON object last: ``peak_rss_mb_long_line``, ``peak_rss_mb_without``,
``rss_long_line_vs_without`` (flat: about 1), ``line_mb``, the rows read, loaded and
dead-lettered in the long-line run, and the dead letter's error class. Files and the embedded
server are deleted afterwards.
"""

import argparse
import json
import tempfile
from pathlib import Path

from ingestion import DAY, empty_tables, measure, write_orders_csv
from support import benchmark_warehouse

from platform_assets.lib.warehouse.resource import Warehouse


def add_long_line(path: Path, line_mb: int) -> None:
    """Insert a line of ``line_mb`` MiB (one unquoted field of ``x``) after the file's 100th."""
    lines = path.read_bytes().split(b"\n")
    with path.open("wb") as file:
        file.write(b"\n".join(lines[:100]) + b"\n")
        block = b"x" * (1 << 20)
        for _ in range(line_mb):
            file.write(block)
        file.write(b"\n" + b"\n".join(lines[100:]))


def long_line_letter(warehouse: Warehouse) -> str:
    """The error class of the long line's dead letter."""
    with warehouse.connection() as conn:
        (found,) = conn.execute(
            "SELECT error_class FROM platform.dead_letter_records"
            " WHERE (error_detail ->> 'line_bytes')::bigint > 1048576"
        ).fetchone()
    return found


def main() -> None:
    """Write both files, load each in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="long-lines-bench-") as scratch:
        plain, long = Path(scratch) / "plain", Path(scratch) / "long"
        name = f"orders_{DAY.isoformat()}.csv"
        write_orders_csv(plain / "orders" / name, args.rows)
        write_orders_csv(long / "orders" / name, args.rows)
        add_long_line(long / "orders" / name, args.line_mb)
        with benchmark_warehouse("long-lines-bench-") as warehouse:
            empty_tables(warehouse)
            without = measure("ours", plain)
            print("without the long line:", without)
            empty_tables(warehouse)
            with_line = measure("ours", long)
            print(f"with a {args.line_mb} MiB line:", with_line)
            letter = long_line_letter(warehouse)
    print(
        json.dumps(
            {
                "line_mb": args.line_mb,
                "rows": args.rows,
                "peak_rss_mb_long_line": with_line["peak_rss_mb"],
                "peak_rss_mb_without": without["peak_rss_mb"],
                "rss_long_line_vs_without": round(
                    with_line["peak_rss_mb"] / without["peak_rss_mb"], 2
                ),
                "seconds_long_line": round(with_line["seconds"], 2),
                "seconds_without": round(without["seconds"], 2),
                "read": with_line["rows_read"],
                "loaded": with_line["rows_loaded"],
                "dead_lettered": with_line["rows_dead_lettered"],
                "long_line_error_class": letter,
            }
        )
    )


if __name__ == "__main__":
    main()
