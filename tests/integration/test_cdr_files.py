"""CDR files (scp.flows.cdrfiles, docs/cdr-format.md) on a real PostgreSQL.

* the files of a day: name, header, records, trailer count and SHA-256 of the record lines;
* exactly once: a CDR whose transaction is still open at the export is left for the next one
  (the watermark is a transaction horizon), then exported there, once;
* two `mcn-scp cdr export --files` processes at once: every CDR in exactly one file;
* a file committed but not written (the node stopped in between) is written by the next
  export, byte for byte; `--period` writes a period again, identical;
* hourly rotation names;
* fee files: a month whose billing run is done goes, with its monthly fee records, into one
  fee file exactly once (a month still running waits), re-written identical on request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import billing, cdrfiles
from scp.flows import provisioning as P
from scp.state import cdrfile_store

pytestmark = pytest.mark.integration

TZ = "Asia/Shanghai"
MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")
NOW = dt.datetime(2024, 6, 12, 1, 0, tzinfo=dt.UTC)
# 2024-06-10 in Shanghai: [06-09 16:00Z, 06-10 16:00Z)
T10 = dt.datetime(2024, 6, 10, 2, 0, tzinfo=dt.UTC)
T11 = dt.datetime(2024, 6, 10, 17, 30, tzinfo=dt.UTC)  # 01:30 on the 11th in Shanghai


async def add_cdrs(db: asyncpg.Pool | asyncpg.Connection, at: dt.datetime, n: int) -> None:
    await db.executemany(
        "INSERT INTO cdr (record_type, msisdn, caller, callee, service, call_category,"
        " started_at, ended_at, duration_s, charge, call_ref) VALUES ('call', $1, $1,"
        " '8613900000001', 'forwarding', 'on-net', $2, $2::timestamptz + interval '61 s', 61, $3, $4)",
        [
            (f"86137{i:08d}", at + dt.timedelta(seconds=i), Decimal("0.1000"), f"ref|{i}")
            for i in range(n)
        ],
    )


def parse(path: Path, fmt: str = "MCNCDR") -> tuple[list[str], list[str], list[str]]:
    """(header fields, record lines, trailer fields); checks count and checksum."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.decode("utf-8").split("\n")[:-1]
    head, records, tail = lines[0].split("|"), lines[1:-1], lines[-1].split("|")
    assert head[:3] == ["H", fmt, "1"] and tail[0] == "T"
    assert int(tail[1]) == len(records)
    body = "".join(r + "\n" for r in records).encode("utf-8")
    assert tail[2] == hashlib.sha256(body).hexdigest()
    return head, records, tail


def ids_in(directory: Path) -> list[int]:
    return [int(r.split("|")[0]) for p in sorted(directory.glob("*.cdr")) for r in parse(p)[1]]


async def export(pool: asyncpg.Pool, directory: Path, node: str = "scp-1", rotation: str = "daily"):
    async with pool.acquire() as conn:
        return await cdrfiles.export_files(
            conn, node=node, directory=directory, rotation=rotation, timezone=TZ, now=NOW
        )


async def test_files_of_a_day_and_an_open_transaction(
    clean_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    pool = clean_pool
    await add_cdrs(pool, T10, 3)
    await add_cdrs(pool, T11, 2)
    # a CDR written by a transaction still open during the export
    late = await pool.acquire()
    tr = late.transaction()
    await tr.start()
    await add_cdrs(late, T10 + dt.timedelta(hours=1), 1)
    try:
        files = await export(pool, tmp_path)
    finally:
        await tr.commit()
        await pool.release(late)
    assert [(Path(f.path).name, f.records) for f in files] == [
        ("MCN_scp-1_20240610_0001.cdr", 3),
        ("MCN_scp-1_20240611_0001.cdr", 2),
    ]
    head, records, tail = parse(tmp_path / "MCN_scp-1_20240610_0001.cdr")
    assert head[3:] == ["scp-1", "20240610", "1", "2024-06-12T01:00:00Z"]
    # call_ref "ref|0": the | inside a field is escaped
    assert records[0].endswith("|ref\\|0")
    assert records[0].split("|")[1:11] == [
        "call",
        "8613700000000",
        "8613700000000",
        "8613900000001",
        "forwarding",
        "on-net",
        "2024-06-10T02:00:00Z",
        "2024-06-10T02:01:01Z",
        "61",
        "0.1000",
    ]
    # the open transaction's CDR comes with the next export, in a file of its own
    again = await export(pool, tmp_path)
    assert [(Path(f.path).name, f.records) for f in again] == [("MCN_scp-1_20240610_0002.cdr", 1)]
    assert sorted(ids_in(tmp_path)) == [
        r["id"] for r in await pool.fetch("SELECT id FROM cdr ORDER BY id")
    ]
    assert await export(pool, tmp_path) == []  # nothing new
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".cdr"]  # no temporary left


