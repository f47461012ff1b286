"""Migration chains: whose migrations a deployment runs.

A chain is a package of migration modules with a name. The project's own chain is
``platform_assets.migrations``, the folder where users add theirs. The sample data brings its own
chain, which applies only where the sample's datasets are declared: a deployment of its own
datasets never runs a migration written for tables it does not have. Migrations apply chain by
chain (the sample's first: it comes with the data the project may build on), each in id order.
The ledger records each migration's chain, and order is enforced within a chain: a project's
``0002`` is not out of order because the sample applied a later id. Ids are unique across chains
(they are the ledger's key).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from platform_assets.lib.migrations.model import Migration, discover


@dataclass(frozen=True)
class MigrationChain:
    """A named package of migration modules, applying where its datasets are all declared."""

    name: str
    package: str
    datasets: frozenset[str] = frozenset()

    def missing_datasets(self, declared: Collection[str]) -> list[str]:
        """The datasets this chain needs that the deployment does not declare."""
        return sorted(self.datasets - set(declared))


SAMPLE_CHAIN = MigrationChain(
    "sample", "platform_assets.lib.samples.migrations", frozenset({"customers", "orders"})
)
PROJECT_CHAIN = MigrationChain("project", "platform_assets.migrations")
CHAINS = (SAMPLE_CHAIN, PROJECT_CHAIN)


@dataclass(frozen=True)
class ChainedMigrations:
    """The migrations a deployment applies, in order, and those it knows but does not apply."""

    applicable: list[Migration]
    not_applicable: dict[str, str]  # migration id: why

    @classmethod
    def of(cls, migrations: Sequence[Migration]) -> "ChainedMigrations":
        """Every one of ``migrations`` applicable, in the order given."""
        return cls(list(migrations), {})

    @property
    def known_ids(self) -> frozenset[str]:
        """Every migration id the code knows, applicable here or not: a ledger entry of the
        sample's chain is not "ahead of the code" once the sample's datasets are gone."""
        return frozenset(m.id for m in self.applicable) | frozenset(self.not_applicable)


def chained_migrations(
    declared_datasets: Collection[str], chains: Sequence[MigrationChain] = CHAINS
) -> ChainedMigrations:
    """The chains' migrations for a deployment declaring ``declared_datasets``; ids must be
    unique across chains."""
    applicable: list[Migration] = []
    not_applicable: dict[str, str] = {}
    seen: dict[str, str] = {}
    for chain in chains:
        missing = chain.missing_datasets(declared_datasets)
        for migration in discover(chain.package, chain.name):
            if migration.id in seen:
                raise ValueError(
                    f"migration id {migration.id} is in both the {seen[migration.id]} and the"
                    f" {chain.name} chain: ids are unique across chains (name yours apart)"
                )
            seen[migration.id] = chain.name
            if missing:
                not_applicable[migration.id] = (
                    f"chain {chain.name} needs the datasets {missing}, not declared here"
                )
            else:
                applicable.append(migration)
    return ChainedMigrations(applicable, not_applicable)
