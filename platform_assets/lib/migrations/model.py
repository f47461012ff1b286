"""What a migration is: SQL steps and checks, in a module of a migration chain's package
(``chains.py``: the project's ``platform_assets.migrations``, the sample's).

Steps are SQL so that a dry run can show exactly what would run and the linter can read it. Each
migration module defines ``MIGRATION``; its id orders it within its chain, and the sha256 of its
source is what the ledger records and later compares.
"""

import hashlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

# The id prefix of migrations planned from a dataset's spec (``defs/migrations/spec_changes``)
# rather than written as modules: once applied, they are in the ledger but no longer planned.
PLANNED_PREFIX = "spec_"
# The chain the ledger records for them.
SPEC_CHAIN = "spec"


@dataclass(frozen=True)
class Check:
    """A query returning one boolean: true means the check passed."""

    description: str
    query: str


# A migration's table key: one column's name, the columns of a composite key, or () for a table
# without one (its backfills then go by physical row order: ``batches.py``).
Key = str | tuple[str, ...]


def key_columns(key: Key) -> tuple[str, ...]:
    """The key's columns, in order."""
    return (key,) if isinstance(key, str) else tuple(key)


# How a backfill's statement reports each batch (``BatchedUpdate.reports``).
REPORTS_KEYS = "keys"
REPORTS_POSITION = "position"


@dataclass(frozen=True)
class BatchedUpdate:
    """A batched backfill: ``statement`` updates the next pending rows (at most ``%(limit)s``),
    taking them with ``FOR UPDATE SKIP LOCKED``; ``remaining`` counts rows still to do. Rows
    skipped because an application held them are picked up by a final sweep. Two contracts:

    - ``reports="keys"`` (as hand-written migrations do): a table with a one-column integer key;
      ``%(after)s`` is the last key done and the statement returns the keys it updated.
    - ``reports="position"`` (the patterns, ``batches.py``): any key or none; ``%(after)s`` is the
      position reached (``jsonb``, NULL at the start) and the statement returns one row, the rows
      it updated and the position to continue after (NULL at the end).
    """

    statement: str
    remaining: str
    batch_size: int = 10_000
    pause_s: float = 0.05
    reports: str = REPORTS_KEYS


@dataclass(frozen=True)
class Migration:
    """One migration: where it applies, its steps, and how to undo and verify it."""

    id: str
    description: str
    schema: str
    table: str
    key: Key
    forward: list[str]
    down: list[str]
    pre_checks: list[Check] = field(default_factory=list)
    backfill: BatchedUpdate | None = None
    constraints: list[str] = field(default_factory=list)
    validate: list[Check] = field(default_factory=list)
    destroys_columns: list[str] = field(default_factory=list)
    source_sha256: str = ""
    # Its chain (``chains.py``), or SPEC_CHAIN: set by ``discover`` or the planner, not written in
    # the module (whose source the ledger fingerprints).
    chain: str = ""

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The table key's columns, in order (none for a table without a key)."""
        return key_columns(self.key)

    def statements(self) -> list[str]:
        """Every statement the migration would run forward, in order (for dry runs and lint)."""
        backfill = [self.backfill.statement] if self.backfill else []
        return [*self.forward, *backfill, *self.constraints]


def _load(module: ModuleType, chain: str) -> Migration:
    migration = module.MIGRATION
    if not isinstance(migration, Migration):
        raise TypeError(f"{module.__name__}.MIGRATION is not a Migration")
    digest = hashlib.sha256(inspect.getsource(module).encode()).hexdigest()
    return Migration(**{**migration.__dict__, "source_sha256": digest, "chain": chain})


def discover(package: str, chain: str) -> list[Migration]:
    """Every migration in ``package`` (the chain ``chain``), ordered by id; ids must be unique."""
    root = importlib.import_module(package)
    migrations = [
        _load(importlib.import_module(f"{package}.{info.name}"), chain)
        for info in pkgutil.iter_modules(root.__path__)
        if not info.name.startswith("_")
    ]
    ids = [m.id for m in migrations]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate migration ids in {package}: {sorted(ids)}")
    return sorted(migrations, key=lambda m: m.id)
