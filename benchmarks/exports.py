"""The dead-letter export's peak memory against the queue's size: 1.05M letters and a tenth of
them, each exported in a process of its own.

The export streams letters from the database into the Parquet writer a batch at a time, so its
peak should not grow with the queue. Before, it read the whole queue first: 1.05M letters took
2.3 GB.

    python benchmarks/exports.py [--letters 1050000]

Prints one JSON object last: ``peak_rss_mb_full``, ``peak_rss_mb_tenth``, ``rss_full_vs_tenth``
(flat: about 1), the seconds of each export and the rows written. The embedded server and the
files are deleted afterwards.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from support import benchmark_warehouse, peak_rss_mb, run_arm

from platform_assets.lib.dead_letters.export import export_dead_letters
from platform_assets.lib.samples.sample_dead_letters import add_sample_letters
from platform_assets.lib.warehouse.resource import Warehouse


def export_arm(asset_key: str, target: Path) -> None:
    """Export ``asset_key``'s letters to ``target`` (child process); print its figures."""
    warehouse = Warehouse()
    started = time.perf_counter()
    rows = export_dead_letters(warehouse, target, asset_key=asset_key)
    seconds = time.perf_counter() - started
    warehouse.close()
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    """Fill the queue, export each part in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1_050_000)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        export_arm(args.arm, args.target)
        return
    with (
        tempfile.TemporaryDirectory(prefix="exports-bench-") as scratch,
        benchmark_warehouse("exports-bench-") as warehouse,
    ):
        add_sample_letters(warehouse, "bench/full", args.letters)
        add_sample_letters(warehouse, "bench/tenth", args.letters // 10)
        tenth = run_arm(__file__, "bench/tenth", Path(scratch) / "tenth.parquet")
        print("a tenth:", tenth)
        full = run_arm(__file__, "bench/full", Path(scratch) / "full.parquet")
        print("all:", full)
    print(
        json.dumps(
            {
                "letters": args.letters,
                "peak_rss_mb_full": full["peak_rss_mb"],
                "peak_rss_mb_tenth": tenth["peak_rss_mb"],
                "rss_full_vs_tenth": round(full["peak_rss_mb"] / tenth["peak_rss_mb"], 2),
                "seconds_full": round(full["seconds"], 2),
                "seconds_tenth": round(tenth["seconds"], 2),
                "rows_full": full["rows"],
            }
        )
    )


if __name__ == "__main__":
    main()
