"""Structured logging: structlog lines emitted through the ``platform_assets`` stdlib logger.

``dagster.yaml`` lists that logger under ``python_logs.managed_python_loggers``, so every line
lands in the Dagster run's event log (the UI's run logs), not only on stderr. Lines are JSON when
``PLATFORM_LOG_FORMAT=json`` (production) and ``key=value`` console text otherwise. No line
carries a secret: each is masked last (``lib/redaction``).
"""

import logging

import dagster as dg
import structlog

from platform_assets.lib import settings
from platform_assets.lib.redaction import redact

LOGGER_NAME = "platform_assets"


def _redacted_line(_logger: object, _method: str, line: str) -> str:
    """The rendered line with every secret masked (``lib/redaction``): the last word on what a
    log line may carry, whatever a caller bound to it."""
    return redact(line)


def configure_logging() -> None:
    """Configure structlog for the platform; safe to call more than once."""
    if structlog.is_configured():
        return
    # Dagster captures this logger into run logs; without a level it would inherit root's WARNING.
    logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
    renderer: structlog.typing.Processor = (
        # A value JSON cannot carry is logged as its text rather than failing the line.
        structlog.processors.JSONRenderer(sort_keys=True, default=str)
        if settings.log_format() == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
            _redacted_line,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )


AnyContext = dg.AssetExecutionContext | dg.OutputContext | dg.InputContext


def partition_label(context: AnyContext) -> str | None:
    """The partition being processed: a key, ``first..last`` for a range, None if unpartitioned."""
    if isinstance(context, dg.AssetExecutionContext):
        partitioned = context.has_partition_key or context.has_partition_key_range
        key_range = context.partition_key_range if partitioned else None
    else:
        key_range = context.asset_partition_key_range if context.has_asset_partitions else None
    if key_range is None:
        return None
    return (
        key_range.start
        if key_range.start == key_range.end
        else f"{key_range.start}..{key_range.end}"
    )


def run_logger(context: AnyContext | dg.OpExecutionContext) -> structlog.stdlib.BoundLogger:
    """A logger bound to the run id, and the asset key and partition (or the op) of ``context``."""
    configure_logging()
    if isinstance(context, dg.OpExecutionContext) and not context.has_assets_def:
        return structlog.get_logger(LOGGER_NAME).bind(run_id=context.run_id, op=context.op.name)
    if isinstance(context, dg.AssetExecutionContext):
        run_id = context.run.run_id
    elif isinstance(context, dg.InputContext):
        run_id = context.step_context.run_id
    else:
        run_id = context.run_id
    return structlog.get_logger(LOGGER_NAME).bind(
        run_id=run_id,
        asset_key=context.asset_key.to_user_string(),
        partition=partition_label(context),
    )


def platform_logger() -> structlog.stdlib.BoundLogger:
    """The platform's logger outside a run (sensors, resources)."""
    configure_logging()
    return structlog.get_logger(LOGGER_NAME)
