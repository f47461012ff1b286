"""Lint migration SQL for statements that lock or rewrite big tables (rules like squawk's)."""

import re
from dataclasses import dataclass

from platform_assets.lib.migrations.model import Migration


@dataclass(frozen=True)
class Finding:
    """One risky statement and why."""

    rule: str
    statement: str
    message: str


_RULES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "non-concurrent-index",
        re.compile(r"\bCREATE\s+(UNIQUE\s+)?INDEX\b(?!\s+CONCURRENTLY)", re.I),
        "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
    ),
    (
        "not-null-column-without-default",
        re.compile(r"\bADD\s+COLUMN\b(?![^;]*\bDEFAULT\b)[^;]*\bNOT\s+NULL\b", re.I),
        "ADD COLUMN … NOT NULL without a default fails on a non-empty table",
    ),
    (
        "volatile-default",
        re.compile(
            r"\bDEFAULT\s+(now|clock_timestamp|random|gen_random_uuid|uuid_generate_v4)\s*\(",
            re.I,
        ),
        "a volatile default on ADD COLUMN rewrites the whole table",
    ),
    (
        "type-change-rewrite",
        re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I),
        "changing a column's type usually rewrites the table; add, migrate and swap instead",
    ),
    (
        "constraint-without-not-valid",
        re.compile(
            r"\bADD\s+CONSTRAINT\b(?=[^;]*\b(CHECK|FOREIGN\s+KEY)\b)(?![^;]*\bNOT\s+VALID\b)", re.I
        ),
        "adding a CHECK or FOREIGN KEY without NOT VALID scans the table under a strong lock",
    ),
    (
        "lock-timeout-disabled",
        re.compile(r"\bSET\s+(LOCAL\s+)?lock_timeout\s*(=|TO)\s*'?0'?\b", re.I),
        "DDL must run under a lock_timeout so it never queues behind (and ahead of) traffic",
    ),
]
_DROP_COLUMN = re.compile(r"\bDROP\s+COLUMN\s+(IF\s+EXISTS\s+)?\"?(\w+)\"?", re.I)
_SET_NOT_NULL = re.compile(r"\bALTER\s+COLUMN\s+\"?(\w+)\"?\s+SET\s+NOT\s+NULL\b", re.I)


def lint(migration: Migration) -> list[Finding]:
    """Findings for the migration's forward statements; an empty list means nothing risky."""
    findings = []
    statements = migration.statements()
    for index, statement in enumerate(statements):
        for rule, pattern, message in _RULES:
            if pattern.search(statement):
                findings.append(Finding(rule, statement.strip(), message))
        dropped = _DROP_COLUMN.search(statement)
        if dropped and dropped.group(2) not in migration.destroys_columns:
            findings.append(
                Finding(
                    "drop-column-without-backup",
                    statement.strip(),
                    f"column {dropped.group(2)} is dropped but not declared in destroys_columns,"
                    " so no backup is taken",
                )
            )
        not_null = _SET_NOT_NULL.search(statement)
        if not_null and not any(
            re.search(
                rf'CHECK\s*\(\s*"?{not_null.group(1)}"?\s+IS\s+NOT\s+NULL\s*\)', earlier, re.I
            )
            for earlier in statements[:index]
        ):
            findings.append(
                Finding(
                    "set-not-null-without-check",
                    statement.strip(),
                    "SET NOT NULL scans the table under an exclusive lock unless a validated"
                    " CHECK (col IS NOT NULL) exists first",
                )
            )
    return findings
