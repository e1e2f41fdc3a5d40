"""PostgreSQL connection pool and the embedded private server (ARCHITECTURE §3, Environment).

``MCN_DATABASE_URL`` set: that server is used as is. Unset: every command uses a private
PostgreSQL whose data directory is ``$MCN_HOME/pgdata`` (default ``~/.local/share/mcn-scp``),
started on first need and left running so the next process reuses it, until ``mcn-scp db stop``.
The server binaries come from the ``pgserver`` wheel, so a fresh machine needs no packages. It
listens on a Unix socket in the data directory only (no TCP port to collide with). As root,
pgserver runs PostgreSQL as the system user ``pgserver`` (PostgreSQL refuses to run as root)
and makes the parent directories of ``pgdata`` traversable for it.

Cross-process behaviour (pgserver 0.1.x): start-up and initdb run under an inter-process file
lock; a process that finds ``postmaster.pid`` naming a live postmaster reuses it, so concurrent
commands share one server. ``cleanup_mode=None`` keeps the server running after we exit.

A running server started by another installation (another clone or virtualenv, possibly
deleted or upgraded since) is not reused: its PostgreSQL looks for its libraries (PL/pgSQL,
which the call path uses) where that installation was. It is given a fast shutdown and ours
starts on the same data directory (Linux: the postmaster's ``/proc/PID/exe`` is compared).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg

from scp.config import DatabaseConfig

DEFAULT_HOME = "~/.local/share/mcn-scp"
EMBEDDED_DATABASE = "mcn"
_DB_MARKER = "mcn_database_created"


class DatabaseError(RuntimeError):
    """The database could not be reached, started or stopped."""


def mcn_home() -> Path:
    """``$MCN_HOME`` or the default, expanded (not created)."""
    return Path(os.environ.get("MCN_HOME") or DEFAULT_HOME).expanduser()


def _pgserver() -> Any:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root shells, containers);
    # that is noise on every CLI command, and the fallback it takes is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def _system_user() -> str | None:
    """The OS user the embedded postgres runs as: pgserver's own user when we are root."""
    return "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def embedded_pgdata(home: Path | None = None) -> Path:
    """Data directory of the embedded server."""
    return (home or mcn_home()) / "pgdata"


def _server_binary() -> Path:
    """The postgres executable of this installation's pgserver."""
    return (Path(_pgserver().__file__).parent / "pginstall" / "bin" / "postgres").resolve()


def _foreign_postmaster(home: Path) -> int | None:
    """PID of a running embedded postmaster whose executable is not this installation's (or
    was deleted since it started); None if there is none or it cannot be told."""
    pid = embedded_status(home)
    if pid is None:
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:  # no /proc, or not allowed to look: reuse it as before
        return None
    if exe.endswith(" (deleted)") or Path(exe) != _server_binary():
        return pid
    return None


def _stop_foreign(home: Path, pid: int, timeout: float = 60.0) -> None:
    # SIGINT is PostgreSQL's fast shutdown (sessions rolled back, clean checkpoint); the other
    # installation's pg_ctl may be gone, so the signal is sent directly.
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while embedded_status(home) == pid:
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"embedded PostgreSQL {pid} (another installation's) did not"
                f" stop within {timeout:.0f} s; stop it and retry"
            )
        time.sleep(0.1)


def start_embedded(home: Path | None = None) -> str:
    """Start (or reuse) the embedded server under ``home``; return the DSN of its ``mcn`` DB."""
    home = home or mcn_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        pgserver = _pgserver()
        foreign = _foreign_postmaster(home)
        if foreign is not None:
            print(
                f"mcn-scp: the embedded PostgreSQL under {home} (pid {foreign}) was started by"
                " another installation; restarting it with this one",
                file=sys.stderr,
            )
            _stop_foreign(home, foreign)
            # a handle this process may hold still names the stopped server (pgserver keeps
            # one per data directory): forget it so get_server starts ours
            getattr(pgserver.PostgresServer, "_instances", {}).pop(
                (home / "pgdata").expanduser().resolve(), None
            )
        modes = _ancestor_modes(home / "pgdata") if _system_user() else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(home / "pgdata", cleanup_mode=None)
        _restore_listing(modes)
        pgdata = Path(server.pgdata)
        if not (pgdata / _DB_MARKER).exists():
            _create_database(server.get_uri(), EMBEDDED_DATABASE)
            (pgdata / _DB_MARKER).write_text("1\n")
        return str(server.get_uri(database=EMBEDDED_DATABASE))
    except (OSError, subprocess.SubprocessError, AssertionError) as e:
        raise DatabaseError(f"cannot start embedded PostgreSQL under {home}: {e}") from e


