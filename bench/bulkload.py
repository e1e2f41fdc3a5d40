"""Benchmark: OSS bulk load through `mcn-scp subscriber import` vs a plain COPY of the same file.

Prints one JSON object: rows/s of the import (a subprocess, as ops would run it) on an empty
database, of a reload of the same file (idempotent: nothing changes), of a plain
``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the same file into a bare text table in the same
database, the import's peak RSS, and the cost of rows carrying a PIN (scrypt, pin.BULK).
It also times the same COPY into a table with nothing but the subscriber table's keys (the
MSISDN primary key alone, then with the IMSI and user-group indexes too): no import that can
upsert idempotently can be faster than that, so ``copy_with_*_vs_copy`` is the ceiling of
``import_vs_copy`` on the machine it runs on.

Runs against a throw-away database on ``$MCN_DATABASE_URL``'s server if set, else on a
temporary pgserver instance (deleted afterwards). Usage:
    python bench/bulkload.py [--rows 1000000] [--pin-rows 20000] [--no-imsi]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from scratch import scratch_database

MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")
SERVICES = ("missed-call;busy", "missed-call", "missed-call;busy;voicemail", "busy")
GROUPS = ("default", "vip", "prepaid", "corp")


def generate(path: Path, rows: int, *, imsi: bool, pin: bool = False, start: int = 0) -> None:
    """Write a bulk-load CSV of ``rows`` distinct subscribers."""
    cols = "msisdn,services,group,language" + (",imsi" if imsi else "") + (",pin" if pin else "")
    with path.open("w", buffering=1 << 20) as f:
        f.write(cols + "\n")
        for i in range(start, start + rows):
            line = f"86138{i:08d},{SERVICES[i % 4]},{GROUPS[i % 4]},{'zh' if i % 3 else 'en'}"
            if imsi:
                line += f",46000{i:010d}"
            if pin:
                line += f",{(i * 7919) % 1000000:06d}"
            f.write(line + "\n")


def run_import(dsn: str, path: Path) -> dict[str, Any]:
    """Run the CLI import in a subprocess; wall time and the child's peak RSS."""
    env = {**os.environ, "MCN_DATABASE_URL": dsn}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [MCN_SCP, "subscriber", "import", str(path), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate()
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"seconds": secs, "result": json.loads(out)}


# The floor any idempotent import has to stand on: the same COPY into a table that carries the
# subscriber table's keys (an upsert needs the unique MSISDN; IMSI is unique; the call path
# reads by user group). No validation, no merge, no service rows, no audit.
KEYED_TABLES = {
    "msisdn_key": "CREATE TABLE timed_copy ({cols}, PRIMARY KEY (msisdn))",
    "subscriber_keys": (
        "CREATE TABLE timed_copy ({cols}, PRIMARY KEY (msisdn), UNIQUE (imsi));"
        ' CREATE INDEX ON timed_copy ("group")'
    ),
}
BARE_TABLE = "CREATE TABLE timed_copy ({cols})"


async def timed_copy(dsn: str, path: Path, ddl: str) -> float:
    """Seconds of ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of ``path`` into a fresh table
    made by ``ddl`` (``{cols}``: the file's columns as text)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS timed_copy")
        header = path.open().readline().strip().split(",")
        cols = ", ".join(f'"{c}" text COLLATE "C"' for c in header)
        ddl = ddl.format(cols=cols)
        if "imsi" not in header:
            ddl = ddl.replace(", UNIQUE (imsi)", "")
        await conn.execute(ddl)
        t0 = time.perf_counter()
        await conn.copy_to_table("timed_copy", source=str(path), format="csv", header=True)
        secs = time.perf_counter() - t0
        await conn.execute("DROP TABLE timed_copy")
        return secs
    finally:
        await conn.close()


def peak_rss_mb_children() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pin-rows", type=int, default=20_000)
    ap.add_argument("--no-imsi", action="store_true")
    args = ap.parse_args()

    with scratch_database("mcn-bench-") as (dsn, tmp):
        run(args, dsn, tmp)


def run(args: argparse.Namespace, dsn: str, tmp: Path) -> None:
    csv_path = tmp / "subscribers.csv"
    t0 = time.perf_counter()
    generate(csv_path, args.rows, imsi=not args.no_imsi)
    gen_secs = time.perf_counter() - t0
    # Schema first (outside the timing): the import would migrate an empty database itself.
    subprocess.run(
        [MCN_SCP, "db", "migrate"],
        env={**os.environ, "MCN_DATABASE_URL": dsn},
        check=True,
        capture_output=True,
    )
    first = run_import(dsn, csv_path)
    rss_mb = peak_rss_mb_children()
    again = run_import(dsn, csv_path)
    copy_secs = asyncio.run(timed_copy(dsn, csv_path, BARE_TABLE))
    floors = {k: asyncio.run(timed_copy(dsn, csv_path, ddl)) for k, ddl in KEYED_TABLES.items()}
    pin_path = tmp / "pins.csv"
    generate(pin_path, args.pin_rows, imsi=False, pin=True, start=50_000_000)
    pins = run_import(dsn, pin_path) if args.pin_rows else None
    n = args.rows
    report = {
        "rows": n,
        "file_mb": round(csv_path.stat().st_size / 1e6, 1),
        "imsi_column": not args.no_imsi,
        "cpus": os.cpu_count(),
        "generate_seconds": round(gen_secs, 2),
        "import_seconds": round(first["seconds"], 2),
        "import_rows_per_s": round(n / first["seconds"]),
        "reload_seconds": round(again["seconds"], 2),
        "reload_rows_per_s": round(n / again["seconds"]),
        "reload_unchanged": again["result"]["unchanged"],
        "plain_copy_seconds": round(copy_secs, 2),
        "plain_copy_rows_per_s": round(n / copy_secs),
        "import_vs_copy": round(copy_secs / first["seconds"], 3),
        "reload_vs_copy": round(copy_secs / again["seconds"], 3),
        # the same COPY into a table with only the subscriber table's keys: the ceiling of
        # import_vs_copy for any import that can upsert (see KEYED_TABLES)
        **{f"copy_with_{k}_seconds": round(v, 2) for k, v in floors.items()},
        **{f"copy_with_{k}_vs_copy": round(copy_secs / v, 3) for k, v in floors.items()},
        "import_peak_rss_mb": round(rss_mb, 1),
        "import_phases_s": first["result"]["phases"],
        "reload_phases_s": again["result"]["phases"],
        "under_60s": first["seconds"] < 60,
    }
    if pins:
        report.update(
            {
                "pin_rows": args.pin_rows,
                "pin_import_seconds": round(pins["seconds"], 2),
                "pin_rows_per_s": round(args.pin_rows / pins["seconds"]),
                "pin_ms_per_row": round(pins["seconds"] * 1000 / args.pin_rows, 3),
            }
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
