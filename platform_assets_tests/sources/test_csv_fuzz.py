"""Fuzzing the CSV reader with the damage real files have: every physical line is accounted for,
no undamaged record is lost or changed, and nothing crashes.

Hypothesis writes RFC 4180 files (quoted commas, doubled quotes, line breaks and empty lines inside
quotes, LF and CRLF mixed, a BOM or not, a last line with or without its break), in the dialects
real exports use too (``;``, tab or ``|`` between fields, ``'`` as the quote), and then damages
some records: a stray quote opening a field, text after a closing quote, a NUL byte, bytes that
are not UTF-8, a missing or an extra field, an empty line. The test counts the file's lines from
the bytes it wrote, independently of the reader.
"""

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.lib.sources.csv_records import CsvDialect, RecordLimits
from platform_assets.lib.sources.landing_readers import stream_csv

COLUMNS = ["id", "note", "amount"]
DAMAGES = (
    "stray_quote",
    "text_after_quote",
    "nul",
    "not_utf8",
    "ragged",
    "extra_field",
    "empty",
    "cr_ending",  # a classic-Mac line end: the record and the next share one physical line
)
# Damage to a record's quotes or shape hides where the next record starts: a stray quote can
# close inside a later record (no reader can tell that from a real multi-line field). The reader
# then reads the lines it had joined one by one, so a good multi-line record among them may be
# dead-lettered line by line (its lines still accounted for); no good record is loaded changed,
# and no other damage costs any good record.
RESYNCED = {"stray_quote", "text_after_quote", "ragged", "extra_field", "cr_ending"}

notes = st.lists(
    st.sampled_from(
        ["a", "é", " ", ",", '"', ";", "\t", "|", "'", "\n", "\r\n", "\n\n", "\r", "x"]
    ),
    max_size=8,
).map("".join)
DIALECTS = [
    CsvDialect(),
    CsvDialect(";"),
    CsvDialect("\t"),
    CsvDialect(",", "'"),
    CsvDialect("|", "'"),
]


@dataclass(frozen=True)
class Record:
    """One record as written: its values, its text, and its damage (if any)."""

    values: tuple[str, str, str]
    text: bytes
    damage: str | None


def _field(value: str, quote: bool, dialect: CsvDialect) -> str:
    q = dialect.quote
    if quote or any(c in value for c in (dialect.delimiter, q, "\r", "\n")) or value == "":
        return q + value.replace(q, q + q) + q
    return value


def _damaged(fields: list[str], damage: str, dialect: CsvDialect) -> str:
    q = dialect.quote
    if damage == "stray_quote":
        fields[0] = q + fields[0]
    elif damage == "text_after_quote":
        fields[1] = f"{q}{fields[1].strip(q)}{q}tail"
    elif damage == "nul":
        fields[2] += "\x00"
    elif damage == "ragged":
        fields.pop()
    elif damage == "extra_field":
        fields.append("surplus")
    return dialect.delimiter.join(fields)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, list[Record], CsvDialect]:
    """A header and 1-40 records, some damaged, as the bytes of a file in a dialect."""
    dialect = draw(st.sampled_from(DIALECTS))
    records = []
    for number in range(draw(st.integers(1, 40))):
        values = (str(number), draw(notes), f"{draw(st.integers(0, 10**6))}.{number % 100:02}")
        quoted = draw(st.booleans())
        fields = [_field(value, quoted and i == 1, dialect) for i, value in enumerate(values)]
        damage = draw(st.none() | st.sampled_from(DAMAGES))
        text = (
            _damaged(fields, damage, dialect) if damage else dialect.delimiter.join(fields)
        ).encode()
        if damage == "not_utf8":
            text += b"\xff"
        if damage == "empty":
            text = b"\n" + text
        ending = b"\r" if damage == "cr_ending" else draw(st.sampled_from([b"\n", b"\r\n"]))
        records.append(Record(values, text + ending, damage))
    body = b"".join(record.text for record in records)
    if draw(st.booleans()):
        body = body.rstrip(b"\r\n")  # no break after the last line
    header = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return header + dialect.delimiter.join(COLUMNS).encode() + b"\r\n" + body, records, dialect


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.sampled_from([64, 4096]), st.sampled_from(["dead_letter", "load"]))
def test_every_line_is_loaded_or_set_aside_and_no_good_record_is_lost(
    tmp_path_factory,
    file: tuple[bytes, list[Record], CsvDialect],
    block_bytes: int,
    unterminated: str,
) -> None:
    content, records, dialect = file
    path = tmp_path_factory.mktemp("fuzz") / "day.csv"
    path.write_bytes(content)
    data_lines = content.count(b"\n") + (not content.endswith(b"\n")) - 1
    last_line = data_lines + 1
    flag_last = unterminated == "dead_letter" and not content.endswith(b"\n")

    rows, spans, truncated = {}, [], []
    limits = RecordLimits(max_record_bytes=4096, max_record_lines=20)
    for batch in stream_csv(
        path,
        COLUMNS,
        block_bytes=block_bytes,
        limits=limits,
        unterminated_last_line=unterminated,
        dialect=dialect,
    ):
        for index, row in enumerate(batch.rows.to_pylist()):
            first, lines = int(batch.positions[index]), batch.lines_of(index)
            rows[first] = (tuple(row.values()), lines)
            spans.append((first, lines))
        spans += [
            (int(r.source_ref.split(":")[1].split("-")[0]), r.lines) for r in batch.unreadable
        ]
        truncated += [
            r.source_ref for r in batch.unreadable if r.error_class == "PossiblyTruncated"
        ]

    covered = sorted(line for first, lines in spans for line in range(first, first + lines))
    assert covered == list(range(2, data_lines + 2))  # every line exactly once
    # A file without a final line break has its last line set aside, unless declared normal.
    assert truncated == ([f"day.csv:{last_line}"] if flag_last else [])

    line, starts = 2, []
    for record in records:
        line += record.damage == "empty"  # the empty line before it
        starts.append(line)
        line += record.text.count(b"\n") - (record.damage == "empty")
    resync_seen, shares_line = False, False
    for record, start in zip(records, starts, strict=True):
        loaded = rows.get(start)
        ends_the_file = start + record.text.count(b"\n") >= last_line
        if (
            record.damage or shares_line or (flag_last and ends_the_file)
        ):  # after a CR-only end it starts mid-line: damaged too
            resync_seen |= record.damage in RESYNCED
        elif loaded is not None:  # a row read from where a good record starts is that record
            assert loaded == (record.values, record.text.count(b"\n")), (start, record)
        else:  # a good record is dead-lettered only in the wake of damage to quotes or shape
            assert resync_seen, (start, record)
        shares_line = record.damage == "cr_ending"
