"""Revalidating dead letters with the current code: which now pass, which still fail and why.

Pure data: the payloads (patched where a patch was given) go through exactly the stages a landing
file's rows go through (``pipeline.ingest_batch``), one partition at a time. Loading the rows that
pass and updating the queue is the Postgres layer's job (``lib/dead_letters/replay_store.py``).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from platform_assets.lib.ingestion.pipeline import process_batch, unique_key_tracker
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.transform import Transform
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.sources.field_text import field_text
from platform_assets.lib.sources.landing_readers import RawBatch

DEAD_LETTER_SOURCE = "dead_letter"  # replayed rows are referred to by dead-letter id


@dataclass(frozen=True)
class QueuedRecord:
    """A dead letter picked for replay, with the payload to try (its latest patch, if any)."""

    id: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class StillFailing:
    """A dead letter that fails again: the new message and detail to record."""

    id: int
    stage: str
    error_message: str
    error_detail: dict[str, Any]


@dataclass(frozen=True)
class Revalidated:
    """The outcome for one partition: typed rows that now pass (with their dead-letter ids, in
    the same order) and the records that still fail."""

    rows: pa.Table
    passing_ids: list[int]
    failing: list[StillFailing]


def revalidate(
    spec: DatasetSpec,
    records: list[QueuedRecord],
    window: PartitionWindow,
    transform: Transform | None,
) -> Revalidated:
    """Run ``records`` of one partition through parse, validate, transform and key checks.

    A payload that is not a mapping of the declared columns (a ragged line's ``{"line": ...}``)
    fails on its missing columns until a patch supplies them.
    """
    columns = {
        name: pa.array([field_text(r.payload.get(name)) for r in records], pa.string())
        for name in spec.source_column_names
    }
    ids = np.array([record.id for record in records], dtype=np.int64)
    batch = RawBatch(pa.table(columns), DEAD_LETTER_SOURCE, ids)
    processed = process_batch(spec, batch, window, unique_key_tracker(spec), transform)
    failing = [
        StillFailing(
            int(letter.source_ref.rsplit(":", 1)[1]),
            letter.stage,
            letter.error_message,
            letter.error_detail or {},
        )
        for letter in processed.letters
    ]
    failed_ids = {f.id for f in failing}
    passing = [record.id for record in records if record.id not in failed_ids]
    return Revalidated(processed.rows, passing, failing)
