"""The step retry policy of everything that writes the warehouse: loads, extracts, replays,
discards, exports and migrations.

Transient database errors are first retried inside the step's own transaction (tenacity,
exponential backoff with jitter, ``lib/warehouse/transient``); this retries a step that still
failed on one, later. Every other error is raised as ``dg.Failure(allow_retries=False)`` and never
retried: no retry can fix bad data, a bad file, a schema conflict or a bug.
"""

import dagster as dg

WAREHOUSE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
