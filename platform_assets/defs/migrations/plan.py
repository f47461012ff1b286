"""What a migration run carries from op to op: its configuration and its plan."""

from dataclasses import dataclass, field

import dagster as dg

from platform_assets.lib.migrations.execution import (
    DdlProgress,
    Timeouts,
)
from platform_assets.lib.migrations.model import Migration

STATE_IO_MANAGER = "migration_state"


class MigrateConfig(dg.Config):
    """Run configuration of the migration job."""

    confirm: bool = False
    allow_out_of_order: bool = False
    ignore_lint_rules: list[str] = []
    batch_size: int | None = None
    pause_ms: int | None = None
    lock_timeout_ms: int = 500


@dataclass
class MigrationPlan:
    """What this run does, handed from op to op."""

    migration: Migration | None
    dry_run: bool
    timeouts: Timeouts
    baseline: dict = field(default_factory=dict)
    resume_after: dict | None = None
    ddl_done: frozenset[str] = frozenset()  # DDL statements a resumed run must not redo

    def ddl_progress(self, step: str) -> DdlProgress:
        """The ledger-backed progress of ``step``'s DDL (see ``run_ddl``)."""
        assert self.migration is not None
        return DdlProgress(self.migration.id, step, self.ddl_done)


class MigrationFailed(Exception):
    """A step failed; the message says whether the rollback restored the baseline."""


def applying(plan: MigrationPlan) -> bool:
    """Whether this run changes anything: a migration to apply, and ``confirm: true``."""
    return plan.migration is not None and not plan.dry_run


def why_skipped(plan: MigrationPlan) -> str | None:
    """Why a changing step does nothing in this run (None when it applies): shown on the step,
    so a dry run's steps do not pass for work done."""
    if plan.migration is None:
        return "skipped: no migration to apply"
    if plan.dry_run:
        return "skipped: dry run (launch with confirm: true in the guard's config to apply)"
    return None
