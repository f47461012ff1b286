"""The result of ingesting a partition: every row read is either loaded or dead-lettered.

Pure pandas, no database: built by the ingestion assets, written by the IO manager in one
transaction with the good rows (see ``lib/postgres/side_writes.py``).
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

DEAD_LETTER_COLUMNS = [
    "partition_key",
    "stage",
    "source_ref",
    "payload",
    "error_class",
    "error_message",
    "error_detail",
    "record_hash",
]
STAGES = ("parse", "validate", "transform", "load")


@dataclass(frozen=True)
class Checkpoint:
    """Where an incremental extract of ``source`` got to (a JSON-able high-water mark)."""

    source: str
    high_water: dict[str, Any]


@dataclass(frozen=True)
class IngestedFrame:
    """Good rows, dead letters, how many rows each partition read, and where the extract got to.

    ``rows_read[key]`` must equal the partition's loaded rows plus its dead letters; the IO manager
    refuses to commit otherwise, so nothing read is ever silently lost. ``checkpoint`` commits in
    the same transaction as the rows it covers, so a crash can neither skip nor repeat them.
    """

    rows: pd.DataFrame
    dead_letters: pd.DataFrame
    rows_read: dict[str, int]
    checkpoint: Checkpoint | None = None


def record_hash(payload: dict) -> str:
    """A stable hash of a raw record (its JSON with sorted keys), to recognise it again."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def no_dead_letters() -> pd.DataFrame:
    """An empty dead-letter frame, for an extract in which nothing failed."""
    return pd.DataFrame(columns=DEAD_LETTER_COLUMNS)


def dead_letter_frame(
    raw: pd.DataFrame,
    *,
    partition_key: str,
    stage: str,
    error_class: str,
    messages: list[str],
    details: list[object],
    source_refs: list[str],
) -> pd.DataFrame:
    """Dead letters for the ``raw`` rows, each keeping its payload untouched (as read)."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    payloads = [
        {name: (None if pd.isna(value) else value) for name, value in record.items()}
        for record in raw.astype(object).to_dict(orient="records")
    ]
    return pd.DataFrame(
        {
            "partition_key": pd.Series([partition_key] * len(raw), dtype="str"),
            "stage": pd.Series([stage] * len(raw), dtype="str"),
            "source_ref": pd.Series(source_refs, dtype="str"),
            "payload": pd.Series(payloads, dtype=object),
            "error_class": pd.Series([error_class] * len(raw), dtype="str"),
            "error_message": pd.Series(messages, dtype="str"),
            "error_detail": pd.Series(details, dtype=object),
            "record_hash": pd.Series([record_hash(p) for p in payloads], dtype="str"),
        },
        columns=DEAD_LETTER_COLUMNS,
    )
