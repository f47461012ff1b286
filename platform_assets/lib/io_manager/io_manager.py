"""The Postgres IO manager: pandas frames (or rows a SQL ``SELECT`` computes in the warehouse,
``SelectedRows``) in and out of warehouse tables, exactly per partition.

Configured per asset through definition metadata (see docs/io-manager.md for examples):

- ``partition_column``: the column holding a row's partition (time-window, static and dynamic
  partitions); for multi-partitions ``partition_columns``: ``{dimension: column}``.
- ``write_mode``: ``replace_partition`` (default when partitioned), ``replace_table`` (default
  otherwise), ``upsert`` or ``append``.
- ``primary_key``: list of columns (required by ``upsert``); ``indexes``: list of column lists;
- ``required_columns``: the columns that may hold no null: NOT NULL in a new table (the key's
  columns always are), and a NOT NULL no longer required is dropped from an existing one;
  ``partition_index``: ``btree`` (default) or ``brin`` for the partition column(s).
- ``row_hash_columns``: the columns ``_row_hash`` covers (default: all of the frame's).
- ``native_partitions``: ``True`` creates the table as a Postgres-native partitioned table, one
  native partition per Dagster partition, replaced by a swap (see ``native_partitions``).
- ``bulk_load_min_rows``: the fewest rows a ``replace_partition`` or ``append`` write loads before
  it may rebuild the table's indexes instead of maintaining them (see ``bulk_load``; ``None``:
  never); overrides the IO manager's own.
- ``schema`` / ``table``: override the names (default: the asset key's prefix / last part).
- ``incremental_by``: ``{updated_at_column, updated_at_type, key_column}`` of an incremental
  extract (an unpartitioned ``upsert`` of the changes since the last run; the type is
  ``timestamptz`` or ``timestamp``): its dead letters and figures add to the earlier runs', and
  letters whose row it stores at a later version are discarded as superseded (``superseded``).

and per IO manager through its config (``default_schema``, ``write_mode``, timeouts,
``bulk_load_min_rows``). Inputs may set ``columns`` (projection) and ``include_row_hash`` in
``dg.AssetIn(metadata=...)``.
"""

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import version
from typing import Any

import dagster as dg
import pandas as pd
import structlog

from platform_assets.lib.dead_letters.observation import SAMPLE_LETTERS, dead_letter_observation
from platform_assets.lib.dead_letters.queue_summary import LetterSample, run_letter_samples
from platform_assets.lib.dead_letters.side_writes import (
    TOP_RULES,
    AccountingWrite,
    CheckpointWrite,
    DeadLetterWrite,
    SideWrite,
)
from platform_assets.lib.dead_letters.superseded import SupersededLetterDiscard
from platform_assets.lib.frames import arrow_to_frame, frame_to_arrow_chunks
from platform_assets.lib.ingestion.result import (
    IngestedChunk,
    IngestedFrame,
    IngestedStream,
    no_dead_letters,
)
from platform_assets.lib.io_manager.read_slice import read_slice
from platform_assets.lib.io_manager.selected_rows import SelectedRows
from platform_assets.lib.io_manager.table_preparation import prepare_table
from platform_assets.lib.io_manager.write_request import WriteMode, WriteRequest, WriteResult
from platform_assets.lib.io_manager.write_slice import write_slice
from platform_assets.lib.logging import run_logger
from platform_assets.lib.row_hash import ROW_HASH_COLUMN
from platform_assets.lib.tables.bulk_load import BULK_LOAD_MIN_ROWS
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.native_partitions import NATIVE_PARTITIONS_METADATA
from platform_assets.lib.tables.reader_access import PII_COLUMNS_METADATA
from platform_assets.lib.tables.schema import Column
from platform_assets.lib.tables.table_slice import (
    PartitionSlice,
    TableSlice,
    TimeRange,
    warehouse_table,
)
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transient import (
    TRANSIENT_ATTEMPTS,
    permanent_unless_transient,
    retry_transient,
)

