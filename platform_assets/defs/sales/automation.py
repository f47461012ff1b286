"""When the sales metrics run by themselves: after their orders change, once the orders' checks
pass.

Dagster's ``eager`` condition over every partition, not only the latest day (Dagster's default), so
a backfill, a late file or a dead-letter replay into any older day re-runs exactly that day's
metrics; and gated on every blocking check of the orders passing, so a bad day never flows
downstream.
"""

import dagster as dg

follow_upstream = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager over every partition, once upstream blocking checks pass")
