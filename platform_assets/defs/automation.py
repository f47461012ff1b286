"""The sensor that evaluates every asset's automation condition, on from the first start.

Dagster would create a default one, stopped; this one runs by default, so metrics follow their
upstream without anyone turning anything on.
"""

import dagster as dg

platform_automation = dg.AutomationConditionSensorDefinition(
    "platform_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions of every asset (metrics follow orders).",
)
