"""What the dead-letter queue holds, summed up for people: counts, the rules broken, a sample.

Read by the dead-letter sensor (the partitions whose unresolved letters exceed the dataset's error
budget) and by the observation of the
``platform/dead_letter_records`` asset (counts per partition and status, the rules broken most,
and a sample of letters with the ids a patch or a discard needs).
"""

from dataclasses import dataclass

import psycopg
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import (
    ACCOUNTING,
    DEAD_LETTERS,
    PLATFORM_SCHEMA,
    UNRESOLVED,
)

STATUSES = ("new", "replaying", "resolved", "discarded")
_DLQ = sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS)
# Each failure ``f`` of a dead letter ``d`` (none for a record that could not be read) ...
FAILURES_OF_LETTER = sql.SQL(
    "LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(d.error_detail->'failures')"
    " = 'array' THEN d.error_detail->'failures' ELSE '[]'::jsonb END) f ON true"
)
# ... and the rule it broke: "column:check", else its check, else the letter's error class.
RULE_BROKEN = sql.SQL(
    "coalesce((f->>'column') || ':' || (f->>'check'), f->>'check', d.error_class)"
)


@dataclass(frozen=True)
class LetterSample:
    """One dead letter as a person needs it to patch or discard it."""

    id: int
    partition_key: str
    stage: str
    source_ref: str | None
    error_message: str


def _exists(conn: psycopg.Connection) -> bool:
    found = conn.execute("SELECT to_regclass(%s)", (f"{PLATFORM_SCHEMA}.{DEAD_LETTERS}",))
    return found.fetchone()[0] is not None


@dataclass(frozen=True)
class OverBudget:
    """A dataset's partitions whose unresolved letters exceed its error budget (a share of the
    rows read): how many, the letters in them, and the worst few with their share."""

    asset_key: str
    partitions: int
    unresolved: int
    worst: dict[str, float]


def over_budget(
    conn: psycopg.Connection, budgets: dict[str, float], default: float, worst: int = 5
) -> list[OverBudget]:
    """Every dataset with a partition whose unresolved letters are more than its budget
    (``budgets`` by asset key, else ``default``) of the rows the partition's loads read."""
    accounted = conn.execute(
        "SELECT to_regclass(%s)", (f"{PLATFORM_SCHEMA}.{ACCOUNTING}",)
    ).fetchone()[0]
    if not _exists(conn) or accounted is None:
        return []
    query = sql.SQL(
        "WITH letters AS (SELECT asset_key, partition_key, count(*) AS unresolved FROM {dlq}"
        " WHERE status = ANY(%(unresolved)s) GROUP BY asset_key, partition_key),"
        " over AS (SELECT l.asset_key, l.partition_key, l.unresolved,"
        " l.unresolved::float8 / greatest(a.rows_read, 1) AS share"
        " FROM letters l JOIN {accounting} a USING (asset_key, partition_key)"
        " LEFT JOIN unnest(%(keys)s::text[], %(ratios)s::float8[]) AS b(asset_key, ratio)"
        " USING (asset_key)"
        " WHERE l.unresolved > a.rows_read * coalesce(b.ratio, %(default)s)),"
        " ranked AS (SELECT *, row_number() OVER (PARTITION BY asset_key ORDER BY share DESC,"
        " partition_key) AS place FROM over)"
        " SELECT asset_key, count(*), sum(unresolved), jsonb_object_agg(partition_key,"
        " round(share::numeric, 4)) FILTER (WHERE place <= %(worst)s)"
        " FROM ranked GROUP BY asset_key ORDER BY asset_key"
    ).format(dlq=_DLQ, accounting=sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING))
    rows = conn.execute(
        query,
        {
            "unresolved": list(UNRESOLVED),
            "keys": list(budgets),
            "ratios": list(budgets.values()),
            "default": default,
            "worst": worst,
        },
    ).fetchall()
    return [
        OverBudget(key, int(partitions), int(letters), {k: float(v) for k, v in shares.items()})
        for key, partitions, letters, shares in rows
    ]


def status_counts(conn: psycopg.Connection, asset_key: str) -> dict[str, dict[str, int]]:
    """``{partition key: {status: letters}}`` of one dataset, every status present (0 if none)."""
    if not _exists(conn):
        return {}
    query = sql.SQL(
        "SELECT partition_key, status, count(*) FROM {} WHERE asset_key = %s"
        " GROUP BY partition_key, status ORDER BY partition_key"
    ).format(_DLQ)
    counts: dict[str, dict[str, int]] = {}
    for partition_key, status, n in conn.execute(query, (asset_key,)).fetchall():
        counts.setdefault(partition_key, dict.fromkeys(STATUSES, 0))[status] = int(n)
    return counts


def top_rules(conn: psycopg.Connection, asset_key: str, limit: int) -> dict[str, int]:
    """The rules the dataset's unresolved letters break most, with how many letters each."""
    if not _exists(conn):
        return {}
    query = sql.SQL(
        "SELECT {rule}, count(*) FROM {dlq} d {failures} WHERE d.asset_key = %s"
        " AND d.status = ANY(%s) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s"
    ).format(rule=RULE_BROKEN, dlq=_DLQ, failures=FAILURES_OF_LETTER)
    rows = conn.execute(query, (asset_key, list(UNRESOLVED), limit)).fetchall()
    return {rule: int(n) for rule, n in rows}


def letter_sample(conn: psycopg.Connection, asset_key: str, limit: int) -> list[LetterSample]:
    """The dataset's most recent unresolved letters, newest first."""
    if not _exists(conn):
        return []
    query = sql.SQL(
        "SELECT id, partition_key, stage, source_ref, error_message FROM {}"
        " WHERE asset_key = %s AND status = ANY(%s) ORDER BY id DESC LIMIT %s"
    ).format(_DLQ)
    rows = conn.execute(query, (asset_key, list(UNRESOLVED), limit)).fetchall()
    return [LetterSample(*row) for row in rows]


def run_letter_samples(
    conn: psycopg.Connection, asset_key: str, run_id: str, partition_keys: list[str], limit: int
) -> dict[str, list[LetterSample]]:
    """Per partition, the first ``limit`` letters run ``run_id`` dead-lettered (by id), in one
    query however many partitions it wrote: each day's materialisation shows its own."""
    if not _exists(conn):
        return {}
    query = sql.SQL(
        "SELECT id, partition_key, stage, source_ref, error_message FROM ("
        " SELECT *, row_number() OVER (PARTITION BY partition_key ORDER BY id) AS place FROM {}"
        " WHERE asset_key = %s AND run_id = %s AND partition_key = ANY(%s)) d"
        " WHERE place <= %s ORDER BY partition_key, id"
    ).format(_DLQ)
    samples: dict[str, list[LetterSample]] = {}
    for row in conn.execute(query, (asset_key, run_id, partition_keys, limit)).fetchall():
        letter = LetterSample(*row)
        samples.setdefault(letter.partition_key, []).append(letter)
    return samples
