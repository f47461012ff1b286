"""The dead-letter queue as the UI shows it: one observed asset per dataset, beside it.

Each dataset's letters are an asset of their own (``sales/orders`` has
``sales/orders_dead_letters``), observed after every write that stores dead letters and after
every replay or discard: the letters per status as numeric metadata (so Dagster plots them over
time), the partitions holding letters with their counts per status (the most recent
``LISTED_PARTITIONS``, saying how many more there are and how to list them all), the rules broken
most, and a markdown sample of unresolved letters with the ids a patch or a discard needs. One
asset per dataset, not one for all: an observation's metadata is the asset's latest, so datasets
sharing one asset hid each other's.
"""

import dagster as dg
import psycopg
from psycopg import sql

from platform_assets.lib.dead_letters.queue_summary import (
    STATUSES,
    letter_sample,
    status_counts,
    top_rules,
)
from platform_assets.lib.dead_letters.side_writes import TOP_RULES

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


def dead_letters_key(asset_key: str) -> dg.AssetKey:
    """The key of the dead letters of the asset ``asset_key`` (``a/b``): ``a/b_dead_letters``."""
    *prefix, name = asset_key.split("/")
    return dg.AssetKey([*prefix, f"{name}_dead_letters"])


def dead_letter_observation(conn: psycopg.Connection, asset_key: str) -> dg.AssetObservation:
    """The observation of the dead letters of the dataset ``asset_key``."""
    counts = status_counts(conn, asset_key)
    totals = {status: sum(c[status] for c in counts.values()) for status in STATUSES}
    ordered = sorted(counts.items(), key=lambda item: item[0], reverse=True)
    listed, unlisted = ordered[:LISTED_PARTITIONS], len(ordered) - LISTED_PARTITIONS
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
    everything = (
        sql.SQL(
            "SELECT partition_key, status, count(*) FROM platform.dead_letter_records"
            " WHERE asset_key = {} GROUP BY 1, 2 ORDER BY 1 DESC"
        )
        .format(sql.Literal(asset_key))
        .as_string()
    )
    return dg.AssetObservation(
        asset_key=dead_letters_key(asset_key),
        description=f"dead letters of {asset_key}",
        metadata={
            "dataset": asset_key,
            **{status: totals[status] for status in STATUSES},
            "partitions_with_letters": len(ordered),
            "partitions_not_listed": max(unlisted, 0),
            "all_partitions_sql": dg.MetadataValue.md(f"```sql\n{everything}\n```"),
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