async def test_two_exporters_at_once(clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path) -> None:
    pool = clean_pool
    await add_cdrs(pool, T10, 400)
    dirs = {}
    procs = {}
    # hold the watermark so both processes are really at the same point, then let them go
    holder = await pool.acquire()
    tr = holder.transaction()
    await tr.start()
    await holder.execute(cdrfile_store.LOCK_WATERMARK)
    try:
        for node in ("scp-1", "scp-2"):
            dirs[node] = tmp_path / node
            dirs[node].mkdir()
            conf = tmp_path / f"{node}.toml"
            conf.write_text(f'[node]\nname = "{node}"\n', encoding="utf-8")
            procs[node] = subprocess.Popen(
                [MCN_SCP, "cdr", "export", "--files", "--dir", str(dirs[node])],
                env={**os.environ, "MCN_DATABASE_URL": db_dsn, "MCN_CONFIG": str(conf)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        deadline = asyncio.get_running_loop().time() + 60
        while (
            await pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            )
            < 2
        ):
            assert asyncio.get_running_loop().time() < deadline, "the exporters never met"
            await asyncio.sleep(0.05)
        await add_cdrs(pool, T11, 50)  # committed while they wait: the first one's horizon
    finally:
        await tr.rollback()
        await pool.release(holder)
    for node, p in procs.items():
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, (node, err)
    got = ids_in(dirs["scp-1"]) + ids_in(dirs["scp-2"])
    assert len(got) == 450 and len(set(got)) == 450  # every CDR once, none twice
    # two files in all (one per period); which exporter took which CDRs depends on the
    # horizon each saw (a transaction still open, here the other exporter, holds it back)
    assert sum(len(list(d.glob("*.cdr"))) for d in dirs.values()) == 2


async def test_unwritten_file_and_reexport(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    pool = clean_pool
    await add_cdrs(pool, T10, 5)
    (f,) = await export(pool, tmp_path)
    first = Path(f.path).read_bytes()
    # as if the node had stopped between the commit and the rename
    Path(f.path).unlink()
    await pool.execute("UPDATE cdr_file SET written = false, sha256 = ''")
    (again,) = await export(pool, tmp_path, node="scp-2")
    assert Path(again.path).name == "MCN_scp-1_20240610_0001.cdr"  # its name, its header
    assert Path(again.path).read_bytes() == first
    # re-export on request: the same bytes
    Path(again.path).unlink()
    env = {**os.environ, "MCN_DATABASE_URL": db_dsn}
    res = subprocess.run(
        [MCN_SCP, "cdr", "export", "--period", "20240610", "--dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "MCN_scp-1_20240610_0001.cdr").read_bytes() == first
    bad = subprocess.run(
        [MCN_SCP, "cdr", "export", "--period", "2024-06-10", "--dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "period:" in bad.stderr
    # a changed record is refused, not silently exported differently: the file mediation
    # may hold already stays byte for byte, and no temporary file is left behind
    await pool.execute("UPDATE cdr SET charge = 9")
    with pytest.raises(cdrfiles.Conflict, match="changed"):
        async with pool.acquire() as conn:
            await cdrfiles.reexport_period(conn, period="20240610", directory=tmp_path)
    assert (tmp_path / "MCN_scp-1_20240610_0001.cdr").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MCN_scp-1_20240610_0001.cdr"]


async def test_hourly_rotation(clean_pool: asyncpg.Pool, tmp_path: Path) -> None:
    pool = clean_pool
    await add_cdrs(pool, T10, 2)  # 10:00 in Shanghai
    await add_cdrs(pool, T10 + dt.timedelta(minutes=75), 1)  # 11:15
    files = await export(pool, tmp_path, rotation="hourly")
    assert [Path(f.path).name for f in files] == [
        "MCN_scp-1_2024061010_0001.cdr",
        "MCN_scp-1_2024061011_0001.cdr",
    ]


async def test_fee_files_once_per_billed_month(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    pool = clean_pool
    admin = P.Actor("cli", "test")
    june = dt.date(2024, 6, 1)
    for service in ("missed-call", "busy"):
        await billing.set_price(pool, admin, service, "2.00", today=dt.date(2024, 1, 1))
    await P.add_subscriber(
        pool, admin, "8613800000002", today=dt.date(2024, 6, 16), services=["missed-call"]
    )
    await P.add_subscriber(
        pool, admin, "8613800000001", today=dt.date(2024, 5, 1), services=["missed-call", "busy"]
    )
    async with pool.acquire() as conn:
        await billing.run_month(
            conn, month=june, cfg=parse_config(""), today=dt.date(2024, 7, 1), clock=lambda: NOW
        )
    # July's run is not done: its fees are not final yet
    await pool.execute(
        "INSERT INTO billing_run (month, proration, node, started_at) VALUES"
        " ('2024-07-01', 'daily', 'scp-2', $1)",
        NOW,
    )
    files = await export(pool, tmp_path)
    assert [(Path(f.path).name, f.records) for f in files] == [("MCN_scp-1_202406_0001.fee", 3)]
    path = tmp_path / "MCN_scp-1_202406_0001.fee"
    head, records, _tail = parse(path, "MCNFEE")
    assert head[3:] == ["scp-1", "202406", "1", "2024-06-12T01:00:00Z"]
    assert records == [
        "2024-06|8613800000001|busy|30|30|2.0000|2.0000",
        "2024-06|8613800000001|missed-call|30|30|2.0000|2.0000",
        "2024-06|8613800000002|missed-call|15|30|2.0000|1.0000",
    ]
    exported = {r["month"]: r["exported"] for r in await pool.fetch("SELECT * FROM billing_run")}
    assert exported == {june: True, dt.date(2024, 7, 1): False}
    assert await export(pool, tmp_path, node="scp-2") == []  # once, whichever node exports
    first = path.read_bytes()
    # recorded, not written (the node stopped in between): the next export writes it
    path.unlink()
    await pool.execute("UPDATE cdr_file SET written = false, sha256 = '' WHERE kind = 'fee'")
    (again,) = await export(pool, tmp_path, node="scp-2")
    assert Path(again.path) == path and path.read_bytes() == first
    # on request, the same bytes; a changed fee is refused and the file left as it was
    path.unlink()
    res = subprocess.run(
        [MCN_SCP, "cdr", "export", "--period", "202406", "--dir", str(tmp_path)],
        env={**os.environ, "MCN_DATABASE_URL": db_dsn},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert path.read_bytes() == first
    await pool.execute("UPDATE monthly_fee SET charge = 0.5 WHERE msisdn = '8613800000002'")
    with pytest.raises(cdrfiles.Conflict, match="changed"):
        async with pool.acquire() as conn:
            await cdrfiles.reexport_period(conn, period="202406", directory=tmp_path)
    assert path.read_bytes() == first


async def test_cli_answers_name_the_problem(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    await add_cdrs(clean_pool, T10, 1)
    await export(clean_pool, tmp_path)
    env = {**os.environ, "MCN_DATABASE_URL": db_dsn}

    def cdr_export(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MCN_SCP, "cdr", "export", *args, "--dir", str(tmp_path)],
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    bad = cdr_export("--period", "2024061099")
    assert bad.returncode == 2
    assert "period: expected YYYYMMDD, YYYYMMDDHH or YYYYMM" in bad.stderr
    none = cdr_export("--period", "20240101")
    assert none.returncode == 1
    assert "period 20240101: no file was exported for it" in none.stderr
    # [node] name goes into file headers: a name with a separator is refused at load
    conf = tmp_path / "bad.toml"
    conf.write_text('[node]\nname = "scp|1"\n', encoding="utf-8")
    named = cdr_export("--files", MCN_CONFIG=str(conf))
    assert named.returncode == 2 and "node.name" in named.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MCN_scp-1_20240610_0001.cdr", "bad.toml"]
