"""Sales assets: the day's landing file, loaded raw, then typed and cleaned, then summarised."""

import dagster as dg
import pandas as pd

from platform_assets.defs.sales.cleaning import clean_orders
from platform_assets.defs.sales.metrics import daily_metrics
from platform_assets.defs.sales.partitions import daily_partitions
from platform_assets.lib.ingestion.result import IngestedFrame, dead_letter_frame
from platform_assets.lib.landing.csv_reader import read_landing_csv
from platform_assets.lib.landing.landing_zone import LandingZone
from platform_assets.lib.landing.sample_orders import ORDER_COLUMNS, orders_file_name
from platform_assets.lib.logging import run_logger

COMMON = {
    "partitions_def": daily_partitions,
    "key_prefix": ["sales"],
    "group_name": "sales",
    "kinds": {"postgres", "pandas"},
    "owners": ["team:data-platform"],
}
REJECTED_SAMPLE_ROWS = 20


@dg.asset(
    **COMMON,
    metadata={"partition_column": "landing_date", "primary_key": ["landing_date", "_source_line"]},
)
def raw_orders(context: dg.AssetExecutionContext, landing: LandingZone) -> dg.Output[IngestedFrame]:
    """The day's order landing file, every field kept as text with its file line number.

    The raw layer is lossless: values are typed downstream, so a malformed value is rejected there
    with a reason. A line with the wrong number of fields is dead-lettered here (stage ``parse``)
    with its raw text; a missing or unreadable file fails the run.
    """
    day = context.partition_time_window.start.date()
    path = landing.orders_file(day)
    landed = read_landing_csv(path, ORDER_COLUMNS)
    frame = landed.rows.to_pandas()
    frame.insert(0, "landing_date", day)
    dead_letters = dead_letter_frame(
        pd.DataFrame({"line": [m.text for m in landed.malformed]}),
        partition_key=context.partition_key,
        stage="parse",
        error_class="MalformedCsvLine",
        messages=[
            f"expected {m.expected_fields} fields, found {m.found_fields}" for m in landed.malformed
        ],
        details=[
            {"expected_fields": m.expected_fields, "found_fields": m.found_fields}
            for m in landed.malformed
        ],
        source_refs=[f"{path.name}:{m.line}" for m in landed.malformed],
    )
    run_logger(context).info(
        "landing_file_read",
        path=str(path),
        lines_read=landed.lines_read,
        malformed_lines=len(landed.malformed),
    )
    return dg.Output(
        IngestedFrame(frame, dead_letters, rows_read={context.partition_key: landed.lines_read}),
        metadata={"source_file": str(path)},
    )


@dg.asset(
    **COMMON,
    metadata={"partition_column": "order_date", "primary_key": ["order_id"]},
)
def orders(context: dg.AssetExecutionContext, raw_orders: pd.DataFrame) -> dg.Output[IngestedFrame]:
    """Typed, validated orders of the day; a row breaking any rule becomes a dead letter.

    The good rows, the dead letters (raw payload untouched, file and line, every rule broken) and
    the partition's rows read / loaded / dead-lettered commit in one transaction.
    """
    day = context.partition_time_window.start.date()
    raw = raw_orders.drop(columns=["landing_date"])
    cleaned = clean_orders(raw, day)
    rejected = cleaned.rejected
    dead_letters = dead_letter_frame(
        rejected.drop(columns=["reasons"]),
        partition_key=context.partition_key,
        stage="validate",
        error_class="OrderValidationError",
        messages=rejected["reasons"].tolist(),
        details=[{"failed_rules": reasons.split("; ")} for reasons in rejected["reasons"]],
        source_refs=[f"{orders_file_name(day)}:{line}" for line in rejected["_source_line"]],
    )
    log = run_logger(context)
    for row in rejected.head(REJECTED_SAMPLE_ROWS).to_dict(orient="records"):
        log.warning("order_dead_lettered", source_line=row["_source_line"], reasons=row["reasons"])
    log.info("orders_cleaned", rows_read=len(raw), rows_dead_lettered=len(rejected))
    return dg.Output(
        IngestedFrame(
            rows=cleaned.orders,
            dead_letters=dead_letters,
            rows_read={context.partition_key: len(raw)},
        ),
        metadata={
            "dead_letter_sample": dg.MetadataValue.json(
                rejected.head(REJECTED_SAMPLE_ROWS)[["_source_line", "reasons"]].to_dict(
                    orient="records"
                )
            ),
        },
    )


@dg.asset(
    **COMMON,
    metadata={"partition_column": "metric_date", "primary_key": ["metric_date", "currency"]},
)
def daily_order_metrics(
    context: dg.AssetExecutionContext, orders: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """Per day and currency: orders, revenue, average order value and distinct customers."""
    day = context.partition_time_window.start.date()
    metrics = daily_metrics(orders, day)
    run_logger(context).info("metrics_computed", currencies=len(metrics))
    return dg.Output(metrics, metadata={"currencies": len(metrics)})
