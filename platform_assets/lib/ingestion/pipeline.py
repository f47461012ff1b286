"""A declared dataset's partition, from its source (files or an API) to chunks and dead letters.

Each chunk read flows one way: parse (unreadable records) → validate (types and rules, partition
window) → transform (the spec's optional function) → unique keys (across the whole load: one
partition, or every partition of a range run). A row failing any stage becomes a dead letter of
that stage, with its raw fields untouched; the rest are typed rows ready for the IO manager. Rows
read = loaded + dead-lettered per chunk, and for a landing file, its data lines (counted from its
bytes) = the lines its loaded rows and its dead letters span.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pyarrow as pa

from platform_assets.lib.ingestion.derived_columns import derive_columns
from platform_assets.lib.ingestion.key_tracker import KeyTracker
from platform_assets.lib.ingestion.parsing import ParsedColumns, with_null_markers
from platform_assets.lib.ingestion.result import (
    DeadLetter,
    FileLines,
    IngestedChunk,
    dead_letter_table,
)
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.transform import Transform, apply_transform
from platform_assets.lib.ingestion.validation import (
    CheckedRows,
    PartitionWindow,
    RuleBroken,
    check_rows,
    failures_of,
)
from platform_assets.lib.sources.completeness import check_before_reading, check_rows_read
from platform_assets.lib.sources.jsonl_reader import stream_jsonl
from platform_assets.lib.sources.landing_readers import (
    LandingFileError,
    LandingFilesSource,
    RawBatch,
    count_data_lines,
    stream_csv,
)
from platform_assets.lib.sources.landing_scan import LandedObject
from platform_assets.lib.sources.object_landing import ObjectLanding
from platform_assets.lib.sources.parquet_reader import stream_parquet


def landing_files(source: LandingFilesSource, root: Path, window: PartitionWindow) -> list[Path]:
    """The partition's files of ``source`` under the landing zone ``root``, in name order
    (``{date}`` in the pattern stands for the partition's key).

    None at all is an error: a missing delivery must fail loudly, not load an empty day.
    """
    directory = root / source.directory
    pattern = source.pattern.replace("{date}", window.key)
    paths = sorted(directory.glob(pattern))
    inside = root.resolve()
    outside = [path for path in paths if not path.resolve().is_relative_to(inside)]
    if outside:  # the spec refuses '..'; a symbolic link can still lead out
        raise LandingFileError(f"landing file(s) {outside} lie outside the landing zone {root}")
    if not paths:
        raise LandingFileError(f"no landing file for {window.key} matches {directory / pattern}")
    return paths


def landing_objects(
    source: LandingFilesSource, store: ObjectLanding, window: PartitionWindow
) -> list[LandedObject]:
    """``landing_files`` in an object store: the partition's objects under the dataset's prefix,
    in name order. None at all is an error."""
    pattern = source.pattern.replace("{date}", window.key)
    found = [o for o in store.objects(source.directory) if fnmatchcase(o.name, pattern)]
    if not found:
        where = store.object_url(source.directory, pattern)
        raise LandingFileError(f"no landing file for {window.key} matches {where}")
    return found


def read_object(
    spec: DatasetSpec, store: ObjectLanding, landed: LandedObject
) -> Iterator[RawBatch]:
    """``read_file`` of an object, through its local copy (with its marker and manifest); an
    error names the object's URL."""
    source = _landing_source(spec)
    companions = [t for t in (source.ready_marker, source.manifest) if t]
    with store.local_copy(source.directory, landed.name, companions) as copy:
        try:
            yield from read_file(spec, copy)
        except LandingFileError as error:
            url = store.object_url(source.directory, landed.name)
            raise LandingFileError(str(error).replace(str(copy), url)) from error


def _landing_source(spec: DatasetSpec) -> LandingFilesSource:
    assert isinstance(spec.source, LandingFilesSource), spec.name  # callers read landing files
    return spec.source


def read_file(spec: DatasetSpec, path: Path) -> Iterator[RawBatch]:
    """``path``, a landing file of ``spec``, in chunks: the spec's source columns as text, read
    with the reader of its format (a CSV's columns found by their ``header``, a JSON Lines
    record's by their ``path``), once its ready marker and manifest checksum (if declared) vouch
    for it. The first chunk carries the file's data lines, counted from its bytes before the
    reader starts (``count_data_lines``); a last empty chunk carries what vouched for the file,
    once its manifest's row count (if any) is checked too."""
    source = _landing_source(spec)
    declared = spec.source_column_names
    completeness = check_before_reading(path, source.ready_marker, source.manifest)
    unterminated = "load" if completeness.declared_whole else source.unterminated_last_line
    if source.format == "parquet":
        types = {column.name: column.type for column in spec.columns}
        batches = stream_parquet(path, declared, source.extra_columns, declared_types=types)
    elif source.format == "jsonl":
        batches = stream_jsonl(path, declared, spec.json_paths, source.record_limits, unterminated)
    else:  # the columns as the header calls them, then by their own names
        in_file = [spec.csv_headers.get(name, name) for name in declared]
        batches = (
            replace(batch, rows=batch.rows.rename_columns(declared))
            for batch in stream_csv(
                path,
                in_file,
                source.extra_columns,
                limits=source.record_limits,
                unterminated_last_line=unterminated,
                dialect=source.dialect,
            )
        )
    data_lines = count_data_lines(path, source.format, source.format == "csv" and source.header)
    records, first = 0, True
    for batch in batches:
        records += batch.records_read
        yield replace(batch, file_data_lines=data_lines if first else 0)
        first = False
    empty = pa.table({name: pa.array([], pa.string()) for name in declared})
    if first:  # a file of no rows still reports its (zero) lines
        yield RawBatch(empty, path.name, np.empty(0, np.int64), file_data_lines=data_lines)
    checked = check_rows_read(path, completeness, records)
    if checked.evidence:
        yield RawBatch(
            empty,
            path.name,
            np.empty(0, np.int64),
            file_data_lines=0,
            file_checks=checked.describe(),
        )


def _letters(
    stage: str,
    error_class: str,
    failed: np.ndarray,
    in_play: np.ndarray,
    raw: RawBatch,
    broken: list[RuleBroken],
    partition_key: str,
    quoted: pa.Table | None = None,
) -> list[DeadLetter]:
    """Dead letters for the ``failed`` rows (a mask over the rows still ``in_play`` in ``raw``).

    A letter's payload is its source fields; its failures quote the values of ``quoted`` (the
    source fields with the derived ones, aligned with ``raw``), by default the payload.
    """
    letters = []
    rows = np.flatnonzero(failed)
    taken = pa.array(in_play[rows], pa.int64())
    payloads = raw.rows.take(taken).to_pylist()
    values = quoted.take(taken).to_pylist() if quoted is not None else payloads
    for row, payload, row_values in zip(rows.tolist(), payloads, values, strict=True):
        failures = failures_of(row, broken, row_values)
        letters.append(
            DeadLetter(
                partition_key=partition_key,
                stage=stage,
                source_ref=raw.source_ref(int(in_play[row])),
                payload=payload,
                error_class=error_class,
                error_message="; ".join(f["message"] for f in failures),
                error_detail={"failures": failures},
                source_lines=raw.lines_of(int(in_play[row])),
            )
        )
    return letters


@dataclass(frozen=True)
class ProcessedBatch:
    """A chunk after every stage: the rows to load, the dead letters, how many records it had,
    and how many physical lines the rows to load span."""

    rows: pa.Table
    letters: list[DeadLetter]
    records_read: int
    lines_loaded: int


# For a chunk's typed rows: {row index: the partition already holding that row's primary key}.
KeysElsewhere = Callable[[pa.Table], dict[int, str]]


def process_batch(
    spec: DatasetSpec,
    raw: RawBatch,
    window: PartitionWindow,
    keys: KeyTracker | None,
    transform: Transform | None,
    keys_elsewhere: KeysElsewhere | None = None,
) -> ProcessedBatch:
    """One chunk through every stage: its loadable rows and its dead letters. A row repeating
    the unique key of an earlier row (``keys``; None for a keyless dataset) is a dead letter, and
    so is one whose key another partition already holds (``keys_elsewhere``), naming it."""
    letters = [
        DeadLetter(
            window.key,
            "parse",
            r.source_ref,
            r.payload,
            r.error_class,
            r.message,
            r.detail,
            r.lines,
        )
        for r in raw.unreadable
    ]
    parsed: ParsedColumns = {}
    # A dead letter keeps the field as the file wrote it; the rules read a marker as missing.
    rows = with_null_markers(raw.rows, spec.null_values)
    with_derived, derive_broken = derive_columns(rows, spec, parsed, window)
    checked = check_rows(with_derived, spec, window, parsed)
    checked = CheckedRows(checked.typed, derive_broken + checked.broken)
    rejected = checked.rejected()
    in_play = np.arange(raw.rows.num_rows)
    letters += _letters(
        "validate",
        "ValidationError",
        rejected,
        in_play,
        raw,
        checked.broken,
        window.key,
        quoted=with_derived,
    )
    in_play = in_play[~rejected]
    rows = checked.typed.filter(pa.array(~rejected))
    if transform is not None:
        guarded = apply_transform(transform, rows)
        crashed = guarded.crashed
        errors = np.array([""] * rows.num_rows, dtype=object)
        errors[crashed] = guarded.errors
        uncomputable = [
            RuleBroken(
                None, "transform", f"the transform could not compute this row: {e}", errors == e
            )
            for e in sorted(set(guarded.errors))
        ]
        letters += _letters(
            "transform", "TransformError", crashed, in_play, raw, uncomputable, window.key
        )
        in_play = in_play[~crashed]
        transformed = guarded.result
        failed = np.zeros(transformed.rows.num_rows, dtype=bool)
        for rule in transformed.broken:
            failed |= rule.rows
        letters += _letters(
            "transform", "TransformError", failed, in_play, raw, transformed.broken, window.key
        )
        rows, in_play = transformed.rows.filter(pa.array(~failed)), in_play[~failed]
    repeated = keys.repeats(rows) if keys is not None else np.zeros(rows.num_rows, dtype=bool)
    if repeated.any():
        rule = RuleBroken(
            ",".join(spec.unique_key),
            "unique",
            f"{spec.unique_key_label} repeats an earlier row of this load",
            repeated,
        )
        letters += _letters("validate", "DuplicateKey", repeated, in_play, raw, [rule], window.key)
        rows, in_play = rows.filter(pa.array(~repeated)), in_play[~repeated]
    held = keys_elsewhere(rows) if keys_elsewhere is not None else {}
    if held:
        holder = np.array([held.get(index, "") for index in range(rows.num_rows)], dtype=object)
        loaded = holder != ""
        rules = [
            RuleBroken(
                ",".join(spec.unique_key),
                "unique",
                f"{spec.unique_key_label} is already loaded in partition {partition}",
                holder == partition,
            )
            for partition in sorted(set(held.values()))
        ]
        letters += _letters("load", "KeyLoadedElsewhere", loaded, in_play, raw, rules, window.key)
        rows, in_play = rows.filter(pa.array(~loaded)), in_play[~loaded]
    return ProcessedBatch(rows, letters, raw.records_read, raw.lines_of_rows(in_play))


def ingest_batch(
    spec: DatasetSpec,
    raw: RawBatch,
    window: PartitionWindow,
    keys: KeyTracker | None,
    transform: Transform | None,
    keys_elsewhere: KeysElsewhere | None = None,
) -> IngestedChunk:
    """One chunk through every stage, as the IO manager writes it."""
    processed = process_batch(spec, raw, window, keys, transform, keys_elsewhere)
    file_lines = {}
    if raw.file_data_lines is not None:
        dead_lines = sum(letter.source_lines for letter in processed.letters)
        file_lines[(window.key, raw.source)] = FileLines(
            raw.file_data_lines, processed.lines_loaded, dead_lines, raw.file_checks
        )
    return IngestedChunk(
        processed.rows,
        dead_letter_table(processed.letters),
        {window.key: processed.records_read},
        file_lines=file_lines,
        rules_broken=rules_broken(processed.letters),
    )


def unique_key_tracker(spec: DatasetSpec) -> KeyTracker | None:
    """A tracker of the dataset's unique key (primary or dedupe key); None when it has none."""
    return KeyTracker(spec.unique_key) if spec.unique_key else None


def rules_broken(letters: list[DeadLetter]) -> Counter[str]:
    """How many of ``letters`` broke each rule: ``column:check`` for a value, the error class for
    a record that could not be read or loaded."""
    counts: Counter[str] = Counter()
    for letter in letters:
        failures = (letter.error_detail or {}).get("failures") or []
        rules = {f"{f['column']}:{f['check']}" if f.get("column") else f["check"] for f in failures}
        counts.update(rules or {letter.error_class})
    return counts


def ingest_partition(
    spec: DatasetSpec,
    batches: Iterable[RawBatch],
    window: PartitionWindow,
    transform: Transform | None = None,
    keys_elsewhere: KeysElsewhere | None = None,
    keys: KeyTracker | None = None,
) -> Iterator[IngestedChunk]:
    """Every chunk of the partition, at least one (an empty partition gives one empty chunk).

    ``keys`` carries the keys already taken by earlier partitions of the same run (a range run
    writes them all in one transaction, so a key may appear in only one of them); by default, a
    tracker of this partition's own.
    """
    keys = keys if keys is not None else unique_key_tracker(spec)
    emitted = False
    for raw in batches:
        yield ingest_batch(spec, raw, window, keys, transform, keys_elsewhere)
        emitted = True
    if not emitted:
        empty = pa.table({name: pa.array([], pa.string()) for name in spec.source_column_names})
        nowhere = RawBatch(empty, "", np.empty(0, dtype=np.int64))
        yield ingest_batch(spec, nowhere, window, keys, transform)
