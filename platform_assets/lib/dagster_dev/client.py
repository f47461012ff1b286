"""The webserver's GraphQL API, called as the UI calls it: launch runs and backfills, follow
them, turn sensors off."""

from dataclasses import dataclass

import requests

from platform_assets.lib.dagster_dev.process import wait_for

LOCATION = {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__"}
FINISHED_RUN = ("SUCCESS", "FAILURE", "CANCELED")
FINISHED_BACKFILL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

_LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
_RUN = """query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { status creationTime startTime endTime } }
}"""
_LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
_BACKFILL = """query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""
_RUNS_TAGGED = """query Runs($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status startTime endTime
      tags { key value } } }
  }
}"""

_SENSOR = """query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { ... on Sensor { id } }
}"""
_STOP_SENSOR = """mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }"""


class GraphQLError(RuntimeError):
    """The webserver answered with errors, or refused what was asked."""


@dataclass(frozen=True)
class RunSummary:
    """A run as the runs page shows it."""

    run_id: str
    status: str
    start_time: float | None
    end_time: float | None
    tags: dict[str, str]


class DagsterDevClient:
    """GraphQL calls to the webserver on ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout_s: float = 30) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.timeout_s = timeout_s

    def query(self, query: str, variables: dict | None = None) -> dict:
        """POST ``query`` and return its ``data``."""
        response = requests.post(
            self.url, json={"query": query, "variables": variables or {}}, timeout=self.timeout_s
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        return body["data"]

    def launch_run(self, params: dict) -> str:
        """Launch a run as the launchpad does; its id."""
        launched = self.query(_LAUNCH_RUN, {"params": params})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(str(launched))
        return launched["run"]["runId"]

    def run(self, run_id: str) -> dict:
        """The run's status and its creation, start and end times (epoch seconds)."""
        return self.query(_RUN, {"id": run_id})["runOrError"]

    def wait_for_run(self, run_id: str, timeout: float) -> str:
        """The run's final status, once it has one."""

        def finished() -> str | None:
            status = self.run(run_id)["status"]
            return status if status in FINISHED_RUN else None

        return wait_for(finished, timeout, f"run {run_id}")

    def launch_backfill(self, asset_keys: list[list[str]], partitions: list[str]) -> str:
        """Launch a backfill of ``partitions`` of the assets, as the UI's backfill dialog does."""
        params = {
            "assetSelection": [{"path": key} for key in asset_keys],
            "partitionNames": partitions,
        }
        launched = self.query(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(str(launched))
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> str:
        """The backfill's final status, once every run it launched has finished."""

        def finished() -> str | None:
            status = self.query(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            if status["status"] not in FINISHED_BACKFILL:
                return None
            runs = self.runs_tagged("dagster/backfill", backfill_id)
            return status["status"] if all(r.status in FINISHED_RUN for r in runs) else None

        return wait_for(finished, timeout, f"backfill {backfill_id}")

    def runs_tagged(self, key: str, value: str) -> list[RunSummary]:
        """Every run carrying the tag ``key=value``."""
        found = self.query(_RUNS_TAGGED, {"key": key, "value": value})["runsOrError"]["results"]
        return [
            RunSummary(
                r["runId"],
                r["status"],
                r["startTime"],
                r["endTime"],
                {t["key"]: t["value"] for t in r["tags"]},
            )
            for r in found
        ]

    def stop_sensor(self, name: str) -> None:
        """Turn the sensor ``name`` off, as its toggle in the UI does."""
        selector = {**LOCATION, "sensorName": name}
        sensor_id = self.query(_SENSOR, {"selector": selector})["sensorOrError"]["id"]
        stopped = self.query(_STOP_SENSOR, {"id": sensor_id})["stopSensor"]
        if stopped["__typename"] != "StopSensorMutationResult":
            raise GraphQLError(str(stopped))