CODE_VERSION = f"platform_assets {version('platform_assets')}"  # stamped on every dead letter


def _chunk_source(
    obj: pd.DataFrame | IngestedFrame | IngestedStream | SelectedRows,
) -> Callable[[], Iterator[IngestedChunk]]:
    """How to read ``obj`` as chunks from the start. A frame is converted to Arrow a slice at a
    time as the write pulls it; its dead letters, rows read and checkpoint go with the first.
    Selected rows have none: the database inserts them."""
    if isinstance(obj, IngestedStream):
        return obj.read_chunks
    if isinstance(obj, SelectedRows):
        return lambda: iter(())
    frame = obj.rows if isinstance(obj, IngestedFrame) else obj

    def read_chunks() -> Iterator[IngestedChunk]:
        tables = frame_to_arrow_chunks(frame.drop(columns=[ROW_HASH_COLUMN], errors="ignore"))
        yield IngestedChunk(
            rows=next(tables),
            dead_letters=obj.dead_letters if isinstance(obj, IngestedFrame) else no_dead_letters(),
            rows_read=obj.rows_read if isinstance(obj, IngestedFrame) else {},
            checkpoint=obj.checkpoint if isinstance(obj, IngestedFrame) else None,
        )
        for rows in tables:
            yield IngestedChunk(rows=rows, dead_letters=no_dead_letters(), rows_read={})

    return read_chunks


def _known_rows(obj: pd.DataFrame | IngestedFrame | IngestedStream | SelectedRows) -> int | None:
    """How many rows ``obj`` will write, if known before reading it (a stream's or a query's
    are not)."""
    if isinstance(obj, IngestedStream | SelectedRows):
        return None
    return len(obj.rows if isinstance(obj, IngestedFrame) else obj)


def _prepend(first: IngestedChunk, rest: Iterator[IngestedChunk]) -> Iterator[IngestedChunk]:
    """``first`` then ``rest``, holding no reference to ``first`` once it has been consumed."""
    held = [first]
    del first
    yield held.pop()
    yield from rest


def column_schema(columns: list[Column], declared: Mapping[str, dg.TableColumn]) -> dg.TableSchema:
    """The stored columns as Dagster's column schema (their Postgres types and whether the table
    allows nulls in them), with what the asset declares of each: its description and tags."""
    stored = []
    for column in columns:
        about = declared.get(column.name)
        stored.append(
            dg.TableColumn(
                column.name,
                column.pg_type,
                description=about.description if about else None,
                constraints=dg.TableColumnConstraints(nullable=not column.not_null),
                tags=about.tags if about else None,
            )
        )
    return dg.TableSchema(columns=stored)


def declared_columns(metadata: Mapping[str, Any]) -> dict[str, dg.TableColumn]:
    """``{column: TableColumn}`` from the asset's declared ``dagster/column_schema``, if any."""
    declared = metadata.get("dagster/column_schema")
    schema = getattr(declared, "schema", declared)
    columns = schema.columns if isinstance(schema, dg.TableSchema) else []
    return {column.name: column for column in columns}


def _invalid(context: dg.OutputContext | dg.InputContext, message: str) -> Exception:
    return dg.DagsterInvariantViolationError(f"{context.asset_key.to_user_string()}: {message}")