def _ancestor_modes(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in path.resolve().parents if p.exists()}


def _restore_listing(modes: dict[Path, int]) -> None:
    # As root, pgserver makes every ancestor of pgdata g+rx,o+rx so its postgres user can reach
    # it; with the default MCN_HOME that would let every user list /root. Traversal (x) is all
    # postgres needs, so take the read bit back where pgserver added it.
    for p, mode in modes.items():
        try:
            now = p.stat().st_mode
            wanted = mode | stat.S_IXGRP | stat.S_IXOTH
            if now != wanted and now & ~wanted & (stat.S_IRGRP | stat.S_IROTH):
                p.chmod(stat.S_IMODE(wanted))
        except OSError:
            pass


def _psql_path() -> Path:
    return Path(_pgserver().__file__).parent / "pginstall" / "bin" / "psql"


def _create_database(admin_uri: str, name: str) -> None:
    # CREATE DATABASE cannot run in a transaction and must not race with a second process
    # doing the same: check, create, and accept "already exists" from the loser.
    psql = str(_psql_path())
    exists = subprocess.run(
        [psql, admin_uri, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    if exists == "1":
        return
    r = subprocess.run(
        [psql, admin_uri, "-c", f'CREATE DATABASE "{name}"'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode != 0 and "already exists" not in r.stderr:
        raise DatabaseError(f"CREATE DATABASE {name}: {r.stderr.strip()}")


def embedded_status(home: Path | None = None) -> int | None:
    """PID of the running embedded postmaster, or None."""
    pid_file = embedded_pgdata(home) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by the pgserver user
        return pid
    return pid


def stop_embedded(home: Path | None = None) -> bool:
    """Stop the embedded server (fast shutdown: sessions are rolled back). True if it ran."""
    pgdata = embedded_pgdata(home)
    if embedded_status(home) is None:
        return False
    pg_ctl = Path(_pgserver().__file__).parent / "pginstall" / "bin" / "pg_ctl"
    kwargs: dict[str, Any] = {}
    user = _system_user()
    if user is not None:
        kwargs["user"] = user
    r = subprocess.run(
        [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )
    if r.returncode != 0 and embedded_status(home) is not None:
        raise DatabaseError(f"pg_ctl stop failed: {r.stderr.strip() or r.stdout.strip()}")
    return True


def resolve_dsn() -> str:
    """``$MCN_DATABASE_URL``, else the embedded server's DSN (starting it if needed)."""
    url = os.environ.get("MCN_DATABASE_URL")
    if url:
        return url
    return start_embedded()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects (audit before/after, CDR details).
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
            decoder=json.loads,
            schema="pg_catalog",
        )


def _connect_options(options: DatabaseConfig | None) -> dict[str, Any]:
    # A DSN may name several hosts with target_session_attrs=read-write (asyncpg tries them in
    # order and keeps the first that accepts writes): the connect timeout covers them all.
    o = options or DatabaseConfig()
    return {"timeout": o.connect_timeout, "statement_cache_size": o.statement_cache_size}


async def connect(
    dsn: str | None = None, *, options: DatabaseConfig | None = None
) -> asyncpg.Connection:
    """One connection with our type codecs (CLI commands and bulk load use one), opened as
    ``[database]`` says (``options``; None: the defaults)."""
    dsn = dsn or await asyncio.to_thread(resolve_dsn)
    try:
        conn = await asyncpg.connect(dsn, **_connect_options(options))
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        raise DatabaseError(f"cannot connect to PostgreSQL: {e}") from e
    await _init_connection(conn)
    return conn


async def open_pool(
    dsn: str | None = None,
    *,
    min_size: int = 1,
    max_size: int | None = None,
    options: DatabaseConfig | None = None,
) -> asyncpg.Pool:
    """A connection pool on ``dsn`` (default: ``resolve_dsn()``, run off the event loop),
    opened as ``[database]`` says (``options``); ``max_size`` defaults to its
    ``pool_max_size``."""
    dsn = dsn or await asyncio.to_thread(resolve_dsn)
    opts = options or DatabaseConfig()
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=opts.pool_max_size if max_size is None else max_size,
            init=_init_connection,
            **_connect_options(opts),
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        raise DatabaseError(f"cannot connect to PostgreSQL: {e}") from e
    assert pool is not None
    return pool
