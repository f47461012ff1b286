"""CSV as RFC 4180: quoted commas, doubled quotes and line breaks read right; a damaged line costs
only itself; every physical line ends up in exactly one row or one unreadable record."""

import re
from pathlib import Path

import pytest

from platform_assets.lib.sources.csv_records import RecordLimits
from platform_assets.lib.sources.landing_readers import (
    LandingFileError,
    count_data_lines,
    stream_csv,
)

COLUMNS = ["id", "note", "amount"]


def read(tmp_path: Path, body: bytes, **options) -> tuple[list[tuple], list[tuple], int]:
    """Rows as (ref, values), unreadable records as (ref, class, payload), and the lines that
    both span together."""
    path = tmp_path / "day.csv"
    path.write_bytes(b"id,note,amount\n" + body)
    rows, bad, lines = [], [], 0
    for batch in stream_csv(path, COLUMNS, **options):
        for index, row in enumerate(batch.rows.to_pylist()):
            rows.append((batch.source_ref(index), tuple(row.values())))
            lines += batch.lines_of(index)
        for record in batch.unreadable:
            bad.append((record.source_ref, record.error_class, record.payload))
            lines += record.lines
    assert lines == count_data_lines(path, "csv")
    return rows, bad, lines


def test_quoted_commas_doubled_quotes_and_line_breaks(tmp_path: Path) -> None:
    body = b'1,"a, b",2\n2,"say ""hi""",3\n3,"two\nlines",4\n4,"blank\n\nline",5\n5,x,6\n'

    rows, bad, lines = read(tmp_path, body)

    assert bad == [] and lines == 8
    assert rows == [
        ("day.csv:2", ("1", "a, b", "2")),
        ("day.csv:3", ("2", 'say "hi"', "3")),
        ("day.csv:4-5", ("3", "two\nlines", "4")),
        ("day.csv:6-8", ("4", "blank\n\nline", "5")),
        ("day.csv:9", ("5", "x", "6")),  # physical line numbers after multi-line records
    ]


def test_crlf_line_breaks_inside_and_between_records(tmp_path: Path) -> None:
    rows, bad, _ = read(tmp_path, b'1,"a\r\nb",2\r\n2,c,3\r\n')

    assert bad == []
    assert rows == [("day.csv:2-3", ("1", "a\r\nb", "2")), ("day.csv:4", ("2", "c", "3"))]


def test_a_stray_quote_costs_only_its_own_line(tmp_path: Path) -> None:
    good = [f"{i},note {i},{i}.5\n".encode() for i in range(2_000)]
    body = b"".join(good[:10]) + b'10,"unclosed note,10.5\n' + b"".join(good[11:])

    rows, bad, lines = read(tmp_path, body, block_bytes=4_096)

    assert lines == 2_000 and len(rows) == 1_999
    assert bad == [("day.csv:12", "UnclosedQuote", {"line": '10,"unclosed note,10.5'})]
    assert rows[10:12] == [
        ("day.csv:13", ("11", "note 11", "11.5")),
        ("day.csv:14", ("12", "note 12", "12.5")),
    ]


def test_a_quote_closing_into_the_wrong_shape_is_its_line_alone(tmp_path: Path) -> None:
    rows, bad, _ = read(tmp_path, b'1,ab","c,3\n2,x,4\n3,y",5\n4,z,6\n')

    assert [ref for ref, *_ in bad] == ["day.csv:2"]
    assert [ref for ref, _ in rows] == ["day.csv:3", "day.csv:4", "day.csv:5"]
    assert rows[1][1] == ("3", 'y"', "5")  # a quote inside an unquoted field is text


def test_a_record_is_bounded_in_lines(tmp_path: Path) -> None:
    body = b'1,"open\n' + b"".join(f"{i},n,{i}\n".encode() for i in range(2, 8))

    rows, bad, _ = read(tmp_path, body, limits=RecordLimits(max_record_lines=3))

    assert [(ref, kind) for ref, kind, _ in bad] == [("day.csv:2", "UnclosedQuote")]
    assert len(rows) == 6
    (batch,) = list(stream_csv(tmp_path / "day.csv", COLUMNS, limits=RecordLimits(1 << 20, 3)))
    assert "may span at most 3 lines" in batch.unreadable[0].message


def test_a_record_is_bounded_in_bytes(tmp_path: Path) -> None:
    body = b'1,"open\n' + b"2,n,2\n" * 50

    rows, bad, _ = read(tmp_path, body, limits=RecordLimits(max_record_bytes=64))

    assert [(ref, kind) for ref, kind, _ in bad] == [("day.csv:2", "UnclosedQuote")]
    assert len(rows) == 50


def test_a_record_continues_across_pieces(tmp_path: Path) -> None:
    long_note = "\n".join(f"line {i}" for i in range(200))
    body = b"1,a,1\n" + f'2,"{long_note}",2\n'.encode() + b"3,c,3\n"

    rows, bad, _ = read(tmp_path, body, block_bytes=256)

    assert bad == []
    assert rows == [
        ("day.csv:2", ("1", "a", "1")),
        ("day.csv:3-202", ("2", long_note, "2")),
        ("day.csv:203", ("3", "c", "3")),
    ]


@pytest.mark.parametrize(
    ("line", "error_class"),
    [
        (b'1,"abc"def,2', "MalformedCsvLine"),  # text after a closing quote: not silently joined
        (b"1,a\rb,2", "MalformedCsvLine"),  # a bare carriage return inside a record
        (b"1,a\x00b,2", "InvalidEncoding"),  # NUL: Postgres text cannot hold it
        (b"1,caf\xe9,2", "InvalidEncoding"),
        (b"", "EmptyCsvLine"),
        (b"1,2", "MalformedCsvLine"),
    ],
)
def test_a_damaged_line_is_set_aside_with_its_bytes(
    tmp_path: Path, line: bytes, error_class: str
) -> None:
    rows, bad, lines = read(tmp_path, b"1,a,1\n" + line + b"\n2,b,2\n")

    assert [values for _, values in rows] == [("1", "a", "1"), ("2", "b", "2")]
    ((ref, kind, payload),) = bad
    assert (ref, kind, lines) == ("day.csv:3", error_class, 3)
    assert "\x00" not in str(payload)  # escaped, so jsonb can store it


def test_nul_byte_is_kept_escaped_with_its_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(b"id,note,amount\n1,a\x00b,2\n")

    (record,) = next(stream_csv(path, COLUMNS)).unreadable

    assert record.payload["note"] == "a\\x00b"
    assert record.detail == {"columns": ["note"], "raw_base64": {"note": "YQBi"}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,note,amount\r1,a,2\r", "bare carriage return"),
        (b"id,note,note,amount\n1,a,b,2\n", "names the column(s) ['note'] twice"),
        (b'id,"note,amount\n1,a,2\n', "header that is not CSV"),
    ],
    ids=["cr-only", "repeated-column", "broken-header"],
)
def test_a_file_that_cannot_be_read_fails_naming_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(content)

    with pytest.raises(LandingFileError, match=re.escape(message)) as raised:
        list(stream_csv(path, COLUMNS))
    assert str(path) in str(raised.value)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(b"\xef\xbb\xbfid,note,amount\n1,a,2\n")

    (batch,) = list(stream_csv(path, COLUMNS))

    assert batch.rows.to_pylist() == [{"id": "1", "note": "a", "amount": "2"}]