def _partitions(
    context: dg.OutputContext | dg.InputContext, metadata: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[PartitionSlice, ...]]:
    """The partition columns, and the exact partitions this call concerns."""
    partitions_def = context.asset_partitions_def
    keys = context.asset_partition_keys
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        by_dimension = metadata.get("partition_columns") or {}
        dimensions = [d.name for d in partitions_def.partitions_defs]
        if set(by_dimension) != set(dimensions):
            raise _invalid(
                context,
                f"multi-partitioned: declare metadata={{'partition_columns': {{<dimension>: "
                f"<column>}}}} for the dimensions {dimensions}",
            )
        return tuple(by_dimension[d] for d in dimensions), tuple(
            PartitionSlice(key=key, values=tuple(key.keys_by_dimension[d] for d in dimensions))
            for key in keys
        )
    column = metadata.get("partition_column")
    if not column:
        raise _invalid(context, "partitioned: declare metadata={'partition_column': '<column>'}")
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        windows = [partitions_def.time_window_for_partition_key(key) for key in keys]
        return (column,), tuple(
            PartitionSlice(key=key, window=TimeRange(w.start, w.end))
            for key, w in zip(keys, windows, strict=True)
        )
    return (column,), tuple(PartitionSlice(key=key, values=(key,)) for key in keys)


def table_slice_for(
    context: dg.OutputContext | dg.InputContext,
    metadata: Mapping[str, Any],
    default_schema: str,
    columns: tuple[str, ...] | None = None,
) -> TableSlice:
    """Where the asset of ``context`` lives, and exactly which partitions this call concerns."""
    path = context.asset_key.path
    default = warehouse_table(path, default_schema)
    schema = metadata.get("schema") or default[0]
    table = metadata.get("table") or default[1]
    if not context.has_asset_partitions:
        return TableSlice(schema=schema, table=table, columns=columns)
    partition_columns, partitions = _partitions(context, metadata)
    return TableSlice(schema, table, partition_columns, partitions, columns)


def _partition_ingestion_figures(
    written: AccountingWrite, key: str, log: structlog.stdlib.BoundLogger, one_of_many: bool
) -> dict[str, Any]:
    """Partition ``key``'s own rules broken (the most broken) and landing files' lines, for its
    metadata; logged when it has dead letters (at debug level when ``one_of_many`` partitions
    were written: their run has a summary line, and each day's page its own figures)."""
    figures: dict[str, Any] = {}
    rules = written.rules_broken.get(key)
    if rules:
        top = dict(rules.most_common(TOP_RULES))
        rejected = written.figures.get(key, {}).get("rows_dead_lettered", 0)
        emit = log.debug if one_of_many else log.warning
        emit("rows_dead_lettered", partition_key=key, rows=rejected, top_rules_broken=top)
        figures["top_rules_broken"] = dg.MetadataValue.json(top)
    files = written.file_lines.get(key)
    if files:
        figures["landing_file_lines"] = dg.MetadataValue.json(
            {
                name: {
                    "data_lines": lines.data_lines,
                    "lines_loaded": lines.lines_loaded,
                    "lines_dead_lettered": lines.lines_dead_lettered,
                    **({"completeness_checks": lines.checks} if lines.checks else {}),
                }
                for name, lines in sorted(files.items())
            }
        )
    return figures


