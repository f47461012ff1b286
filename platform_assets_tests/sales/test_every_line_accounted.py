"""Every physical line of a landing file is a loaded row or part of a dead letter, materialised for
real: a stray quote costs one line, multi-line records keep physical line numbers, and a reader
that loses lines cannot commit (the file's lines are counted from its bytes, not by the reader)."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import check_evaluation, fetch_all
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = date(2026, 11, 12)
CHECKS = build_dataset_checks(SPECS_BY_NAME["orders"])


@pytest.fixture
def day_file(tmp_path: Path, resources: dict) -> tuple[Path, dict]:
    """A clean day of about 20,000 orders in a landing zone of this test's own."""
    path = write_day(tmp_path / "orders", DAY, orders=20_000, seed=11, malformed_share=0.0)
    return path, {**resources, "landing": LandingZone(directory=str(tmp_path))}


def data_lines(path: Path) -> int:
    """The file's lines after its header, counted here from its bytes."""
    return path.read_bytes().count(b"\n") - 1


def set_field(path: Path, line: int, column: int, value: bytes) -> None:
    """Set field ``column`` of physical line ``line`` (the header is 1) of ``path``."""
    lines = path.read_bytes().split(b"\n")
    fields = lines[line - 1].split(b",")
    fields[column] = value
    lines[line - 1] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))


def materialize(
    resources: dict, instance: dg.DagsterInstance, day: date = DAY
) -> dg.ExecuteInProcessResult:
    """The orders partition of ``day`` with its checks, not raising on failure."""
    return dg.materialize(
        [ORDERS, *CHECKS],
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def rows_add_up(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return check_evaluation(result, "rows_add_up")


def file_lines(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_file, data_lines, lines_loaded, lines_dead_lettered"
            " FROM platform.ingestion_file_lines ORDER BY source_file"
        ),
    )


def dead_letters(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_ref, source_lines, stage, error_class FROM platform.dead_letter_records"
            " ORDER BY id"
        ),
    )


def test_a_stray_quote_costs_one_line_not_the_rest_of_the_file(day_file, instance) -> None:
    path, resources = day_file
    set_field(path, 101, 1, b'"1234')  # a quote that opens and never closes
    lines = data_lines(path)

    result = materialize(resources, instance)

    warehouse = resources["warehouse"]
    assert result.success and rows_add_up(result).passed
    assert fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders")) == [(lines - 1,)]
    assert dead_letters(warehouse) == [(f"{path.name}:101", 1, "parse", "UnclosedQuote")]
    assert file_lines(warehouse) == [(path.name, lines, lines - 1, 1)]
    assert rows_add_up(result).metadata["data_lines"].value == lines


def test_multi_line_records_keep_physical_line_numbers(day_file, instance) -> None:
    path, resources = day_file
    set_field(path, 53, 7, b"-1")  # a bad quantity, physical line 54 once line 50 is two
    set_field(path, 50, 4, b'"deli\nvered"')  # an enum breach spanning two lines
    lines = data_lines(path)
    result = materialize(resources, instance)

    warehouse = resources["warehouse"]
    assert result.success and rows_add_up(result).passed
    letters = dead_letters(warehouse)
    assert letters[0][:2] == (f"{path.name}:50-51", 2)
    assert letters[1][:2] == (f"{path.name}:54", 1)
    assert file_lines(warehouse) == [(path.name, lines, lines - 3, 3)]


def test_a_reader_that_loses_lines_cannot_commit(day_file, instance, monkeypatch) -> None:
    import platform_assets.lib.ingestion.pipeline as pipeline

    path, resources = day_file
    lines = data_lines(path)
    read_csv = pipeline.stream_csv

    def loses_the_last_row_of_each_chunk(*args, **kwargs):
        for batch in read_csv(*args, **kwargs):
            yield type(batch)(
                batch.rows.slice(0, batch.rows.num_rows - 1),
                batch.source,
                batch.positions[:-1],
                batch.unreadable,
                line_counts=batch.line_counts[:-1],
            )

    monkeypatch.setattr(pipeline, "stream_csv", loses_the_last_row_of_each_chunk)

    result = materialize(resources, instance)

    assert not result.success
    failure = result.failure_data_for_node("sales__orders").error.to_string()
    assert f"landing file {path.name} holds {lines} data lines" in failure
    assert f"its loaded rows span {lines - 1} and its dead letters 0" in failure
    exists = fetch_all(resources["warehouse"], sql.SQL("SELECT to_regclass('sales.orders')"))
    assert exists == [(None,)]  # nothing committed


