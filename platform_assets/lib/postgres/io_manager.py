"""The Postgres IO manager: pandas frames in and out of warehouse tables, one partition at a time.

Per asset, through definition metadata:

- ``partition_column`` (required for partitioned assets): the column whose value places a row in a
  partition; a time window ``[start, end)`` selects the rows a partition owns.
- ``primary_key`` (optional): list of columns, declared on the table when it is created.
- ``schema`` (optional): the Postgres schema; default is the asset key's prefix, else
  ``default_schema``.
- ``table`` (optional): the table name; default is the asset key's last part.

Writing replaces the partition in one transaction (see ``slice_io``): DELETE exactly the partition's
rows, binary COPY the new ones. An empty frame empties the partition, and says so.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from platform_assets.lib.logging import partition_label, run_logger
from platform_assets.lib.postgres.frames import arrow_to_frame, frame_to_arrow
from platform_assets.lib.postgres.slice_io import prepare_table, read_slice, replace_slice
from platform_assets.lib.postgres.table_slice import TableSlice, TimeRange
from platform_assets.lib.postgres.warehouse import Warehouse


def _table_slice(
    context: dg.OutputContext | dg.InputContext,
    definition_metadata: Mapping[str, Any],
    default_schema: str,
    columns: tuple[str, ...] | None = None,
) -> TableSlice:
    """Where the asset of ``context`` lives, and which of its rows this call concerns."""
    path = context.asset_key.path
    schema = definition_metadata.get("schema") or ("_".join(path[:-1]) or default_schema)
    table = definition_metadata.get("table") or path[-1]
    if not context.has_asset_partitions:
        return TableSlice(schema=schema, table=table, columns=columns)
    partition_column = definition_metadata.get("partition_column")
    if not partition_column:
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()} is partitioned: declare the column that holds "
            "its partition with metadata={'partition_column': '<column>'}"
        )
    if not isinstance(context.asset_partitions_def, dg.TimeWindowPartitionsDefinition):
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()}: the Postgres IO manager supports time-window "
            "partitions only so far"
        )
    window = context.asset_partitions_time_window
    return TableSlice(
        schema=schema,
        table=table,
        partition_column=partition_column,
        time_range=TimeRange(window.start, window.end),
        partition_label=partition_label(context),
        columns=columns,
    )


class PostgresIOManager(dg.ConfigurableIOManager):
    """Stores pandas frames as Postgres tables, replacing exactly the partition being written."""

    warehouse: dg.ResourceDependency[Warehouse]
    default_schema: str = "public"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        """Replace the output's partition (or the whole unpartitioned table) with ``obj``."""
        table_slice = _table_slice(context, context.definition_metadata, self.default_schema)
        primary_key = list(context.definition_metadata.get("primary_key") or [])
        data = frame_to_arrow(obj)
        with self.warehouse.bulk_connection() as conn:
            columns = prepare_table(conn, table_slice, data.schema, primary_key)
            result = replace_slice(conn, table_slice, data, columns)

        log = run_logger(context).bind(table=table_slice.qualified_name)
        if result.rows_inserted == 0:
            log.info("partition_emptied", rows_deleted=result.rows_deleted)
        else:
            log.info(
                "partition_replaced",
                rows_deleted=result.rows_deleted,
                rows_inserted=result.rows_inserted,
            )
        context.add_output_metadata(
            {
                "dagster/table_name": table_slice.qualified_name,
                "dagster/row_count": result.rows_inserted,
                "dagster/partition_row_count": result.rows_inserted,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(c.name, c.pg_type) for c in result.columns]
                ),
                "rows_deleted": result.rows_deleted,
                "rows_inserted": result.rows_inserted,
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Read the upstream partition(s), projected to ``metadata={'columns': [...]}`` if given."""
        upstream = context.upstream_output
        if upstream is None:
            raise dg.DagsterInvariantViolationError("PostgresIOManager loads asset inputs only")
        projection = (context.definition_metadata or {}).get("columns")
        table_slice = _table_slice(
            context,
            upstream.definition_metadata,
            self.default_schema,
            columns=tuple(projection) if projection else None,
        )
        with self.warehouse.bulk_connection() as conn:
            return arrow_to_frame(read_slice(conn, table_slice))
