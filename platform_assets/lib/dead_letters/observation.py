"""The dead-letter queue as the UI shows it: an observation of ``platform/dead_letter_records``.

Logged after every write that stores dead letters, and after every replay or discard, for the
dataset concerned: its letters per status as numeric metadata (so Dagster plots them over time),
the partitions holding letters with their counts per status, the rules broken most, and a
markdown sample of unresolved letters with the ids a patch or a discard needs.
"""

import dagster as dg
import psycopg

from platform_assets.lib.dead_letters.queue_summary import (
    STATUSES,
    letter_sample,
    status_counts,
    top_rules,
)
from platform_assets.lib.dead_letters.side_writes import TOP_RULES

DEAD_LETTER_ASSET_KEY = dg.AssetKey(["platform", "dead_letter_records"])
SAMPLE_LETTERS = 10
LISTED_PARTITIONS = 60
_PARTITION_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("partition_key", "string"),
        *(dg.TableColumn(status, "int") for status in STATUSES),
    ]
)


def _cell(text: str | None) -> str:
    """Text safe inside a markdown table cell."""
    return (text or "").replace("|", "\\|").replace("\n", " ")[:160]


def dead_letter_observation(conn: psycopg.Connection, asset_key: str) -> dg.AssetObservation:
    """The observation of the dead-letter queue for the dataset ``asset_key``."""
    counts = status_counts(conn, asset_key)
    totals = {status: sum(c[status] for c in counts.values()) for status in STATUSES}
    listed = sorted(counts.items(), key=lambda item: item[0], reverse=True)[:LISTED_PARTITIONS]
    sample = letter_sample(conn, asset_key, SAMPLE_LETTERS)
    lines = [
        "| id | partition | source | stage | error |",
        "|---:|---|---|---|---|",
        *(
            f"| {s.id} | {s.partition_key} | {_cell(s.source_ref)} | {s.stage}"
            f" | {_cell(s.error_message)} |"
            for s in sample
        ),
    ]
    return dg.AssetObservation(
        asset_key=DEAD_LETTER_ASSET_KEY,
        description=f"dead letters of {asset_key}",
        metadata={
            "dataset": asset_key,
            **{f"{asset_key} {status}": totals[status] for status in STATUSES},
            "partitions": dg.MetadataValue.table(
                records=[
                    dg.TableRecord({"partition_key": key, **by_status}) for key, by_status in listed
                ],
                schema=_PARTITION_SCHEMA,
            ),
            "top_rules_broken": dg.MetadataValue.json(top_rules(conn, asset_key, TOP_RULES)),
            "unresolved_sample": dg.MetadataValue.md(
                "\n".join(lines) if sample else "No unresolved dead letters."
            ),
        },
    )
