"""Assets declared as SQL over upstream tables, computed where the data is.

``sql_asset`` builds an asset whose partitions are a ``SELECT`` over its upstream datasets, bound
to the run's partition window: the IO manager replaces the run's partitions with one
``INSERT … SELECT`` in the write's transaction (``lib/io_manager/selected_rows``), so a range of
any length costs one statement and no rows in Python. The query lives in a ``.sql`` file beside
the module declaring it; its upstream tables are named ``{name}`` and the window
``{window_start}``/``{window_end}``. Lineage comes from the declared upstream assets, the column
schema from the declared columns (the same vocabulary as a dataset's YAML), both in the UI
before the first run.
"""

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from platform_assets.lib.ingestion.parsing import arrow_field
from platform_assets.lib.ingestion.spec import ColumnSpec
from platform_assets.lib.io_manager.selected_rows import SelectedRows
from platform_assets.lib.logging import run_logger
from platform_assets.lib.tables.schema import postgres_type
from platform_assets.lib.tables.table_slice import warehouse_table

# What a computed column may declare: its type and what the UI shows. Rules (required, enum,
# min, ...) validate rows read from a source; a query's rows are checked by asset checks instead.
_DECLARABLE = {"name", "type", "description", "tags", "precision", "scale"}


def _declared_columns(key: Sequence[str], columns: Sequence[ColumnSpec]) -> pa.Schema:
    """The columns as the Arrow schema the IO manager creates and checks the table from."""
    for column in columns:
        rules = column.model_fields_set - _DECLARABLE
        if rules:
            raise ValueError(
                f"{'/'.join(key)}: column {column.name} declares {sorted(rules)}; a computed"
                " column declares only its type, description and tags (check rows with an"
                " asset check)"
            )
    return pa.schema([arrow_field(column) for column in columns])


def sql_asset(
    *,
    key: Sequence[str],
    query_file: Path,
    upstream: Mapping[str, Sequence[str]],
    columns: Sequence[ColumnSpec],
    description: str,
    partition_column: str | None = None,
    primary_key: Sequence[str] = (),
    **asset_options: Any,
) -> dg.AssetsDefinition:
    """An asset whose rows are ``query_file``'s ``SELECT`` over the ``upstream`` assets (``{name}``
    in the query: ``name`` to asset key), with ``columns`` declared; ``asset_options`` go to
    ``@dg.asset`` (partitions, backfill policy, automation, pool, group, owners...)."""
    query = query_file.read_text()
    schema = _declared_columns(key, columns)
    tables = {name: warehouse_table(asset_key) for name, asset_key in upstream.items()}
    column_schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                postgres_type(field),
                description=column.description or None,
                tags=column.tags or None,
            )
            for column, field in zip(columns, schema, strict=True)
        ]
    )
    metadata: dict[str, Any] = {
        "primary_key": list(primary_key),
        "query_file": query_file.name,
        "dagster/column_schema": dg.MetadataValue.table_schema(column_schema),
    }
    if partition_column is not None:
        metadata["partition_column"] = partition_column

    @dg.asset(
        key=list(key),
        deps=[dg.AssetKey(list(asset_key)) for asset_key in upstream.values()],
        description=description,
        metadata=metadata,
        kinds={"postgres", "sql"},
        code_version=hashlib.sha256(query.encode()).hexdigest()[:16],  # a new query: stale
        **asset_options,
    )
    def computed_in_sql(context: dg.AssetExecutionContext) -> SelectedRows:
        """The query's rows for the run's partitions, inserted by the IO manager in SQL."""
        partitions = context.partition_key_range if context.has_partition_key_range else None
        run_logger(context).info(
            "rows_selected_in_sql",
            query_file=query_file.name,
            upstream=tables,
            partitions=partitions,
        )
        return SelectedRows(query, tables, schema, str(query_file))

    return computed_in_sql
