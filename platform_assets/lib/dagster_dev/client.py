"""The webserver's GraphQL API through Dagster's own client (``dagster-graphql``), with the calls
the UI makes that the client lacks: launch a partition backfill and follow it, list runs by tag or
in progress, turn a sensor off, set a pool's limit and see who holds its slots, and find a run's
worker process."""

import re
from dataclasses import dataclass

from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION

from platform_assets.lib.dagster_dev.process import wait_for

LOCATION = {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__"}
FINISHED_RUN = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
FINISHED_BACKFILL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

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
_STOP_SENSOR = """mutation Stop($id: String!) { stopSensor(id: $id) { __typename
  ... on PythonError { message } } }"""
# The daemon's first tick of a sensor writes its state as the UI may stop it: the loser of that
# race gets a PythonError and succeeds when asked again.
_STOP_ATTEMPTS = 3
_IN_PROGRESS = """{ runsOrError(filter:
  {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]})
  { ... on Runs { results { runId } } } }"""
_SET_POOL_LIMIT = """mutation Limit($pool: String!, $limit: Int!) {
  setConcurrencyLimit(concurrencyKey: $pool, limit: $limit) }"""
_POOL = """query Pool($pool: String!) { instance { concurrencyLimit(concurrencyKey: $pool) {
  claimedSlots { runId stepKey } } } }"""
_RUN_MESSAGES = """query Logs($id: ID!) { logsForRun(runId: $id) {
  ... on EventConnection { events { ... on MessageEvent { message } } } } }"""
_WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
_WORKER_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


@dataclass(frozen=True)
class RunSummary:
    """A run as the runs page shows it."""

    run_id: str
    status: str
    start_time: float | None
    end_time: float | None
    tags: dict[str, str]


class DagsterDevClient(DagsterGraphQLClient):
    """Dagster's GraphQL client for the webserver on ``127.0.0.1:port``; runs are launched and
    followed with its own calls (``submit_job_execution``, ``get_run_status``)."""

    def __init__(self, port: int, timeout_s: int = 30) -> None:
        super().__init__("127.0.0.1", port_number=port, timeout=timeout_s)
        self.port = port

    def query(self, query: str, variables: dict | None = None) -> dict:
        """Send ``query`` and return its ``data``; GraphQL errors raise
        ``DagsterGraphQLClientError``."""
        return self._execute(query, variables)

    def ready(self) -> bool:
        """Whether the webserver answers GraphQL and has loaded its code locations (False while
        it starts; a code location that failed to load raises, naming the error)."""
        try:
            workspace = self.query(_WORKSPACE)["workspaceOrError"]
        except DagsterGraphQLClientError:
            return False
        entries = workspace.get("locationEntries") or []
        if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
            return False
        for entry in entries:
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") != "RepositoryLocation":
                raise DagsterGraphQLClientError(
                    f"code location {entry['name']} did not load", loaded.get("message")
                )
        return True

    def wait_for_run(self, run_id: str, timeout: float) -> DagsterRunStatus:
        """The run's final status, once it has one."""

        def finished() -> DagsterRunStatus | None:
            status = self.get_run_status(run_id)
            return status if status in FINISHED_RUN else None

        return wait_for(finished, timeout, f"run {run_id}")

    def launch_backfill(self, asset_keys: list[list[str]], partitions: list[str]) -> str:
        """Launch a backfill of ``partitions`` of the assets, as the UI's backfill dialog does,
        with ``dagster-graphql``'s own mutation; its id."""
        params = {
            "assetSelection": [{"path": key} for key in asset_keys],
            "partitionNames": partitions,
        }
        launched = self.query(LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params})
        result = launched["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise DagsterGraphQLClientError(result["__typename"], result.get("message"))
        return result["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> str:
        """The backfill's final status, once every run it launched has finished."""

        def finished() -> str | None:
            status = self.query(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            if status["status"] not in FINISHED_BACKFILL:
                return None
            runs = self.runs_tagged("dagster/backfill", backfill_id)
            done = {status.value for status in FINISHED_RUN}
            return status["status"] if all(r.status in done for r in runs) else None

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
        for _ in range(_STOP_ATTEMPTS):
            stopped = self.query(_STOP_SENSOR, {"id": sensor_id})["stopSensor"]
            if stopped["__typename"] == "StopSensorMutationResult":
                return
            if stopped["__typename"] != "PythonError":
                break
        raise DagsterGraphQLClientError(f"stopping {name}: {stopped['__typename']}", stopped)

    def runs_in_progress(self) -> list[str]:
        """The ids of the runs queued, starting, running or being cancelled."""
        return [r["runId"] for r in self.query(_IN_PROGRESS)["runsOrError"]["results"]]

    def set_pool_limit(self, pool: str, limit: int) -> None:
        """Set the pool's slot limit, as the UI's *Deployment → Concurrency* page does."""
        if not self.query(_SET_POOL_LIMIT, {"pool": pool, "limit": limit})["setConcurrencyLimit"]:
            raise DagsterGraphQLClientError("setConcurrencyLimit", pool)

    def slot_holders(self, pool: str) -> list[str]:
        """The runs holding a slot of ``pool`` now, one entry per slot."""
        limit = self.query(_POOL, {"pool": pool})["instance"]["concurrencyLimit"]
        return [slot["runId"] for slot in limit["claimedSlots"]]

    def worker_pid(self, run_id: str) -> int:
        """The pid of the run's worker process, as the worker recorded it when it started."""
        events = self.query(_RUN_MESSAGES, {"id": run_id})["logsForRun"]["events"]
        for event in events:
            found = _WORKER_PID.search(event.get("message") or "")
            if found:
                return int(found.group(1))
        raise DagsterGraphQLClientError("no worker pid recorded", run_id)
