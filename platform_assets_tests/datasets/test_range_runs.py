"""A backfill's range of days loads in one run, exactly as the same days loaded one by one, and
every check reports each day of the range on its own."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.defs.sales.checks import reconciles_with_orders
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.statement_count import counted_statements
from platform_assets_tests.helpers import fetch_all, run_checks_alone, table_checksum
from platform_assets_tests.sales.test_every_line_accounted import CHECKS
from platform_assets_tests.sales.test_pipeline import ORDERS

FIRST = date(2026, 10, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(4)]
PARTITIONED_CHECKS = {"rows_add_up", "dead_letter_ratio", "keys_valid", "row_volume"}


def range_tags(first: date, last: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def landing(tmp_path: Path, resources: dict, malformed_share: float = 0.03) -> dict:
    """Order files for ``DAYS`` in a landing zone of the test's own."""
    for n, day in enumerate(DAYS):
        write_day(
            tmp_path / "orders", day, orders=300, seed=40 + n, malformed_share=malformed_share
        )
    return {**resources, "landing": LandingZone(directory=str(tmp_path))}


def test_a_range_run_loads_each_day_as_single_runs_would(tmp_path, resources, instance) -> None:
    resources = landing(tmp_path, resources)
    warehouse = resources["warehouse"]
    assets = [ORDERS, daily_order_metrics, *CHECKS, reconciles_with_orders]
    ranged = dg.materialize(
        assets, tags=range_tags(DAYS[0], DAYS[-1]), resources=resources, instance=instance
    )
    assert ranged.success
    stored_schema = ranged.asset_materializations_for_node("sales__orders")[0].metadata
    stored_columns = {c.name: c for c in stored_schema["dagster/column_schema"].schema.columns}
    described = {name: c.description for name, c in stored_columns.items()}
    assert described["currency"] == "ISO 4217 code of every amount on the order"  # from the spec
    assert described["amount"] is None and described["order_id"] == "The shop's order number"
    assert stored_columns["customer_id"].tags == {"pii": "linkable"}  # the spec's column tags
    assert stored_columns["customer_id"].type == "bigint"  # as stored
    per_day = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT partition_key, rows_read, rows_loaded, rows_dead_lettered"
            " FROM platform.ingestion_accounting ORDER BY 1"
        ),
    )
    assert [row[0] for row in per_day] == [day.isoformat() for day in DAYS]
    assert all(read == loaded + dead and dead > 0 for _, read, loaded, dead in per_day)
    stored = {
        table: table_checksum(warehouse, "sales", table)
        for table in ("orders", "daily_order_metrics")
    }
    letters = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT partition_key, source_ref, error_message FROM platform.dead_letter_records"
            " ORDER BY 1, 2"
        ),
    )

    evaluations = ranged.get_asset_check_evaluations()
    by_check: dict[str, list[str]] = {}
    for evaluation in evaluations:
        by_check.setdefault(evaluation.check_name, []).append(evaluation.partition)
    for name in [*PARTITIONED_CHECKS, "reconciles_with_orders"]:
        assert sorted(by_check[name]) == [day.isoformat() for day in DAYS], name
    failed = [(e.check_name, e.partition) for e in evaluations if not e.passed]
    assert failed == [], failed

    for day in DAYS:  # the same days again, one run each: nothing changes
        single = dg.materialize(
            assets, partition_key=day.isoformat(), resources=resources, instance=instance
        )
        assert single.success
    assert stored == {
        table: table_checksum(warehouse, "sales", table)
        for table in ("orders", "daily_order_metrics")
    }
    assert letters == fetch_all(
        warehouse,
        sql.SQL(
            "SELECT partition_key, source_ref, error_message FROM platform.dead_letter_records"
            " ORDER BY 1, 2"
        ),
    )


def test_a_range_missing_a_delivery_names_every_missing_day(tmp_path, resources, instance):
    resources = landing(tmp_path, resources)
    for day in (DAYS[1], DAYS[2]):
        next((tmp_path / "orders").glob(f"*{day.isoformat()}*")).unlink()
    result = dg.materialize(
        [ORDERS],
        tags=range_tags(DAYS[0], DAYS[-1]),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert DAYS[1].isoformat() in failure and DAYS[2].isoformat() in failure
    assert DAYS[0].isoformat() not in failure.split("no landing file for", 1)[-1].split(";")[0]
    exists = fetch_all(resources["warehouse"], sql.SQL("SELECT to_regclass('sales.orders')"))
    assert exists == [(None,)]  # nothing written, not even the first day


def test_a_range_before_the_first_partition_fails_at_once_not_retried(
    tmp_path, resources, instance
):
    """No retry can make a range the partitions do not have exist: the step fails once."""
    result = dg.materialize(
        [ORDERS],
        tags=range_tags(date(2025, 12, 22), DAYS[0]),
        resources=landing(tmp_path, resources),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "the run's partitions" in failure and "2025-12-22" in failure
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_key_repeated_across_days_of_a_range_is_one_dead_letter(tmp_path, resources, instance):
    resources = landing(tmp_path, resources, malformed_share=0.0)
    first, second = (next((tmp_path / "orders").glob(f"*{d.isoformat()}*")) for d in DAYS[:2])
    repeated_line = first.read_text().splitlines()[1]
    order_id = repeated_line.split(",")[0]
    fields = repeated_line.split(",")
    fields[2] = DAYS[1].isoformat()  # the same order again, dated the next day
    fields[3] = f"{DAYS[1].isoformat()}T10:00:00+00:00"
    with second.open("a") as file:
        file.write(",".join(fields) + "\n")
    result = dg.materialize(
        [ORDERS, *CHECKS],
        tags=range_tags(DAYS[0], DAYS[-1]),
        resources=resources,
        instance=instance,
    )
    assert result.success
    letters = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT partition_key, error_class FROM platform.dead_letter_records"
            " WHERE payload->>'order_id' = %s AND error_class = 'DuplicateKey'"
        ),
        (order_id,),
    )
    assert letters == [(DAYS[1].isoformat(), "DuplicateKey")]


