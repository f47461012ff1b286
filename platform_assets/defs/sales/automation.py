"""When the sales metrics run by themselves: after their orders change, once the orders' checks
pass.

Dagster's ``eager`` condition, widened from the latest day to the last ``LOOKBACK`` days, so a
late file or a dead-letter replay into an older day re-runs exactly that day's metrics; and gated
on every blocking check of the orders passing, so a bad day never flows downstream.
"""

from datetime import timedelta

import dagster as dg

LOOKBACK = timedelta(days=92)

follow_upstream = (
    dg.AutomationCondition.eager().replace(
        dg.AutomationCondition.in_latest_time_window(),
        dg.AutomationCondition.in_latest_time_window(lookback_delta=LOOKBACK),
    )
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label(f"eager over the last {LOOKBACK.days} days, once upstream blocking checks pass")
