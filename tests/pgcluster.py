"""A private PostgreSQL server a test may stop, freeze, restart, replicate and promote.

The session's server (tests/conftest.py) is shared by every test and must stay up; the tests of
outages, several nodes and failover start their own with this. It runs the PostgreSQL binaries
the PyPI ``pgserver`` wheel ships (the same on every machine, no system packages); PostgreSQL
refuses to run as root, so under root every server command runs as the system user
``pgserver``, as pgserver itself does (created if missing). The server listens on 127.0.0.1
and a free port (no Unix socket): a standby streams from its primary over it, and a DSN may
name both.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import _in_thread
from tests.helpers import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver.utils import ensure_user_exists

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
SYSTEM_USER = "pgserver" if os.geteuid() == 0 else None


def workdir(prefix: str) -> Path:
    """A fresh directory the server's user can enter (root's temp dirs are 0700)."""
    top = Path(tempfile.mkdtemp(prefix=prefix))
    if SYSTEM_USER is not None:
        ensure_user_exists(SYSTEM_USER)
        top.chmod(0o755)
        for p in top.parents:  # traversal only: nothing is listed
            if p.stat().st_mode & 0o001 == 0:
                p.chmod(p.stat().st_mode | 0o001)
    return top


class PgCluster:
    """One PostgreSQL server (data directory ``base / name``) on ``127.0.0.1:port``."""

    def __init__(self, base: Path, name: str = "primary", port: int | None = None) -> None:
        self.base = base
        self.data = base / name
        self.port = port or free_port()
        self.log = base / f"{name}.log"

    # -- commands --------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> str:
        kwargs: dict[str, Any] = {}
        if SYSTEM_USER is not None:
            kwargs["user"] = SYSTEM_USER
        r = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base,
            **kwargs,
        )
        if r.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {r.stderr.strip() or r.stdout.strip()}\n{log}")
        return r.stdout

    def _own(self, path: Path) -> None:
        if SYSTEM_USER is not None:
            u = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, u.pw_uid, u.pw_gid)

    def init(self, **settings: str) -> PgCluster:
        """initdb (trust authentication, replication allowed from 127.0.0.1) and our settings:
        TCP on ``port`` only, ready to stream to a standby."""
        self._own(self.base)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.configure(
            listen_addresses="'127.0.0.1'",
            unix_socket_directories="''",
            wal_level="replica",
            max_wal_senders="5",
            hot_standby="on",
            fsync="off",  # the tests stop servers, never the machine
            **settings,
        )
        return self

    def configure(self, **settings: str) -> None:
        """Settings appended to postgresql.conf (the last one read wins); ``port`` always."""
        lines = [f"port = {self.port}", *(f"{k} = {v}" for k, v in settings.items())]
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        self._own(self.base)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: ``fast`` rolls sessions back, ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def reload(self, **settings: str) -> None:
        """Settings appended, then read by the running server (pg_ctl reload)."""
        self.configure(**settings)
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def promote(self) -> None:
        """A standby becomes a primary (pg_ctl promote, waiting until it accepts writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def standby(self, name: str = "standby") -> PgCluster:
        """A streaming standby of this (running) server: pg_basebackup -R, then started."""
        other = PgCluster(self.base, name)
        self._run(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(other.data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        # the copied settings would make a promoted standby wait for a standby of its own
        other.configure(synchronous_standby_names="''")
        other.start()
        return other

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def _processes(self) -> list[int]:
        """The postmaster and its children (from /proc: no extra dependency)."""
        root = self.postmaster_pid()
        pids = [root]
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == root:
                    pids.append(int(d.name))
        return pids

    def freeze(self) -> None:
        """Every server process stopped (SIGSTOP): connections stay open, nothing answers,
        as a server stuck on its disk or a network that drops packets looks."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    # -- databases -------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str = "mcn") -> str:
        """A new database with every migration applied; its DSN."""
        from scp.state.migrate import migrate

        async def go() -> None:
            admin = await asyncpg.connect(self.dsn())
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            conn = await asyncpg.connect(self.dsn(name))
            try:
                await migrate(conn)
            finally:
                await conn.close()

        _in_thread(go)
        return self.dsn(name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(
                [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} not ready")
            time.sleep(0.1)


def remove(base: Path, *clusters: PgCluster) -> None:
    """Stop what still runs (thawed first) and delete the directory."""
    for c in clusters:
        if (c.data / "postmaster.pid").exists():
            try:
                c.thaw()
                c.stop("immediate")
            except (RuntimeError, OSError, subprocess.SubprocessError):
                pass
    shutil.rmtree(base, ignore_errors=True)


def cluster_fixture(prefix: str) -> Iterator[PgCluster]:
    """A test module's own running server (for ``yield from`` in a module-scoped fixture),
    removed at the end whatever state the tests left it in."""
    base = workdir(prefix)
    c = PgCluster(base).init()
    c.start()
    try:
        yield c
    finally:
        remove(base, c)
