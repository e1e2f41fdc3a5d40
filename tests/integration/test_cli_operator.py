"""`mcn-scp operator add|list|passwd|del`: the password comes from standard input (never
argv), is stored as a salted scrypt hash, and the console accepts it; bad input exits 2."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import selfservice as flows
from tests.integration.test_cli_provision import cli, ok

pytestmark = pytest.mark.integration

S = flows.WebSettings.from_config(parse_config(""))


async def _login(pool: asyncpg.Pool, name: str, password: str) -> object:
    now = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
    return await flows.operator_login(pool, name, password, address="192.0.2.9", now=now, s=S)


async def test_operator_accounts_from_the_cli(clean_pool: asyncpg.Pool, db_dsn: str) -> None:
    ok(cli(db_dsn, "operator", "add", "carol", "--role", "supervisor", input="s3cret-pass\n"))
    row = await clean_pool.fetchrow("SELECT * FROM operator WHERE name = 'carol'")
    assert row is not None and "s3cret-pass" not in str(dict(row))
    assert str(row["password_hash"]).startswith("scrypt$")
    op = await _login(clean_pool, "carol", "s3cret-pass")
    assert getattr(op, "role", None) == "supervisor"

    data = json.loads(ok(cli(db_dsn, "operator", "list", "--json")).stdout)
    assert [(o["name"], o["role"]) for o in data] == [("carol", "supervisor")]
    assert "hash" not in json.dumps(data)

    ok(cli(db_dsn, "operator", "passwd", "carol", input="another-pass\n"))
    assert await _login(clean_pool, "carol", "s3cret-pass") == "wrong"
    assert getattr(await _login(clean_pool, "carol", "another-pass"), "name", None) == "carol"
    audit = await clean_pool.fetch(
        "SELECT action, channel, after::text AS v FROM audit_log WHERE entity = 'operator' ORDER BY id"
    )
    assert [(a["action"], a["channel"]) for a in audit] == [
        ("create", "cli"),
        ("set-password", "cli"),
    ]
    assert not any("s3cret" in (a["v"] or "") or "another" in (a["v"] or "") for a in audit)

    ok(cli(db_dsn, "operator", "del", "carol"))
    assert await clean_pool.fetchval("SELECT count(*) FROM operator") == 0


async def test_operator_bad_input_exits_2(clean_pool: asyncpg.Pool, db_dsn: str) -> None:
    r = cli(db_dsn, "operator", "add", "dave", "--role", "agent", input="short\n")
    assert r.exit_code == 2 and "password" in r.stderr
    r = cli(db_dsn, "operator", "add", "bad name!", "--role", "agent", input="long-enough-1\n")
    assert r.exit_code == 2 and "name" in r.stderr
    r = cli(db_dsn, "operator", "add", "dave", "--role", "boss", input="long-enough-1\n")
    assert r.exit_code == 2
    r = cli(db_dsn, "operator", "add", "dave", "--role", "agent", input="")
    assert r.exit_code == 2 and "standard input" in r.stderr
    r = cli(db_dsn, "operator", "del", "nobody")
    assert r.exit_code == 1 and "nobody" in r.stderr