def test_a_nul_byte_costs_only_its_row_and_is_kept_escaped(day_file, instance) -> None:
    path, resources = day_file
    set_field(path, 30, 5, b"we\x00b")  # Postgres text and jsonb cannot hold NUL
    lines = data_lines(path)

    result = materialize(resources, instance)

    warehouse = resources["warehouse"]
    assert result.success and rows_add_up(result).passed
    assert dead_letters(warehouse) == [(f"{path.name}:30", 1, "parse", "InvalidEncoding")]
    stored = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT payload->>'channel', error_detail->'raw_base64'->>'channel'"
            " FROM platform.dead_letter_records"
        ),
    )
    assert stored == [("we\\x00b", "d2UAYg==")]
    assert file_lines(warehouse) == [(path.name, lines, lines - 1, 1)]


def test_a_dead_letter_table_from_before_line_accounting_is_upgraded(day_file, instance) -> None:
    from platform_assets.lib.dead_letters.side_writes import DEAD_LETTER_DDL

    path, resources = day_file
    set_field(path, 7, 1, b"")  # one dead letter
    warehouse = resources["warehouse"]
    with warehouse.connection() as conn:  # the table as an earlier version created it
        for statement in DEAD_LETTER_DDL[:2]:  # the schema and the table, without source_lines
            conn.execute(statement)

    result = materialize(resources, instance)

    assert result.success and rows_add_up(result).passed
    assert dead_letters(warehouse) == [(f"{path.name}:7", 1, "validate", "ValidationError")]


DAMAGE = {
    "stray quote": lambda fields: [b'"' + fields[0], *fields[1:]],
    "quoted line break": lambda fields: [*fields[:4], b'"deli\nvered"', *fields[5:]],
    "nul byte": lambda fields: [*fields[:5], fields[5] + b"\x00", *fields[6:]],
    "ragged": lambda fields: fields[:-1],
    "empty line": lambda fields: [b"\n" + fields[0], *fields[1:]],
    "bad utf-8": lambda fields: [*fields[:4], b"caf\xe9", *fields[5:]],
    "bare carriage return": lambda fields: [*fields[:2], b"2026\r-11", *fields[3:]],
}


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.integers(2, 400), st.sampled_from(sorted(DAMAGE))), min_size=1, max_size=6
    )
)
def test_damaged_files_through_real_materialisations_account_for_every_line(
    tmp_path_factory, warehouse, damages: list[tuple[int, str]]
) -> None:
    """Damage drawn by hypothesis, each file materialised for real: every line is accounted for
    in the database, independently of the reader, and the checks pass."""
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager

    root = tmp_path_factory.mktemp("fuzzed")
    path = write_day(root / "orders", DAY, orders=400, seed=9, malformed_share=0.02)
    lines = path.read_bytes().split(b"\n")
    for line, kind in damages:
        if line < len(lines) - 1:
            lines[line - 1] = b",".join(DAMAGE[kind](lines[line - 1].split(b",")))
    path.write_bytes(b"\n".join(lines))
    expected_lines = path.read_bytes().count(b"\n") - 1  # counted here, from the bytes
    with warehouse.connection() as conn:
        conn.execute("DROP SCHEMA IF EXISTS sales CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS platform CASCADE")
    resources = {
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=str(root)),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(resources, instance)

    assert result.success and rows_add_up(result).passed
    ((data, loaded, dead),) = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT data_lines, lines_loaded, lines_dead_lettered"
            " FROM platform.ingestion_file_lines"
        ),
    )
    stored = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT (SELECT count(*) FROM sales.orders),"
            " (SELECT coalesce(sum(source_lines), 0) FROM platform.dead_letter_records)"
        ),
    )
    assert data == expected_lines == loaded + dead
    assert stored == [(loaded, dead)]  # one line a loaded row here: no order spans lines
