"""``mcn-scp replay`` and ``mcn-scp simulate`` end to end through click, on a real PostgreSQL.

Offline replay and the in-process simulator work on a scratch database (created on the same
server, subscribers copied in, dropped afterwards): the live data gains no missed call and no
queued SMS. ``--live-db`` writes to the configured database instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from scp.tools.demo import DEMO_SUBSCRIBERS
from tests.conftest import _in_thread
from tests.dates import today
from tests.unit.test_replay import _cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"
CAMEL = Path("/work/shared/pcaps/real/cap_wireshark-sample_camel_m2ua.pcap")


def _sql(dsn: str, q: str) -> object:
    async def go() -> object:
        c = await asyncpg.connect(dsn)
        try:
            return await c.fetchval(q)
        finally:
            await c.close()

    return _in_thread(go)


@pytest.fixture
def seeded(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    async def go() -> None:
        from scp.state.db import open_pool
        from scp.tools.demo import seed_subscribers
        from tests.conftest import truncate_all

        pool = await open_pool(db_dsn, max_size=2)
        try:
            await truncate_all(pool)
            await seed_subscribers(pool, today=today())
        finally:
            await pool.close()

    _in_thread(go)
    monkeypatch.setenv("MCN_DATABASE_URL", db_dsn)
    return db_dsn


def test_offline_replay_uses_a_scratch_database(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["replay", "--json", "--compare", str(DEMO)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["fed"] == 3 and summary["sms"] >= 1
    sms = [d for d in lines if d["type"] == "sms"]
    assert sms[0]["destination"] == DEMO_SUBSCRIBERS[0][0]
    dialogues = [d for d in lines if d["type"] == "dialogue"]
    assert dialogues[0]["ours"] == dialogues[0]["capture"]
    # Nothing reached the configured database, and the scratch one is gone.
    assert _sql(seeded, "SELECT count(*) FROM sms_outbox") == 0
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 0
    assert _sql(seeded, "SELECT count(*) FROM pg_database WHERE datname LIKE 'mcn_replay_%'") == 0


def test_offline_replay_live_db_writes_for_real(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["replay", "--live-db", str(DEMO)])
    assert res.exit_code == 0, res.output
    assert "our SCP  : Continue requestReportBCSMEvent" in res.output
    assert "SMS to 8613800138000" in res.output
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 1


def test_simulate_cli_in_process(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["simulate", "not-reachable-then-present", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output.splitlines()[-1])
    assert d["ok"] and d["map"] == "alertServiceCentre: acknowledged", d
    res = CliRunner().invoke(_cli(), ["simulate", "--calls", "20", "--concurrency", "5"])
    assert res.exit_code == 0 and "20 calls, concurrency 5: 20 ok" in res.output, res.output
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 0


def test_simulate_unreachable_target_exits_1() -> None:
    res = CliRunner().invoke(
        _cli(), ["simulate", "busy", "--target", "127.0.0.1:9", "--timeout", "1"]
    )
    assert res.exit_code == 1 and "cannot reach" in res.output, res.output


def test_simulate_cli_exits_1_when_the_outcome_contradicts_the_scenario(
    seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctr mode, the caller picks the voice message, but the subscriber (provisioned for
    real, --live-db) has no voicemail service: the verdict says what did not happen."""
    _sql(seeded, "DELETE FROM subscription WHERE service = 'voicemail'")
    conf = tmp_path / "ctr.toml"
    conf.write_text('[ivr]\nmode = "ctr"\n')
    monkeypatch.setenv("MCN_CONFIG", str(conf))
    res = CliRunner().invoke(_cli(), ["simulate", "menu-voicemail", "--live-db"])
    assert res.exit_code == 1, res.output
    assert "\nmenu-voicemail: CONTRADICTED - connect 8613800100\n" in "\n" + res.output, (
        res.output
    )  # the caller went to the operator
    assert "  contradicted: no voice message recorded\n" in res.output
    res = CliRunner().invoke(_cli(), ["simulate", "menu-voicemail", "--live-db", "--json"])
    d = json.loads(res.output.splitlines()[-1])
    assert res.exit_code == 1 and d["verdict"] == "contradicted" and not d["ok"], d


def test_simulate_cli_says_what_it_did_not_check(seeded: str) -> None:
    """connect mode: the caller menu runs on the IVR, so menu-voicemail cannot be verified
    here; the verdict says so instead of ok (exit 0: nothing contradicts it)."""
    res = CliRunner().invoke(_cli(), ["simulate", "menu-voicemail", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output.splitlines()[-1])
    assert d["verdict"] == "not checked" and d["ok"] is False, d
    assert d["not_checked"] and d["not_checked"][0].startswith("voice message: connect mode"), d
    assert "missed call recorded (busy)" in d["checked"], d


def _mcn(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, on its own embedded PostgreSQL under ``home`` (nothing else set)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MCN_DATABASE_URL", "MCN_CONFIG", "MCN_HOME")
    }
    env["MCN_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "scp", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )


@pytest.mark.skipif(not CAMEL.exists(), reason="real captures missing")
def test_fresh_mcn_home_replay_and_simulate_are_quiet_and_set_up_what_they_need(
    tmp_path: Path,
) -> None:
    """A brand-new MCN_HOME: no "relation does not exist" warning, no node log line between
    the ladder lines unless -v asks, and with -v the log values are readable."""
    home = tmp_path / "home"
    try:
        r = _mcn(home, "replay", str(CAMEL))
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr  # quiet: no warning, no JSON log line
        assert "[cap] releaseCall(cause=16)" in r.stdout  # frame 5, learned: no --ssn given
        assert "learned_ssn=152:cap/200:cap" in r.stdout
        # why our SCP continues the calls of a capture on an empty installation
        assert "note: the database holds no subscriber" in r.stdout, r.stdout
        s = _mcn(home, "simulate", "busy")
        assert s.returncode == 0 and s.stderr == "", s.stderr
        assert s.stdout.startswith("busy: ok"), s.stdout  # subscriber set up in the scratch copy
        v = _mcn(home, "simulate", "busy", "-v")
        logs = [json.loads(x) for x in v.stderr.splitlines() if x.startswith("{")]
        assert v.returncode == 0 and logs, v.stderr
        states = {x["new"] for x in logs if x["event"] == "AsStateChanged"}
        assert "AS-ACTIVE" in states, states
        assert "<" not in v.stderr, v.stderr  # no repr of an enum anywhere
    finally:
        _mcn(home, "db", "stop")
