"""A dataset's declared columns as Dagster's column schema, shared by the asset's definition,
its loads (through the IO manager) and the replay job."""

import dagster as dg

from platform_assets.lib.ingestion.spec import DatasetSpec


def declared_column_schema(spec: DatasetSpec) -> dg.TableSchema:
    """The spec's columns as Dagster's column schema: type, description, tags, nullability (what
    the UI shows before the first load, and what each load's stored schema keeps)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=column.description or None,
                constraints=dg.TableColumnConstraints(nullable=not column.required),
                tags=column.tags or None,
            )
            for column in spec.columns
        ]
    )
