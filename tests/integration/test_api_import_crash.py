"""A bulk load whose process dies (SIGKILL: a crash, the OOM killer) is not left "running"
forever: its owner's session advisory lock went with the process, so the next read marks it
failed, and a retry with the same Idempotency-Key gets it as it stands (failed), not the
"queued" of the first answer. Nothing of it is loaded: the import is one transaction.

``mcn-scp web`` runs as its own process on a real PostgreSQL, and is killed for real.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.api_rig import make_token, web_process, write_web_conf

pytestmark = pytest.mark.integration

ROWS = 300_000  # enough that the import is still running when the process is killed


def wait_for(c: httpx.Client, job_id: int, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = c.get(f"/imports/{job_id}").json()
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


async def test_killed_import_is_failed_not_running(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    base = write_web_conf(tmp_path)
    token = make_token(tmp_path, db_dsn, "oss-crash", "provisioning")
    csv = (
        "msisdn,services,group,language\n"
        + "".join(f"8613{i:09d},missed-call,oss,zh\n" for i in range(ROWS))
    ).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "text/csv",
        "Idempotency-Key": "oss-crash-1",
    }
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=60) as c:
        with web_process(tmp_path, db_dsn, base) as proc:
            r = c.post("/imports", content=csv)
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            # a read while its process lives leaves the job running
            job = wait_for(c, job_id, lambda j: j["status"] != "queued" and j["lines_read"] > 0)
            assert job["status"] == "running" and 0 < job["lines_read"] < ROWS + 1, job
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        with web_process(tmp_path, db_dsn, base):
            job = c.get(f"/imports/{job_id}").json()
            assert job["status"] == "failed", job
            assert "interrupted" in job["error"] and job["finished_at"] is not None
            retry = c.post("/imports", content=csv)
            assert retry.status_code == 202 and retry.headers["idempotent-replayed"] == "true"
            assert retry.json()["id"] == job_id and retry.json()["status"] == "failed"
    assert await pool.fetchval("SELECT count(*) FROM subscriber WHERE user_group = 'oss'") == 0
