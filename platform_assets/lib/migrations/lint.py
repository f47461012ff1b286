"""Lint migration SQL with squawk, the real linter, fed each statement as the job runs it.

The ``migrate`` job runs every statement in its own transaction after ``SET LOCAL lock_timeout``
and ``statement_timeout`` (a ``CONCURRENTLY`` one on its own, the timeouts set for the session),
so squawk reads exactly that (and therefore does not flag timeouts or
transactions the job provides). Backfill placeholders (``%(after)s``, ``%(limit)s``) are read as
literals. A statement that is safe in its context says so in its own SQL, the way squawk reads
it: a ``-- squawk-ignore <rule>`` comment above it, shown in the dry run with the statement.

Our own rules cover only what squawk does not know: a statement switching the lock timeout off,
and a dropped column the migration did not declare in ``destroys_columns`` (a declared one is
backed up first, so squawk's ``ban-drop-column`` is satisfied).
"""

import bisect
import json
import re
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from platform_assets.lib.migrations.execution import OUTSIDE_A_TRANSACTION, Timeouts
from platform_assets.lib.migrations.model import Migration

SQUAWK = Path(sysconfig.get_path("scripts")) / "squawk"
_PLACEHOLDERS = {"%(after)s": "0", "%(limit)s": "1000"}
_DROP_COLUMN = re.compile(r"\bDROP\s+COLUMN\s+(IF\s+EXISTS\s+)?\"?(\w+)\"?", re.I)
_LOCK_TIMEOUT_OFF = re.compile(r"\bSET\s+(LOCAL\s+)?lock_timeout\s*(=|TO)\s*'?0'?\b", re.I)


class LinterUnavailable(RuntimeError):
    """squawk could not be run: a broken installation, not a finding."""


@dataclass(frozen=True)
class Finding:
    """One risky statement and why: ``rule`` is squawk's rule name, or one of ours."""

    rule: str
    statement: str
    message: str


def postgres_version(server_version: int) -> str:
    """libpq's ``server_version`` (``160004``) as squawk's ``--pg-version`` (``16.4``)."""
    return f"{server_version // 10000}.{server_version % 10000}"


def lint(migration: Migration, timeouts: Timeouts, pg_version: str) -> list[Finding]:
    """Findings for the migration's forward statements; an empty list means nothing risky."""
    statements = [statement.strip() for statement in migration.statements()]
    findings = [
        finding
        for finding in _squawk(statements, timeouts, pg_version)
        if not _backed_up_drop(finding, migration.destroys_columns)
    ]
    findings += [
        Finding(
            "lock-timeout-disabled",
            statement,
            "DDL must run under a lock_timeout so it never queues behind (and ahead of) traffic",
        )
        for statement in statements
        if _LOCK_TIMEOUT_OFF.search(statement)
    ]
    return findings


def _as_executed(statements: list[str], timeouts: Timeouts) -> tuple[str, list[int]]:
    """The SQL document squawk reads, and the 0-based line each statement's block starts at."""
    lines: list[str] = []
    starts: list[int] = []
    for statement in statements:
        for placeholder, literal in _PLACEHOLDERS.items():
            statement = statement.replace(placeholder, literal)
        starts.append(len(lines))
        if OUTSIDE_A_TRANSACTION.search(statement):  # run on its own, the timeouts for the session
            lines += [
                f"SET lock_timeout = '{timeouts.lock_timeout_ms}ms';",
                f"SET statement_timeout = '{timeouts.statement_timeout_ms}ms';",
                *statement.splitlines(),
                ";",
                "RESET lock_timeout;",
                "RESET statement_timeout;",
            ]
            continue
        lines += [
            "BEGIN;",
            f"SET LOCAL lock_timeout = '{timeouts.lock_timeout_ms}ms';",
            f"SET LOCAL statement_timeout = '{timeouts.statement_timeout_ms}ms';",
            *statement.splitlines(),
            ";",
            "COMMIT;",
        ]
    return "\n".join(lines) + "\n", starts


def _squawk(statements: list[str], timeouts: Timeouts, pg_version: str) -> list[Finding]:
    if not statements:
        return []
    document, starts = _as_executed(statements, timeouts)
    try:
        ran = subprocess.run(
            [str(SQUAWK), "--reporter", "json", "--pg-version", pg_version],
            input=document,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as error:
        raise LinterUnavailable(f"squawk could not run ({SQUAWK}): {error}") from error
    if ran.returncode not in (0, 1) or not ran.stdout.strip().startswith("["):
        raise LinterUnavailable(f"squawk failed (exit {ran.returncode}): {ran.stderr.strip()}")
    findings = []
    for reported in json.loads(ran.stdout):
        index = max(bisect.bisect_right(starts, reported["line"]) - 1, 0)
        message = reported["message"]
        if reported.get("help"):
            message += f" {reported['help']}"
        findings.append(Finding(reported["rule_name"], statements[index], message))
    return findings


def _backed_up_drop(finding: Finding, destroys_columns: list[str]) -> bool:
    """Whether ``finding`` is squawk's ``ban-drop-column`` on a column the migration declared
    destroyed (and so backs up before dropping it)."""
    dropped = _DROP_COLUMN.search(finding.statement)
    return (
        finding.rule == "ban-drop-column"
        and dropped is not None
        and dropped.group(2) in destroys_columns
    )
