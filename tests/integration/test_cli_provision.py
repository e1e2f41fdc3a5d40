"""`mcn-scp` provisioning and database commands end to end: exit codes (0 / 2 naming the field
/ 1), --json output, audit channel, and the embedded PostgreSQL shared across processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from scp.adapters.clock import utcnow
from scp.config import load_config
from scp.state import db as dbmod
from tests.dates import today

pytestmark = pytest.mark.integration
# The CLI reads the clock for its default dates: they must follow the network's day on any day.
any_day = pytest.mark.usefixtures("any_day")

MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")


def cli(db_dsn: str, *args: str, input: str | None = None) -> Result:
    """`mcn-scp ARGS` in-process, in a thread (the command runs its own event loop)."""
    from scp.cli import main

    box: list[Result] = []
    t = threading.Thread(
        target=lambda: box.append(
            CliRunner().invoke(main, list(args), input=input, env={"MCN_DATABASE_URL": db_dsn})
        )
    )
    t.start()
    t.join()
    return box[0]


def ok(res: Result) -> Result:
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    return res


def cli_today() -> str:
    """Today as the CLI counts it (its config's zone; tests/dates.py), ISO."""
    return today(load_config()).isoformat()


@any_day
async def test_subscriber_lifecycle(clean_pool: asyncpg.Pool, db_dsn: str) -> None:
    r = ok(
        cli(
            db_dsn,
            "subscriber",
            "add",
            "013800138000",
            "--services",
            "missed-call,busy",
            "--pin",
            "123456",
            "--group",
            "vip",
            "--language",
            "en",
            "--json",
        )
    )
    data = json.loads(r.stdout)
    assert data["msisdn"] == "8613800138000" and data["pin_set"] is True
    assert {s["service"] for s in data["subscriptions"]} == {"missed-call", "busy"}
    assert {s["start_date"] for s in data["subscriptions"]} == {cli_today()}
    r = ok(cli(db_dsn, "subscriber", "show", "8613800138000"))
    assert "vip" in r.stdout and "pin          set" in r.stdout
    r = ok(cli(db_dsn, "subscriber", "set", "8613800138000", "--status", "suspended", "--json"))
    assert json.loads(r.stdout)["status"] == "suspended"
    ok(cli(db_dsn, "service", "disable", "8613800138000", "busy"))
    r = ok(
        cli(
            db_dsn,
            "service",
            "enable",
            "8613800138000",
            "voicemail",
            "--end",
            "2099-01-01",
            "--json",
        )
    )
    (vm,) = [x for x in json.loads(r.stdout)["subscriptions"] if x["service"] == "voicemail"]
    assert (vm["start_date"], vm["end_date"]) == (cli_today(), "2099-01-01")
    r = ok(cli(db_dsn, "subscriber", "list", "--json"))
    (only,) = json.loads(r.stdout)
    assert only["msisdn"] == "8613800138000"
    r = ok(cli(db_dsn, "subscriber", "list"))
    assert "missed-call,voicemail" in r.stdout
    ok(cli(db_dsn, "subscriber", "del", "8613800138000"))
    r = cli(db_dsn, "subscriber", "show", "8613800138000")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    rows = await clean_pool.fetch("SELECT channel, action FROM audit_log ORDER BY id")
    assert [x["action"] for x in rows] == [
        "create",
        "update",
        "disable-service",
        "enable-service",
        "delete",
    ]
    assert {x["channel"] for x in rows} == {"cli"}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["subscriber", "add", "12"], "msisdn"),
        (["subscriber", "add", "8613800000001", "--services", "x"], "services"),
        (["subscriber", "add", "8613800000001", "--language", "fr"], "language"),
        (["subscriber", "add", "8613800000001", "--pin", "12"], "pin"),
        (["subscriber", "set", "8613800000001"], "nothing to change"),
        (["service", "enable", "8613800000001", "busy", "--start", "tomorrow"], "start"),
        (["blacklist", "add", "8613800000001", "abc"], "number"),
        (["blacklist", "add", "8613800000001", "86x", "--prefix"], "number"),
        (["ads", "add", "hello", "--window", "8-22"], "window"),
        (["rates", "add", "galactic"], "call_category"),
        (["rates", "add", "local", "", "--per-minute", "abc"], "per_minute"),
        (["sms", "list", "--status", "lost"], "status"),
        (["cdr", "export", "--since", "yesterday"], "since"),
    ],
)
async def test_bad_input_exits_2_naming_field(
    clean_pool: asyncpg.Pool, db_dsn: str, args: list[str], field: str
) -> None:
    r = cli(db_dsn, *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and field in r.stderr


@any_day
async def test_blacklist_pin_ads_rates_sms_cdr(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    ok(cli(db_dsn, "subscriber", "add", "8613800000001"))
    ok(cli(db_dsn, "blacklist", "add", "8613800000001", "13900000000"))
    ok(cli(db_dsn, "blacklist", "add", "8613800000001", "86177", "--prefix"))
    r = ok(cli(db_dsn, "blacklist", "list", "8613800000001", "--json"))
    assert json.loads(r.stdout) == [
        {"owner": "8613800000001", "number": "8613900000000", "kind": "exact"},
        {"owner": "8613800000001", "number": "86177", "kind": "prefix"},
    ]
    ok(cli(db_dsn, "blacklist", "del", "8613800000001", "8613900000000"))
    assert cli(db_dsn, "blacklist", "del", "8613800000001", "8613900000000").exit_code == 1

    ok(cli(db_dsn, "pin", "set", "8613800000001", "246810"))
    r = ok(cli(db_dsn, "pin", "set", "8613800000001", input="135790\n135790\n"))
    assert "pin set" in r.stdout
    await clean_pool.execute("UPDATE subscriber SET pin_failed_attempts = 3, pin_locked_at = now()")
    ok(cli(db_dsn, "pin", "unlock", "8613800000001"))
    ok(cli(db_dsn, "pin", "reset", "8613800000001"))
    assert await clean_pool.fetchval("SELECT pin_hash FROM subscriber") is None

    r = ok(
        cli(
            db_dsn,
            "ads",
            "add",
            "5G now!",
            "--window",
            "08:00-22:00",
            "--caller-prefix",
            "86138",
            "--group",
            "vip",
            "--priority",
            "3",
            "--json",
        )
    )
    ad_id = json.loads(r.stdout)["id"]
    r = ok(cli(db_dsn, "ads", "list"))
    assert "08:00-22:00" in r.stdout and "5G now!" in r.stdout
    # a time without an offset is the network's local time, never the machine's
    r = ok(cli(db_dsn, "ads", "add", "later", "--from", "2026-11-25T18:30", "--json"))
    assert json.loads(r.stdout)["valid_from"] == "2026-11-25T10:30:00+00:00"
    assert await clean_pool.fetchval("SELECT valid_from FROM ad_rule WHERE text = 'later'") == (
        dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
    )
    ok(cli(db_dsn, "ads", "del", str(ad_id)))
    assert cli(db_dsn, "ads", "del", str(ad_id)).exit_code == 1

    r = ok(cli(db_dsn, "rates", "add", "international", "852", "--per-minute", "1.2", "--json"))
    assert json.loads(r.stdout)["valid_from"] == cli_today()
    f = tmp_path / "rates.csv"
    f.write_text("call_category,prefix,per_minute,per_sms\nlocal,,0.1,0.05\nhmt,853,0.9,0.2\n")
    ok(cli(db_dsn, "rates", "import", str(f)))
    r = ok(cli(db_dsn, "rates", "list", "--json"))
    assert {x["prefix"] for x in json.loads(r.stdout)} == {"", "852", "853"}
    assert {x["valid_from"] for x in json.loads(r.stdout)} == {cli_today()}
    f.write_text("call_category,prefix,per_minute\nlocal,,0.1\nspace,1,1\n")
    r = cli(db_dsn, "rates", "import", str(f))
    assert r.exit_code == 2 and "line 3: call_category" in r.stderr
    rates = json.loads(ok(cli(db_dsn, "rates", "list", "--json")).stdout)
    gone = next(x["id"] for x in rates if x["prefix"] == "852")
    ok(cli(db_dsn, "rates", "del", str(gone)))
    r = ok(cli(db_dsn, "rates", "list", "--json"))
    assert {x["prefix"] for x in json.loads(r.stdout)} == {"", "853"}
    assert cli(db_dsn, "rates", "del", str(gone)).exit_code == 1

    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    sid = await clean_pool.fetchval(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at)"
        " VALUES ('k', '8613800000001', 'hi', 'expired', $1) RETURNING id",
        long_ago,
    )
    r = ok(cli(db_dsn, "sms", "list", "--status", "expired", "--json"))
    assert json.loads(r.stdout)[0]["id"] == sid
    asked = utcnow()
    ok(cli(db_dsn, "sms", "retry", str(sid)))
    due = await clean_pool.fetchval("SELECT next_attempt_at FROM sms_outbox WHERE id = $1", sid)
    assert asked <= due <= utcnow()  # due now, by the CLI's clock
    assert cli(db_dsn, "sms", "retry", str(sid)).exit_code == 1

    await clean_pool.execute(
        "INSERT INTO missed_call (caller, callee, occurred_at, reason)"
        " VALUES ('8613900000000', '8613800000001', $1, 'no-answer')",
        utcnow(),
    )
    r = ok(cli(db_dsn, "missed-calls", "list", "--callee", "8613800000001", "--json"))
    assert json.loads(r.stdout)[0]["reason"] == "no-answer"
    r = ok(cli(db_dsn, "callbacks", "list", "--pending"))
    assert "(none)" in r.stdout

    await clean_pool.execute(
        "INSERT INTO cdr (record_type, msisdn, callee, started_at, duration_s, charge) VALUES"
        " ('call', '8613800000001', '8613900000000', '2026-11-20T10:00:00Z', 42, 0.3),"
        " ('sms', '8613800000001', NULL, '2026-11-21T10:00:00Z', NULL, 0.1)"
    )
    r = ok(cli(db_dsn, "cdr", "export", "--since", "2026-11-01"))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("id,record_type,msisdn") and len(lines) == 3
    assert "2 CDRs exported" in r.stderr
    out = tmp_path / "cdr.jsonl"
    ok(cli(db_dsn, "cdr", "export", "--format", "json", "-o", str(out), "--until", "2026-11-21"))
    (one,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert one["duration_s"] == 42 and one["charge"] == "0.3000"
    # 18:00 in Shanghai is 10:00 UTC: the call at 10:00Z is in, whatever the machine's zone
    r = ok(
        cli(db_dsn, "cdr", "export", "--since", "2026-11-20T18:00", "--until", "2026-11-20T18:01")
    )
    assert len(r.stdout.splitlines()) == 2 and "1 CDRs exported" in r.stderr

    acts = {
        (x["entity"], x["action"])
        for x in await clean_pool.fetch("SELECT entity, action FROM audit_log")
    }
    assert {
        ("blacklist", "create"),
        ("blacklist", "delete"),
        ("subscriber", "set-pin"),
        ("subscriber", "unlock-pin"),
        ("ad_rule", "create"),
        ("ad_rule", "delete"),
        ("rate", "upsert"),
        ("sms_outbox", "retry"),
    } <= acts


async def test_db_migrate_and_url(clean_pool: asyncpg.Pool, db_dsn: str) -> None:
    r = ok(cli(db_dsn, "db", "migrate", "--json"))
    assert json.loads(r.stdout)["applied"] == []
    assert ok(cli(db_dsn, "db", "url")).stdout.strip() == db_dsn
    r = cli(db_dsn, "db", "stop")
    assert r.exit_code == 1 and "external" in r.stderr


def test_unreachable_database_exits_1() -> None:
    r = cli("postgresql://nobody@/nodb?host=/nonexistent-socket-dir", "subscriber", "list")
    assert r.exit_code == 1 and "cannot connect" in r.stderr


def test_embedded_server_shared_across_processes_and_stopped() -> None:
    home = Path(tempfile.mkdtemp(prefix="mcn-home-"))
    env = {k: v for k, v in os.environ.items() if k != "MCN_DATABASE_URL"}
    env["MCN_HOME"] = str(home)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MCN_SCP, *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        r = run("db", "url")
        assert r.returncode == 0, r.stderr
        dsn = r.stdout.strip()
        assert dsn.endswith(f"/mcn?host={home.resolve()}/pgdata")
        pid = dbmod.embedded_status(home)
        assert pid is not None
        r = run("subscriber", "add", "8613800000001", "--json")  # a second process reuses it
        assert r.returncode == 0, r.stderr
        assert dbmod.embedded_status(home) == pid
        assert run("db", "url").stdout.strip() == dsn
        r = run("subscriber", "show", "8613800000001")
        assert r.returncode == 0 and "8613800000001" in r.stdout
        r = run("db", "stop")
        assert r.returncode == 0 and r.stdout.strip() == "stopped"
        assert dbmod.embedded_status(home) is None
        assert run("db", "stop").stdout.strip() == "not running"
        r = run("subscriber", "show", "8613800000001")  # started again, data kept
        assert r.returncode == 0, r.stderr
        assert dbmod.embedded_status(home) not in (None, pid)
    finally:
        dbmod.stop_embedded(home)
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_commands_migrate_only_a_new_database(pg_admin_dsn: str) -> None:
    """A fresh database is set up on first use; an existing, older one is left alone (other
    nodes still run that schema) and the command says to run `mcn-scp db migrate`."""
    import asyncio

    from scp.state.migrate import current_version, latest_version, migrate
    from tests.conftest import create_database, drop_database

    async def version(dsn: str, target: int | None = None) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            if target is not None:
                await migrate(conn, target=target)
            return await current_version(conn)
        finally:
            await conn.close()

    fresh = create_database(pg_admin_dsn, "fresh", migrated=False)
    old = create_database(pg_admin_dsn, "old", migrated=False)
    try:
        ok(cli(fresh, "subscriber", "list"))
        assert asyncio.run(version(fresh)) == latest_version()
        assert asyncio.run(version(old, target=1)) == 1
        res = cli(old, "subscriber", "list")
        assert res.exit_code == 1 and "db migrate" in res.stderr
        assert asyncio.run(version(old)) == 1
        ok(cli(old, "db", "migrate"))
        ok(cli(old, "subscriber", "list"))
    finally:
        drop_database(pg_admin_dsn, fresh)
        drop_database(pg_admin_dsn, old)


@pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="needs /proc to tell binaries")
def test_embedded_server_of_another_installation_is_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server left running by another clone or virtualenv (its binaries perhaps deleted
    since) is stopped and started again with ours, on the same data."""
    import asyncio

    home = Path(tempfile.mkdtemp(prefix="mcn-home-"))

    async def sql(dsn: str, q: str) -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await (conn.fetchval(q) if q.startswith("SELECT") else conn.execute(q))
        finally:
            await conn.close()

    try:
        dsn = dbmod.start_embedded(home)
        pid = dbmod.embedded_status(home)
        assert pid is not None and dbmod._foreign_postmaster(home) is None  # ours: reused
        asyncio.run(sql(dsn, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"))
        assert dbmod.start_embedded(home) == dsn and dbmod.embedded_status(home) == pid
        monkeypatch.setattr(dbmod, "_server_binary", lambda: Path("/elsewhere/bin/postgres"))
        assert dbmod._foreign_postmaster(home) == pid
        assert dbmod.start_embedded(home) == dsn
        assert dbmod.embedded_status(home) not in (None, pid)
        assert asyncio.run(sql(dsn, "SELECT x FROM kept")) == 7
    finally:
        dbmod.stop_embedded(home)
        subprocess.run(["rm", "-rf", str(home)], check=False)
