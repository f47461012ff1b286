"""The row hash: stable across dtypes, processes and versions; sensitive to every value."""

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from platform_assets.lib.row_hash import content_version, row_hashes

SAMPLE = pd.DataFrame(
    {
        "id": pd.array([1, 2, None], dtype="Int64"),
        "name": pd.Series(["a", "", None], dtype="str"),
        "price": [Decimal("1.10"), Decimal("0"), None],
        "seen": pd.Series([datetime(2026, 3, 29, 1, 30, tzinfo=UTC), None, None]),
        "day": [date(2026, 1, 1), None, date(2026, 1, 2)],
        "ratio": [0.5, -0.0, None],
        "flag": pd.array([True, False, None], dtype="boolean"),
    }
)
# Pinned: a change here means every stored _row_hash would change, so upserts would rewrite
# every row once. Change it only on purpose, with a migration note.
GOLDEN = [
    "8691d16a39d543159ba8405da249d74c",
    "ca1c7c229f0b3114c2963590c89c2877",
    "b3aba0bf82a146e824fe8053bc36b63a",
]


def hashes(frame: pd.DataFrame) -> list[str]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return [value.hex() for value in row_hashes(table, table.column_names).to_pylist()]


def test_golden_values() -> None:
    assert hashes(SAMPLE) == GOLDEN


def test_same_values_in_other_dtypes_hash_the_same() -> None:
    other = SAMPLE.assign(
        id=SAMPLE["id"].astype("Int32"),
        name=SAMPLE["name"].astype(object),
        seen=SAMPLE["seen"].dt.tz_convert("Asia/Tokyo").astype("datetime64[ns, Asia/Tokyo]"),
        ratio=SAMPLE["ratio"].replace(-0.0, 0.0).astype("float32"),
    )
    assert hashes(other) == GOLDEN


def test_another_process_computes_the_same_hashes() -> None:
    script = "\n".join(
        [
            "from platform_assets_tests.test_row_hash import SAMPLE, hashes",
            "print(','.join(hashes(SAMPLE)))",
        ]
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert completed.stdout.strip().split(",") == GOLDEN


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id", 5),
        ("name", "b"),
        ("price", Decimal("1.11")),
        ("seen", datetime(2026, 3, 29, 1, 31, tzinfo=UTC)),
        ("day", date(2026, 1, 3)),
        ("ratio", 0.25),
        ("flag", False),
    ],
)
def test_changing_any_value_changes_the_hash(column: str, value: object) -> None:
    changed = SAMPLE.copy()
    changed.loc[0, column] = value
    assert hashes(changed)[0] != GOLDEN[0] and hashes(changed)[1:] == GOLDEN[1:]


def test_null_empty_and_shifted_values_differ() -> None:
    frame = pd.DataFrame({"a": ["", None, "ab", "a"], "b": ["x", "x", "c", "bc"]})
    assert len(set(hashes(frame))) == 4


def test_content_version_counts_rows_and_ignores_order() -> None:
    table = pa.Table.from_pandas(SAMPLE, preserve_index=False)
    reversed_table = table.take([2, 1, 0])
    doubled = pa.concat_tables([table, table.slice(0, 1)])
    version = content_version(row_hashes(table, table.column_names))
    assert version == content_version(row_hashes(reversed_table, reversed_table.column_names))
    assert version != content_version(row_hashes(doubled, doubled.column_names))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (pa.string(), "x"),
        (pa.large_string(), "x"),
        (pa.binary(), b"x"),
        (pa.decimal128(14, 2), Decimal("1.25")),
        (pa.list_(pa.int64()), [1]),
        (pa.struct([("a", pa.int64())]), {"a": 1}),
        (pa.int64(), 1),
        (pa.date32(), date(2026, 1, 1)),
    ],
    ids=str,
)
def test_a_column_null_in_every_row_hashes_as_nulls_do_among_values(kind, value) -> None:
    # A small second file of a day, or one replayed letter, can have a column null throughout.
    alone = pa.table({"id": [1, 2], "v": pa.array([None, None], kind)})
    among = pa.table({"id": [1, 2, 3], "v": pa.array([None, None, value], kind)})

    hashed_alone = row_hashes(alone, ["id", "v"]).to_pylist()

    assert hashed_alone == row_hashes(among, ["id", "v"]).to_pylist()[:2]
    assert row_hashes(alone.slice(0, 0), ["id", "v"]).to_pylist() == []
