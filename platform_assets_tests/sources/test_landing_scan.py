"""The landing scan judges files by content and waits for them to stop growing."""

import os
from pathlib import Path

from platform_assets.lib.sources.landing_scan import LandingScan, key_matcher, scan_landing

PATTERN = "orders_{date}*.csv"


def scan(directory: Path, cursor: dict | None) -> LandingScan:
    return scan_landing(directory, PATTERN, "%Y-%m-%d", cursor, lambda day: day <= "2026-11-30")


def settle(directory: Path, cursor: dict | None = None) -> LandingScan:
    """Two looks in a row: the first sees the files, the second finds them settled."""
    return scan(directory, scan(directory, cursor).cursor)


def test_the_day_of_a_name_follows_the_glob() -> None:
    day_of = key_matcher(PATTERN, "%Y-%m-%d")
    assert day_of("orders_2026-11-02.csv") == "2026-11-02"
    assert day_of("orders_2026-11-02_part2.csv") == "2026-11-02"
    assert day_of("orders_2026-11-02.csv.tmp") is None
    assert day_of("refunds_2026-11-02.csv") is None


def test_the_key_of_a_name_follows_the_spec_key_format() -> None:
    month_of = key_matcher("sales_{date}.parquet", "%Y-%m")
    assert month_of("sales_2026-03.parquet") == "2026-03"
    assert month_of("sales_2026-03-01.parquet") is None
    hour_of = key_matcher("readings_{date}_*.csv", "%Y%m%dT%H")
    assert hour_of("readings_20260308T03_a.csv") == "20260308T03"
    # A key may overlap another candidate: every start position is tried.
    assert key_matcher("x{date}.csv", "%Y")("x12345.csv") is None
    assert key_matcher("1{date}.csv", "%Y")("12026.csv") == "2026"


def test_a_new_file_is_requested_once_it_stops_growing_and_never_again(tmp_path: Path) -> None:
    path = tmp_path / "orders_2026-11-02.csv"
    path.write_text("a,b\n1,2\n")
    first = scan(tmp_path, None)
    assert first.changed_keys == {} and first.settling == [path.name]
    with path.open("a") as growing:
        growing.write("3,4\n")
    still_growing = scan(tmp_path, first.cursor)
    assert still_growing.changed_keys == {}
    settled = scan(tmp_path, still_growing.cursor)
    assert list(settled.changed_keys) == ["2026-11-02"]
    again = scan(tmp_path, settled.cursor)
    assert again.changed_keys == {} and again.settling == []


def test_a_file_touched_or_rewritten_with_the_same_bytes_is_not_requested(tmp_path: Path) -> None:
    path = tmp_path / "orders_2026-11-02.csv"
    path.write_text("a,b\n1,2\n")
    cursor = settle(tmp_path).cursor
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    path.write_text("a,b\n1,2\n")
    assert settle(tmp_path, cursor).changed_keys == {}


def test_a_changed_file_is_requested_once_with_a_new_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "orders_2026-11-02.csv"
    path.write_text("a,b\n1,2\n")
    before = settle(tmp_path)
    path.write_text("a,b\n1,3\n")
    after = settle(tmp_path, before.cursor)
    assert list(after.changed_keys) == ["2026-11-02"]
    assert after.changed_keys != before.changed_keys
    assert settle(tmp_path, after.cursor).changed_keys == {}


def test_a_day_losing_one_of_its_files_is_requested_again(tmp_path: Path) -> None:
    (tmp_path / "orders_2026-11-02.csv").write_text("a\n1\n")
    (tmp_path / "orders_2026-11-02_late.csv").write_text("a\n2\n")
    (tmp_path / "orders_2026-11-03.csv").write_text("a\n3\n")
    cursor = settle(tmp_path).cursor
    (tmp_path / "orders_2026-11-02_late.csv").unlink()
    (tmp_path / "orders_2026-11-03.csv").unlink()
    rescanned = scan(tmp_path, cursor)
    assert list(rescanned.changed_keys) == ["2026-11-02"]  # 11-03 has nothing left to load


def test_a_file_for_a_day_that_is_not_a_partition_yet_waits(tmp_path: Path) -> None:
    (tmp_path / "orders_2026-12-01.csv").write_text("a\n1\n")
    waiting = settle(tmp_path)
    assert waiting.changed_keys == {} and waiting.cursor["seen"] == {}


def test_a_file_replaced_keeping_its_size_and_time_is_requested(tmp_path: Path) -> None:
    """As ``cp -p`` or ``rsync -t`` deliver a corrected file: same length, same mtime."""
    path = tmp_path / "orders_2026-11-02.csv"
    path.write_text("a,b\n1,2\n")
    before = settle(tmp_path)
    stat = path.stat()
    replacement = tmp_path / "incoming.tmp"
    replacement.write_text("a,b\n1,3\n")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(path)  # a new inode under the old name
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    after = settle(tmp_path, before.cursor)
    assert list(after.changed_keys) == ["2026-11-02"]

    with path.open("r+") as in_place:  # rewritten in place, its mtime put back
        in_place.write("a,b\n1,4\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert list(settle(tmp_path, after.cursor).changed_keys) == ["2026-11-02"]


def test_a_file_removed_after_loading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "orders_2026-11-02.csv").write_text("a\n1\n")
    cursor = settle(tmp_path).cursor
    (tmp_path / "orders_2026-11-02.csv").unlink()
    rescanned = scan(tmp_path, cursor)
    assert rescanned.removed == ["orders_2026-11-02.csv"] and rescanned.changed_keys == {}
    assert scan(tmp_path, rescanned.cursor).removed == []  # reported once


def test_a_file_waits_for_its_ready_marker(tmp_path: Path) -> None:
    path = tmp_path / "orders_2026-11-02.csv"
    path.write_text("a\n1\n")

    def not_ready(file: Path) -> str | None:
        return None if file.with_name(file.name + ".done").exists() else "no marker yet"

    def look(cursor: dict | None) -> LandingScan:
        return scan_landing(
            tmp_path, PATTERN, "%Y-%m-%d", cursor, lambda day: True, not_ready=not_ready
        )

    waiting = look(look(None).cursor)
    assert waiting.changed_keys == {} and waiting.waiting == {path.name: "no marker yet"}
    path.with_name(path.name + ".done").touch()
    assert list(look(look(waiting.cursor).cursor).changed_keys) == ["2026-11-02"]


def test_a_link_out_of_the_landing_zone_is_refused_never_read(tmp_path: Path) -> None:
    zone, outside = tmp_path / "landing", tmp_path / "secrets.csv"
    (zone / "orders").mkdir(parents=True)
    outside.write_text("a\n1\n")
    (zone / "orders" / "orders_2026-11-02.csv").symlink_to(outside)

    def look(cursor: dict | None) -> LandingScan:
        return scan_landing(zone / "orders", PATTERN, "%Y-%m-%d", cursor, lambda day: True, zone)

    refused = look(look(None).cursor)
    assert refused.changed_keys == {} and refused.cursor["seen"] == {}
    assert list(refused.refused) == ["orders_2026-11-02.csv"]
    assert "leads out of the landing zone" in refused.refused["orders_2026-11-02.csv"]