def _sample_table(letters: list[LetterSample]) -> dg.MetadataValue:
    """A partition's first dead letters as a table: the ids a patch or a discard takes, where
    each row came from and why it was refused."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "id": letter.id,
                    "source_ref": letter.source_ref or "",
                    "error": letter.error_message[:300],
                }
            )
            for letter in letters
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("id", "int"),
                dg.TableColumn("source_ref", "string"),
                dg.TableColumn("error", "string"),
            ]
        ),
    )


def _log_range_summary(
    log: structlog.stdlib.BoundLogger,
    table_slice: TableSlice,
    result: WriteResult,
    written: AccountingWrite | None,
) -> None:
    """One line for a write of several partitions: their totals (a warning when any partition
    has dead letters, naming how many)."""
    totals: dict[str, int] = {}
    for key in result.row_counts:
        for name, value in {
            **result.changes(key),
            **(written.figures.get(key, {}) if written else {}),
        }.items():
            totals[name] = totals.get(name, 0) + int(value)
    with_letters = sum(1 for key in result.row_counts if written and written.rules_broken.get(key))
    emit = log.warning if with_letters else log.info
    emit(
        "partitions_written",
        partitions=table_slice.label,
        row_count=sum(result.row_counts.values()),
        partitions_with_dead_letters=with_letters,
        **totals,
    )


class PostgresIOManager(dg.ConfigurableIOManager):
    """Stores pandas frames in Postgres tables (per-partition replace, upsert, append or swap),
    and replaces partitions with rows computed in SQL."""

    warehouse: dg.ResourceDependency[Warehouse]
    default_schema: str = "public"
    write_mode: WriteMode | None = None
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    transient_attempts: int = TRANSIENT_ATTEMPTS
    bulk_load_min_rows: int | None = BULK_LOAD_MIN_ROWS

    def _write_mode(self, context: dg.OutputContext, table_slice: TableSlice) -> WriteMode:
        declared = context.definition_metadata.get("write_mode") or self.write_mode
        if declared is None:
            return (
                WriteMode.REPLACE_PARTITION
                if table_slice.is_partitioned
                else WriteMode.REPLACE_TABLE
            )
        try:
            mode = WriteMode(declared)
        except ValueError as unknown:
            choices = [m.value for m in WriteMode]
            message = f"unknown write_mode {declared!r}; choose one of {choices}"
            raise _invalid(context, message) from unknown
        if mode is WriteMode.REPLACE_TABLE and table_slice.is_partitioned:
            raise _invalid(context, "replace_table is for unpartitioned assets")
        return mode

    def _settings(self) -> dict[str, str]:
        settings = {}
        if self.lock_timeout_ms is not None:
            settings["lock_timeout"] = f"{self.lock_timeout_ms}ms"
        if self.statement_timeout_ms is not None:
            settings["statement_timeout"] = f"{self.statement_timeout_ms}ms"
        return settings

    def handle_output(
        self,
        context: dg.OutputContext,
        obj: pd.DataFrame | IngestedFrame | IngestedStream | SelectedRows,
    ) -> None:
        """Write ``obj`` to the output's partitions (or table) in one transaction.

        ``SelectedRows`` replace the partitions (or the table) with what a ``SELECT`` computes in
        the warehouse, without the rows leaving it (``selected_rows``).

        An ``IngestedFrame`` or ``IngestedStream`` also writes its dead letters and the partitions'
        accounting in that same transaction, and refuses to commit if rows read != loaded +
        dead-lettered. A stream is written chunk by chunk, so memory stays bounded by one chunk.
        """
        metadata = context.definition_metadata
        table_slice = table_slice_for(context, metadata, self.default_schema)
        mode = self._write_mode(context, table_slice)
        if isinstance(obj, SelectedRows) and (
            mode not in (WriteMode.REPLACE_PARTITION, WriteMode.REPLACE_TABLE)
            or metadata.get(NATIVE_PARTITIONS_METADATA)
        ):
            raise _invalid(
                context,
                f"rows from SQL replace their partitions or table; write_mode {mode.value}"
                " and native_partitions are for frames",
            )
        side_writes = self._ingestion_side_writes(context, table_slice, obj, mode)
        read_chunks = _chunk_source(obj)
        known_rows = _known_rows(obj)
        bulk_load_min_rows = metadata.get("bulk_load_min_rows", self.bulk_load_min_rows)

        def write() -> WriteResult:
            # One transaction per attempt: a retried write reads its source again and starts
            # from scratch on a fresh connection (a broken one never goes back to the pool).
            chunks = read_chunks()
            first = None if isinstance(obj, SelectedRows) else next(chunks, None)
            if first is None and not isinstance(obj, SelectedRows):
                raise _invalid(context, "the stream gave no chunk (an empty one means no rows)")
            data_schema = obj.columns if isinstance(obj, SelectedRows) else first.rows.schema  # type: ignore[union-attr]
            request = WriteRequest(
                table_slice=table_slice,
                data_schema=data_schema,
                mode=mode,
                hash_columns=list(metadata.get("row_hash_columns") or data_schema.names),
                primary_key=list(metadata.get("primary_key") or []),
                required=(
                    None
                    if metadata.get("required_columns") is None
                    else tuple(metadata["required_columns"])
                ),
                indexes=[list(columns) for columns in metadata.get("indexes") or []],
                partition_index=metadata.get("partition_index", "btree"),
                side_writes=side_writes,
                settings=self._settings(),
                expected_rows=(
                    known_rows
                    if known_rows is not None
                    else (0 if first is None else first.rows.num_rows)
                ),
                native_partitions=bool(metadata.get(NATIVE_PARTITIONS_METADATA)),
                bulk_load_min_rows=bulk_load_min_rows,
                run_id=context.run_id,
                hidden_from_reader=list(metadata.get(PII_COLUMNS_METADATA) or []),
                selected=obj if isinstance(obj, SelectedRows) else None,
            )
            with self.warehouse.bulk_connection() as conn:
                prepared = prepare_table(conn, request)
                if prepared.recreated is not None:
                    log.warning(
                        "empty_table_recreated",
                        reason=prepared.recreated,
                        detail="the table held no row, so it was created anew as declared",
                    )
                if prepared.widened:
                    log.warning(
                        "columns_widened",
                        columns={column.name: column.pg_type for column in prepared.widened},
                        detail="the declared types hold more than the table did; widened in"
                        " place, no stored value changed",
                    )
                return write_slice(
                    conn, request, prepared, chunks if first is None else _prepend(first, chunks)
                )

        log = run_logger(context).bind(table=table_slice.qualified_name)
        with permanent_unless_transient(context.asset_key.to_user_string()):
            result = retry_transient(write, log, self.transient_attempts)
        accounting = [w for w in side_writes if isinstance(w, AccountingWrite)]
        samples = self._letter_samples(context, accounting)
        self._report(context, table_slice, mode, result, accounting, samples)
        if accounting:
            with self.warehouse.connection() as conn:
                context.log_event(dead_letter_observation(conn, context.asset_key.to_user_string()))
        for side_write in side_writes:
            if isinstance(side_write, CheckpointWrite) and side_write.written is not None:
                context.add_output_metadata(
                    {"high_water": dg.MetadataValue.json(side_write.written.high_water)}
                )
            if isinstance(side_write, SupersededLetterDiscard):
                context.add_output_metadata({"superseded_dead_letters": side_write.discarded})

    @staticmethod
    def _ingestion_side_writes(
        context: dg.OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame | IngestedFrame | IngestedStream,
        mode: WriteMode,
    ) -> tuple[SideWrite, ...]:
        """The dead letters, accounting and checkpoint an ingested write commits with its rows.

        An ``append`` or an incremental extract adds to what the table holds, so its dead
        letters join the earlier ones and its figures add to the partition's; any other mode
        replaces both.
        """
        if not isinstance(obj, IngestedFrame | IngestedStream):
            return ()
        asset_key = context.asset_key.to_user_string()
        keys = [p.key for p in table_slice.partitions] or [WHOLE_TABLE]
        incremental_by = context.definition_metadata.get("incremental_by")
        adds = mode == "append" or bool(incremental_by)
        writes: list[SideWrite] = [
            DeadLetterWrite(
                asset_key=asset_key,
                partition_keys=keys,
                run_id=context.run_id,
                code_version=CODE_VERSION,
                adds=adds,
            ),
            AccountingWrite(asset_key=asset_key, run_id=context.run_id, adds=adds),
            CheckpointWrite(run_id=context.run_id),
        ]
        if incremental_by:
            writes.append(
                SupersededLetterDiscard(
                    asset_key,
                    WHOLE_TABLE,
                    table_slice,
                    incremental_by["key_column"],
                    incremental_by["updated_at_column"],
                    context.run_id,
                    incremental_by["updated_at_type"],
                )
            )
        return tuple(writes)

    def _letter_samples(
        self, context: dg.OutputContext, accounting: list[AccountingWrite]
    ) -> dict[str, list[LetterSample]]:
        """Per partition the write dead-lettered rows in, a few of its letters (one query)."""
        if not accounting:
            return {}
        keys = [
            key
            for key, figures in accounting[0].figures.items()
            if figures.get("rows_dead_lettered")
        ]
        if not keys:
            return {}
        asset_key = context.asset_key.to_user_string()
        with self.warehouse.connection() as conn:
            return run_letter_samples(conn, asset_key, context.run_id, keys, SAMPLE_LETTERS)

    def _report(
        self,
        context: dg.OutputContext,
        table_slice: TableSlice,
        mode: WriteMode,
        result: WriteResult,
        accounting: list[AccountingWrite],
        samples: dict[str, list[LetterSample]],
    ) -> None:
        """Log and record each partition's own figures (right in range runs too), and the
        DataVersion: the same content gives the same version, so downstream does not go stale.

        The stored column schema keeps the descriptions the asset declares for its columns.
        """
        declared = declared_columns(context.definition_metadata)
        context.add_output_metadata(
            {
                "dagster/table_name": table_slice.qualified_name,
                "dagster/column_schema": column_schema(result.columns, declared),
                "write_mode": mode.value,
                "content_version": result.content_version,
            }
        )
        log = run_logger(context).bind(table=table_slice.qualified_name, write_mode=mode.value)
        if result.rows_moved:
            log.warning(
                "rows_moved_between_partitions",
                rows_moved=result.rows_moved,
                detail="an upsert changed these rows' partition columns; the partitions they left"
                " changed without being materialised",
            )
        if result.indexes_rebuilt:
            log.info(
                "indexes_rebuilt_after_bulk_load",
                indexes=result.indexes_rebuilt,
                detail="the write outweighed the table: its indexes were dropped before the load"
                " and built again before commit",
            )
        written = accounting[0] if accounting else None
        # One line per partition for a single one; a range logs a summary, and its per-partition
        # lines at debug level (each day's figures are on its own materialisation): a 300-day
        # run would otherwise write hundreds of log events.
        one_of_many = len(result.row_counts) > 1
        if one_of_many:
            _log_range_summary(log, table_slice, result, written)
        for key, count in result.row_counts.items():
            ingested = written.figures.get(key, {}) if written else {}
            event = "partition_emptied" if count == 0 else "partition_written"
            emit = log.debug if one_of_many else log.info
            emit(event, partition_key=key, row_count=count, **result.changes(key), **ingested)
            figures = {
                # The partition's rows, as it stands once written: each day's page shows its
                # own; the whole table's count would cost a scan of it on every write.
                "dagster/row_count": count,
                "dagster/partition_row_count": count,
                **result.changes(key),
                **ingested,
                **(_partition_ingestion_figures(written, key, log, one_of_many) if written else {}),
                **({"dead_letter_sample": _sample_table(samples[key])} if key in samples else {}),
            }
            if key == WHOLE_TABLE:
                context.add_output_metadata(figures)
            else:
                context.step_context.add_asset_metadata(
                    figures, asset_key=context.asset_key, partition_key=key
                )
        context.step_context.set_data_version(
            context.asset_key, dg.DataVersion(result.content_version)
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Read the upstream partition(s) exactly, projected to the input's ``columns`` if given."""
        upstream = context.upstream_output
        if upstream is None:
            raise dg.DagsterInvariantViolationError("PostgresIOManager loads asset inputs only")
        input_metadata = context.definition_metadata or {}
        projection = input_metadata.get("columns")
        table_slice = table_slice_for(
            context,
            upstream.definition_metadata,
            self.default_schema,
            columns=tuple(projection) if projection else None,
        )
        with self.warehouse.bulk_connection() as conn:
            table = read_slice(conn, table_slice, bool(input_metadata.get("include_row_hash")))
        return arrow_to_frame(table)