def test_each_day_of_a_range_run_carries_its_own_figures(tmp_path, resources, instance) -> None:
    """Three days with different files and different damage, loaded in one run: each day's
    materialisation, as stored in the instance, names only its own files, lines and rules."""
    days = DAYS[:3]
    shares = [0.0, 0.05, 0.25]  # no damage, some, much
    paths = {
        day.isoformat(): write_day(
            tmp_path / "orders", day, orders=200 + 100 * n, seed=60 + n, malformed_share=share
        )
        for n, (day, share) in enumerate(zip(days, shares, strict=True))
    }
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    ranged = dg.materialize(
        [ORDERS], tags=range_tags(days[0], days[-1]), resources=resources, instance=instance
    )
    assert ranged.success

    stored = instance.fetch_materializations(ORDERS.key, limit=10).records
    by_day = {r.partition_key: r.asset_materialization.metadata for r in stored}
    assert sorted(by_day) == sorted(paths)
    letters = dict(
        fetch_all(
            resources["warehouse"],
            sql.SQL("SELECT partition_key, count(*) FROM platform.dead_letter_records GROUP BY 1"),
        )
    )
    for key, path in paths.items():
        metadata = by_day[key]
        lines = path.read_bytes().count(b"\n") - 1
        (source,) = metadata["source_files"].value
        assert source["path"] == str(path)
        assert metadata["landing_file_lines"].value == {
            path.name: {
                "data_lines": lines,
                "lines_loaded": metadata["rows_loaded"].value,
                "lines_dead_lettered": metadata["rows_dead_lettered"].value,
            }
        }
        assert metadata["rows_read"].value == lines
        assert metadata["rows_dead_lettered"].value == letters.get(key, 0)
        rules = metadata["top_rules_broken"].value if "top_rules_broken" in metadata else {}
        assert (sum(rules.values()) > 0) == (letters.get(key, 0) > 0)
    letter_days = dict(
        fetch_all(
            resources["warehouse"],
            sql.SQL("SELECT id, partition_key FROM platform.dead_letter_records"),
        )
    )
    for key, metadata in by_day.items():
        sample = metadata["dead_letter_sample"].value.records if letters.get(key) else []
        assert "dead_letter_sample" in metadata or not letters.get(key)
        assert len(sample) == min(letters.get(key, 0), 10)
        assert {letter_days[record.data["id"]] for record in sample} <= {key}  # its own letters
        assert all(record.data["source_ref"].startswith(paths[key].name) for record in sample)
    undamaged, damaged = days[0].isoformat(), days[2].isoformat()
    assert "top_rules_broken" not in by_day[undamaged]
    assert max(by_day[damaged]["top_rules_broken"].value.values()) <= letters[damaged]


def test_checks_of_a_range_issue_as_many_statements_as_for_one_day(
    tmp_path, resources, instance
) -> None:
    """Every partition check of a 31-day range (and the metrics' reconciliation) evaluates all
    its days in a fixed number of statements: a range of 31 days sends the warehouse exactly as
    many as one day, and still reports each day's own result."""
    days = [FIRST + timedelta(days=n) for n in range(31)]
    for n, day in enumerate(days):
        write_day(tmp_path / "orders", day, orders=40, seed=80 + n, malformed_share=0.05)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    loaded = dg.materialize(
        [ORDERS, daily_order_metrics],
        tags=range_tags(days[0], days[-1]),
        resources=resources,
        instance=instance,
    )
    assert loaded.success
    checks = [*CHECKS, reconciles_with_orders]
    selection = dg.AssetSelection.checks(*checks)
    assets = [ORDERS, daily_order_metrics]

    with counted_statements() as one_day:
        single = run_checks_alone(
            assets, checks, selection, days[-1].isoformat(), resources, instance
        )
    with counted_statements() as whole_range:
        ranged = run_checks_alone(
            assets,
            checks,
            selection,
            days[0].isoformat(),
            resources,
            instance,
            last_partition_key=days[-1].isoformat(),
        )
    assert single.success and ranged.success
    assert sum(one_day.values()) > 0
    assert whole_range == one_day
    evaluations = ranged.get_asset_check_evaluations()
    by_check: dict[str, list[str]] = {}
    for evaluation in evaluations:
        if evaluation.check_name in ("rows_add_up", "keys_valid", "reconciles_with_orders"):
            assert evaluation.passed, (evaluation.check_name, evaluation.partition)
        by_check.setdefault(evaluation.check_name, []).append(evaluation.partition)
    for name in [*PARTITIONED_CHECKS, "reconciles_with_orders"]:
        assert sorted(by_check[name]) == [day.isoformat() for day in days], name
    accounted = {
        key: (read, dead)
        for key, read, dead in fetch_all(
            resources["warehouse"],
            sql.SQL(
                "SELECT partition_key, rows_read, rows_dead_lettered"
                " FROM platform.ingestion_accounting"
            ),
        )
    }
    ratios = {e.partition: e.metadata for e in evaluations if e.check_name == "dead_letter_ratio"}
    assert len({figures["rows_read"].value for figures in ratios.values()}) > 1  # days differ
    for day in days:
        figures = ratios[day.isoformat()]
        own = (figures["rows_read"].value, figures["rows_dead_lettered"].value)
        assert own == accounted[day.isoformat()]
