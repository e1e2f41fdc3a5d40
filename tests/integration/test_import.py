"""OSS bulk load (scp.flows.importer and `mcn-scp subscriber import`) against real PostgreSQL:
validate everything first, nothing loaded on any bad row (unless --skip-bad), idempotent
reload, one transaction, bad rows reported by file line."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from scp.config import load_config
from scp.flows import importer
from scp.service import pin as pins
from scp.service.provisioning import Actor
from tests.dates import today

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

OSS = Actor("oss", "tester")
TODAY = dt.date(2026, 11, 25)  # the importer is told the day (the CLI reads the clock)
HEADER = "msisdn,services,group,language"
MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")  # the installed entry point


async def load(
    pool: asyncpg.Pool, text: str, *, today: dt.date = TODAY, **kw: object
) -> importer.ImportResult:
    async with pool.acquire() as conn:
        return await importer.import_subscribers(
            conn, OSS, io.BytesIO(text.encode()), today=today, **kw
        )  # type: ignore[arg-type]


async def snapshot(pool: asyncpg.Pool) -> tuple[list[tuple[object, ...]], ...]:
    subs = await pool.fetch(
        "SELECT msisdn, imsi, status, language, user_group, notify_mode,"
        " forward_to, pin_hash, updated_at FROM subscriber ORDER BY msisdn"
    )
    svcs = await pool.fetch("SELECT * FROM subscription ORDER BY msisdn, service")
    return [tuple(r) for r in subs], [tuple(r) for r in svcs]


GOOD = f"""{HEADER},imsi,notify_mode,forward_to
8613800000001,missed-call;busy,vip,en,460000000000001,sms,
013800000002,missed-call,default,zh,,digest,013900000000
13800000003,,default,zh,,,
"8613800000004","busy; voicemail ;busy",g.1-x,zh,460000000000004,none,+8613900000001
"""


async def test_load_normalises_and_is_idempotent(clean_pool: asyncpg.Pool) -> None:
    r = await load(clean_pool, GOOD)
    assert (r.rows, r.good, r.bad_count, r.loaded) == (4, 4, 0, True)
    assert (r.inserted, r.updated, r.unchanged, r.services_enabled) == (4, 0, 0, 5)
    row = await clean_pool.fetchrow("SELECT * FROM subscriber WHERE msisdn = '8613800000002'")
    assert (row["notify_mode"], row["forward_to"]) == ("digest", "8613900000000")
    assert await clean_pool.fetchval(
        "SELECT array_agg(service ORDER BY service) FROM subscription"
        " WHERE msisdn = '8613800000004'"
    ) == ["busy", "voicemail"]
    before = await snapshot(clean_pool)
    r2 = await load(clean_pool, GOOD)
    assert (r2.inserted, r2.updated, r2.unchanged, r2.services_enabled, r2.services_disabled) == (
        0,
        0,
        4,
        0,
        0,
    )
    assert await snapshot(clean_pool) == before  # not even updated_at moved
    audit = await clean_pool.fetch("SELECT * FROM audit_log ORDER BY id")
    assert [(a["channel"], a["action"], a["entity"]) for a in audit] == (
        [("oss", "create", "subscriber")] * 4 + [("oss", "import", "subscriber-import")] * 2
    )
    created = {a["entity_key"]: a["after"] for a in audit[:4]}
    assert created["8613800000004"] == {
        "user_group": "g.1-x",
        "language": "zh",
        "imsi": "460000000000004",
        "notify_mode": "none",
        "forward_to": "8613900000001",
        "pin_set": False,
    }
    assert audit[4]["after"]["inserted"] == 4 and audit[5]["after"]["unchanged"] == 4


async def test_reload_changes_only_what_differs(clean_pool: asyncpg.Pool) -> None:
    await load(clean_pool, GOOD)
    changed = GOOD.replace("missed-call;busy,vip,en", "busy,vip,zh")
    later, latest = TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=20)
    r = await load(clean_pool, changed, today=later)
    assert (r.updated, r.unchanged, r.services_enabled, r.services_disabled) == (1, 3, 0, 1)
    (upd,) = await clean_pool.fetch("SELECT * FROM audit_log WHERE action = 'update'")
    assert (upd["channel"], upd["entity_key"]) == ("oss", "8613800000001")
    assert (upd["before"]["language"], upd["after"]["language"]) == ("en", "zh")
    assert upd["before"]["imsi"] == upd["after"]["imsi"] == "460000000000001"
    mc = (
        "SELECT start_date, end_date FROM subscription"
        " WHERE msisdn = '8613800000001' AND service = 'missed-call'"
    )
    assert tuple(await clean_pool.fetchrow(mc)) == (TODAY, later)  # ended on the day told
    r = await load(clean_pool, GOOD, today=latest)  # re-enabled: a new start
    assert (r.updated, r.services_enabled) == (1, 1)
    assert tuple(await clean_pool.fetchrow(mc)) == (latest, None)
    # a file without the optional columns keeps the stored imsi/notify_mode/forward_to
    r = await load(clean_pool, f"{HEADER}\n8613800000002,missed-call,default,zh\n")
    assert r.unchanged == 1
    row = await clean_pool.fetchrow("SELECT * FROM subscriber WHERE msisdn = '8613800000002'")
    assert (row["notify_mode"], row["forward_to"]) == ("digest", "8613900000000")


BAD = f"""{HEADER},imsi,pin
8613800000001,missed-call,default,zh,,
12345,missed-call,default,zh,,
8613800000003,teleport,default,zh,,
8613800000004,busy,default,fr,,

