"""No secret in any error: malformed URLs carrying a password or a token, fed to a real run, a
real alert and the instance storage, appear nowhere the run leaves text behind: its event log,
its captured compute logs, its output."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from platform_assets.lib import settings
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets_tests.conftest import REPO_ROOT

DAY = date(2026, 11, 1)
PASSWORD = "Pa55w0rd-n3ver-shown"
TOKEN = "T0K3N-n3ver-shown-4242"
MALFORMED = {
    # an invalid percent-escape in the password: psycopg's parser quotes the password back
    settings.WAREHOUSE_URL_VAR: f"postgresql://platform_owner:{PASSWORD}%ZZ@localhost/warehouse",
    # a space in the host: requests' parser quotes the whole URL, token included
    settings.ALERT_WEBHOOK_URL_VAR: f"https://hooks.example .com/services/{TOKEN}",
}
RUN = textwrap.dedent(
    """
    import json, os, sys
    import dagster as dg
    from platform_assets.definitions import defs
    from platform_assets.defs.platform.sensors import run_failures
    from platform_assets.lib.notifications.notifier import NotifierError, WebhookNotifier

    instance = dg.DagsterInstance.local_temp(sys.argv[1])
    job = defs.resolve_job_def("load_orders")
    result = job.execute_in_process(
        instance=instance, partition_key=sys.argv[2], raise_on_error=False
    )
    events = [entry.to_json() for entry in instance.all_logs(result.run_id)]
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failures",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notifier": WebhookNotifier(url=os.environ["PLATFORM_ALERT_WEBHOOK_URL"])},
    ).for_run_failure()
    try:
        run_failures(context)
        alerted = "delivered"
    except NotifierError as error:
        alerted = f"{error!r} {error.__cause__!r} {error.__context__!r}"
    print(json.dumps({"success": result.success, "events": events, "alert": alerted}))
    """
)


def test_malformed_urls_put_no_secret_in_events_compute_logs_or_output(tmp_path: Path) -> None:
    write_day(tmp_path / "landing" / "orders", DAY, orders=50, seed=1, malformed_share=0.0)
    (tmp_path / "instance").mkdir()
    env = {**os.environ, **MALFORMED, settings.LANDING_DIR_VAR: str(tmp_path / "landing")}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path / "instance"), DAY.isoformat()],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["success"] is False  # the run failed on its URL, as it must
    assert "the database URL is malformed" in "".join(outcome["events"])
    assert "the webhook URL is malformed (InvalidURL)" in outcome["alert"]
    assert PASSWORD not in str(outcome) and TOKEN not in str(outcome)
    captured = [p for p in (tmp_path / "instance").rglob("*") if p.is_file()]
    assert any(p.suffix in (".err", ".out") for p in captured), "no compute log was captured"
    leaked = [
        where
        for where, text in [
            ("stdout", done.stdout),
            ("stderr", done.stderr),
            *((str(p), p.read_bytes().decode(errors="replace")) for p in captured),
        ]
        if PASSWORD in text or TOKEN in text
    ]
    assert leaked == []


def test_a_malformed_instance_storage_url_is_refused_without_its_password(
    monkeypatch,
) -> None:
    from platform_assets.lib.server.instance_storage import instance_storage_url

    monkeypatch.setenv(
        settings.DAGSTER_STORAGE_URL_VAR, f"postgresql://dagster:{PASSWORD}@host:port/dagster"
    )
    try:
        instance_storage_url()
    except Exception as error:  # the refusal itself is the subject
        text = f"{error!r} {error.__cause__!r} {error.__context__!r}"
        assert "is malformed" in str(error) and PASSWORD not in text
    else:
        raise AssertionError("a URL with a port that is no number was accepted")
