"""Lines no record can be, and files cut short: set aside with what can be kept, never loaded
changed, never held whole in memory."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from platform_assets.lib.samples.sample_orders import ORDER_COLUMNS
from platform_assets.lib.sources.csv_records import KEPT_BYTES, RecordLimits
from platform_assets.lib.sources.landing_readers import stream_csv
from platform_assets_tests.sources.test_readers import GOOD, HEADER, rows_and_refs

HUGE_LINE_BYTES = 256 << 20


@pytest.mark.parametrize("block_bytes", [256, 1 << 20])  # the line across blocks, or in one
def test_a_line_longer_than_a_record_may_be_is_set_aside_with_its_first_bytes(
    tmp_path: Path, block_bytes: int
) -> None:
    path = tmp_path / "orders.csv"
    huge = GOOD.replace("4", "x" * 10_000, 1)
    path.write_text("\n".join([HEADER, GOOD, huge, GOOD]) + "\n")
    limits = RecordLimits(max_record_bytes=1_024)

    batches = list(stream_csv(path, ORDER_COLUMNS, block_bytes=block_bytes, limits=limits))

    rows, refs = rows_and_refs(batches)
    assert refs == ["orders.csv:2", "orders.csv:4"] and len(rows) == 2
    (letter,) = [u for batch in batches for u in batch.unreadable]
    assert (letter.source_ref, letter.error_class) == ("orders.csv:3", "RecordTooLarge")
    assert letter.payload == {"line": huge[:KEPT_BYTES]}
    assert letter.detail == {"line_bytes": len(huge) + 1, "kept_bytes": KEPT_BYTES}
    assert "source.max_record_bytes: 1024" in letter.message


def test_a_line_of_hundreds_of_megabytes_is_read_past_in_flat_memory(tmp_path: Path) -> None:
    """In a process of its own, the peak memory grows by far less than the line's length."""
    path = tmp_path / "orders.csv"
    with path.open("wb") as file:
        file.write(f"{HEADER}\n{GOOD}\n".encode())
        for _ in range(HUGE_LINE_BYTES >> 20):
            file.write(b"y" * (1 << 20))
        file.write(f"\n{GOOD}\n".encode())
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        from platform_assets.lib.samples.sample_orders import ORDER_COLUMNS
        from platform_assets.lib.sources.landing_readers import stream_csv
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        letters, rows = [], 0
        for batch in stream_csv(Path({str(path)!r}), ORDER_COLUMNS):
            rows += batch.rows.num_rows
            letters += [(u.error_class, u.detail) for u in batch.unreadable]
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({{"rows": rows, "letters": letters, "grown_mib": grown_kib / 1024}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["rows"] == 2
    line_bytes = HUGE_LINE_BYTES + 1
    assert measured["letters"] == [
        ["RecordTooLarge", {"line_bytes": line_bytes, "kept_bytes": KEPT_BYTES}]
    ]
    assert measured["grown_mib"] < 128, measured  # a line held whole would add 256 MiB at least


def test_a_last_line_cut_short_is_set_aside_not_loaded_with_a_changed_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.csv"
    last = GOOD.replace("9", "10.00")
    cut = last[: last.index("10.00") + 1]  # the file ends in the middle of "10.00": "1"
    path.write_text("\n".join([HEADER, GOOD, GOOD, cut]))

    batches = list(stream_csv(path, ORDER_COLUMNS))

    assert rows_and_refs(batches)[1] == ["orders.csv:2", "orders.csv:3"]
    (letter,) = [u for batch in batches for u in batch.unreadable]
    assert (letter.source_ref, letter.error_class) == ("orders.csv:4", "PossiblyTruncated")
    assert letter.payload == {"line": cut}
    assert "unterminated_last_line" in letter.message

    declared_normal = list(stream_csv(path, ORDER_COLUMNS, unterminated_last_line="load"))
    rows, refs = rows_and_refs(declared_normal)
    assert refs == ["orders.csv:2", "orders.csv:3", "orders.csv:4"] and rows[-1]["discount"] == "1"