8613800000005,busy,bad group,zh,,
8613800000006,busy,default,zh,46000,
8613800000007,busy,default,zh,,12x456
8613800000001,busy,default,zh,,
8613800000009,busy,default,zh,460000000000009,
8613800000010,busy,default,zh,460000000000009,
8613800000011,busy,default
8613800000012,busy,default,zh,,654321
"""


async def test_any_bad_row_loads_nothing_and_lists_lines(clean_pool: asyncpg.Pool) -> None:
    r = await load(clean_pool, BAD)
    assert not r.loaded
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 0
    assert await clean_pool.fetchval("SELECT count(*) FROM audit_log") == 0
    got = {b.line: b.reason for b in r.bad}
    assert sorted(got) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]  # line 6 is blank
    assert got[3].startswith("msisdn:") and got[4].startswith("services:")
    assert got[5].startswith("language:") and got[7].startswith("group:")
    assert got[8].startswith("imsi:") and got[9].startswith("pin:")
    assert "12x456" not in got[9]  # PINs are never echoed
    assert got[2] == "msisdn: 8613800000001 also on line 10"
    assert got[11] == "imsi: 460000000000009 also on line 12"
    assert got[13].startswith("row: has 3 fields")
    assert [b.line for b in r.bad] == sorted(got)


async def test_skip_bad_loads_good_rows(clean_pool: asyncpg.Pool) -> None:
    r = await load(clean_pool, BAD, skip_bad=True)
    assert r.loaded and r.bad_count == 11 and r.inserted == 1
    row = await clean_pool.fetchrow("SELECT msisdn, pin_hash FROM subscriber")
    assert row["msisdn"] == "8613800000012"
    assert pins.verify_pin("654321", row["pin_hash"]) and pins.needs_rehash(row["pin_hash"])


async def test_report_is_capped_but_counts_everything(clean_pool: asyncpg.Pool) -> None:
    pairs = "".join(
        f"86138{i:08d},busy,default,zh\n86138{i:08d},busy,default,en\n" for i in range(1500)
    )
    r = await load(clean_pool, f"{HEADER}\n{pairs}12,busy,default,zh\n")
    assert not r.loaded and r.bad_count == 3001 and len(r.bad) == importer.MAX_REPORTED
    assert r.bad[0] == importer.BadRow(2, "msisdn: 8613800000000 also on line 3")


async def test_pin_is_initial_only(clean_pool: asyncpg.Pool) -> None:
    text = f"{HEADER},pin\n8613800000001,busy,default,zh,123456\n"
    await load(clean_pool, text)
    h1 = await clean_pool.fetchval("SELECT pin_hash FROM subscriber")
    r = await load(clean_pool, text.replace("123456", "999999"))
    assert r.unchanged == 1
    assert await clean_pool.fetchval("SELECT pin_hash FROM subscriber") == h1


async def test_many_pins_hashed_in_worker_processes(clean_pool: asyncpg.Pool) -> None:
    rows = "".join(f"86139{i:08d},busy,default,zh,{100000 + i}\n" for i in range(600))
    r = await load(clean_pool, f"{HEADER},pin\n{rows}")
    assert r.inserted == 600
    got = await clean_pool.fetch("SELECT msisdn, pin_hash FROM subscriber ORDER BY msisdn")
    assert len({g["pin_hash"] for g in got}) == 600
    for g in got[::97]:  # each row got the hash of its own PIN
        pin = str(100000 + int(g["msisdn"][5:]))
        assert pins.verify_pin(pin, g["pin_hash"]) and pins.needs_rehash(g["pin_hash"])


async def test_imsi_of_another_subscriber(clean_pool: asyncpg.Pool) -> None:
    await load(clean_pool, f"{HEADER},imsi\n8613800000001,busy,default,zh,460000000000001\n")
    text = (
        f"{HEADER},imsi\n8613800000002,busy,default,zh,460000000000001\n"
        "8613800000003,busy,default,zh,460000000000003\n"
    )
    r = await load(clean_pool, text)
    assert not r.loaded
    assert [(b.line, b.reason) for b in r.bad] == [
        (2, "imsi: 460000000000001 belongs to subscriber 8613800000001")
    ]
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 1
    r = await load(clean_pool, text, skip_bad=True)
    assert r.loaded and r.inserted == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("msisdn,group,services,language\n", "header must start with"),
        (f"{HEADER},colour\n", "unknown column 'colour'"),
        (f"{HEADER},imsi,imsi\n", "appears twice"),
    ],
)
async def test_bad_header(clean_pool: asyncpg.Pool, text: str, match: str) -> None:
    with pytest.raises(importer.ImportFileError, match=match) as ei:
        await load(clean_pool, text)
    assert ei.value.line == 1


async def test_bad_encoding_and_csv_abort_everything(clean_pool: asyncpg.Pool) -> None:
    rows = "".join(f"86138{i:08d},busy,default,zh\n" for i in range(20000))
    data = (f"{HEADER}\n{rows}").encode() + b"8613800000001,busy,d\xff\xfe,zh\n"
    async with clean_pool.acquire() as conn:
        with pytest.raises(importer.ImportFileError, match="line 20002: not UTF-8"):
            await importer.import_subscribers(conn, OSS, io.BytesIO(data), today=TODAY)
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 0
    data = f'{HEADER}\n{rows}"8613800000001,busy,default,zh\n'.encode()
    async with clean_pool.acquire() as conn:
        with pytest.raises(importer.ImportFileError, match="malformed CSV"):
            await importer.import_subscribers(conn, OSS, io.BytesIO(data), today=TODAY)
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 0


async def test_utf8_bom_and_crlf(clean_pool: asyncpg.Pool) -> None:
    data = ("\ufeff" + HEADER + "\r\n8613800000001,busy,default,zh\r\n").encode()
    async with clean_pool.acquire() as conn:
        r = await importer.import_subscribers(conn, OSS, io.BytesIO(data), today=TODAY)
    assert r.inserted == 1


# --- through the command line ---------------------------------------------------------------


def cli(db_dsn: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    """Invoke `mcn-scp ARGS` in-process; in a thread, since the command runs its own event
    loop and async tests already have one running."""
    from scp.cli import main

    box: list[Result] = []
    t = threading.Thread(
        target=lambda: box.append(
            CliRunner().invoke(main, list(args), input=input, env={"MCN_DATABASE_URL": db_dsn})
        )
    )
    t.start()
    t.join()
    res = box[0]
    return res.exit_code, res.stdout, res.stderr


async def test_cli_import_exit_codes(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: os.PathLike[str]
) -> None:
    f = os.path.join(tmp_path, "subs.csv")
    with open(f, "w") as fh:
        fh.write(BAD)
    code, out, err = cli(db_dsn, "subscriber", "import", f)
    assert code == 2
    assert "line 3: msisdn: '12345'" in err and "nothing loaded" in err
    assert err.index("line 2:") < err.index("line 13:")
    code, out, err = cli(db_dsn, "subscriber", "import", f, "--skip-bad")
    assert code == 0 and "13 rows" not in out and "12 rows, 1 good, 11 bad" in out
    code, out, err = cli(db_dsn, "subscriber", "import", "-", input=GOOD)
    assert code == 0 and "4 added" in out
    # the CLI reads the clock: services start on today in the network's zone, whatever the
    # machine's date and zone (tests/dates.py)
    day = today(load_config())
    assert {r[0] for r in await clean_pool.fetch("SELECT start_date FROM subscription")} == {day}
    code, out, err = cli(db_dsn, "subscriber", "import", "-", "--json", input=GOOD)
    assert code == 0 and '"unchanged": 4' in out
    code, out, err = cli(db_dsn, "subscriber", "import", "-", input="a,b\n")
    assert code == 2 and "line 1: header" in err
    code, out, err = cli(db_dsn, "subscriber", "import", os.path.join(tmp_path, "missing.csv"))
    assert code == 2 and "file:" in err


def test_cli_import_subprocess_stdin(db_dsn: str) -> None:
    # The installed entry point, reading stdin, as the carrier's OSS job would run it.
    r = subprocess.run(
        [MCN_SCP, "subscriber", "import", "-"],
        input=f"{HEADER}\n8613800009999,busy,default,en\n",
        text=True,
        capture_output=True,
        env={**os.environ, "MCN_DATABASE_URL": db_dsn},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "1 rows, 1 good, 0 bad" in r.stdout


# --- fuzz -----------------------------------------------------------------------------------

_TOKENS = [
    "8613800000001",
    "013800000002",
    "13800000003",
    "+8613800000004",
    "0086138000005",
    "12",
    "",
    " ",
    "abc",
    "missed-call",
    "busy;voicemail",
    "missed-call;;busy",
    "x;busy",
    "default",
    "vip",
    "g\tx",
    "a\\b",
    "zh",
    "en",
    "fr",
    "460000000000001",
    "46000",
    "123456",
    "12x456",
    "sms",
    "digest",
    "none",
    "loud",
    "\u4e2d\u6587",
    "\x00",
    "\\N",
    "9" * 40,
]


def test_row_checker_fuzz() -> None:
    """20,000 seeded random rows: a COPY line of exactly 9 clean fields, or (field, reason)."""
    import random

    rnd = random.Random(20261125)
    header = [*importer.REQUIRED, *importer.OPTIONAL]
    checker = importer._RowChecker(header)
    allowed_fields = {*header, "row"}
    good = 0
    template = [
        "8613800000001",
        "missed-call;busy",
        "vip",
        "en",
        "460000000000001",
        "",
        "sms",
        "013900000000",
    ]
    for i in range(20_000):
        if rnd.random() < 0.05:
            row = [rnd.choice(_TOKENS) for _ in range(rnd.randrange(0, 12))]
        else:
            row = list(template)
            for _ in range(rnd.randrange(0, 3)):
                k = rnd.randrange(len(row))
                if rnd.random() < 0.7:
                    row[k] = rnd.choice(_TOKENS)
                else:
                    row[k] = "".join(chr(rnd.randrange(1, 0x3000)) for _ in range(rnd.randrange(8)))
            if row[5] and rnd.random() < 0.98:  # keep scrypt (PIN) rows rare: fast fuzz
                row[5] = ""
        out = checker.check(i + 2, row)
        if isinstance(out, importer._PendingPin):
            assert out.pin == row[5] and "\t" not in out.pin
            out = f"{out.head}scrypt$10$8$1$salt$key{out.tail}"
        if isinstance(out, str):
            good += 1
            assert out.endswith("\n") and out.count("\n") == 1
            fields = out[:-1].split("\t")
            assert len(fields) == 9 and "\\" not in out.replace("\\N", "")
        else:
            assert out[0] in allowed_fields and out[1]
    assert good > 100


async def test_import_fuzz_mutated_files(clean_pool: asyncpg.Pool) -> None:
    """Mutated CSV files: a result or ImportFileError, nothing else; rejects load nothing."""
    import random

    rnd = random.Random(7)
    base = GOOD.encode()
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rnd.randrange(1, 6)):
            op = rnd.randrange(4)
            pos = rnd.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] = rnd.randrange(256)
            elif op == 1:
                data[pos:pos] = rnd.choice([b'"', b",", b"\n", b"\r", b"\x00", b";", b"\xff"])
            elif op == 2:
                del data[pos : pos + rnd.randrange(1, 8)]
            else:
                data = data[:pos]
        before = await clean_pool.fetchval("SELECT count(*) FROM audit_log")
        try:
            async with clean_pool.acquire() as conn:
                r = await importer.import_subscribers(
                    conn, OSS, io.BytesIO(bytes(data)), today=TODAY
                )
        except importer.ImportFileError as e:
            assert e.line >= 1
            assert await clean_pool.fetchval("SELECT count(*) FROM audit_log") == before
            continue
        if not r.loaded:
            assert r.bad_count > 0
            assert await clean_pool.fetchval("SELECT count(*) FROM audit_log") == before
