"""A property-based run over the whole OpenAPI document (schemathesis) against ``mcn-scp web``
running as its own process on a real PostgreSQL: valid and invalid requests to every
operation; no answer may be a 500, and every answer must match its documented status, media
type, headers and schema. (Whether invalid data is refused is left to the tests that name the
field: schemathesis counts a query value as invalid by its JSON type, which the wire does not
carry - ``group=true`` is the string "true".) Bounded (``MAX_EXAMPLES`` per operation) so ``make test`` stays fast.

The token comes from the real command, ``mcn-scp api token create``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import free_port

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, db_dsn: str) -> Iterator[tuple[str, str]]:
    """(base URL, a token holding every scope) of a running ``mcn-scp web``."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("web")
    conf = tmp / "web.toml"
    conf.write_text(
        f'[web]\nlisten = "127.0.0.1:{port}"\n[log]\nformat = "json"\nlevel = "error"\n'
    )
    env = dict(os.environ, MCN_DATABASE_URL=db_dsn)
    cmd = [sys.executable, "-m", "scp", "--config", str(conf)]
    made = subprocess.run(
        [*cmd, "api", "token", "create", "fuzzer", "--scope", "provisioning,media,billing,read"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = made.stdout.splitlines()[0]
    assert token.startswith("mcn_")
    # the log goes to a file: a pipe nobody reads while the run goes on would fill and stop
    # the server in the middle of a write
    log_path = tmp / "web.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen([*cmd, "web"], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    log_path.read_text(errors="replace")[-4000:] or "no start"
                ) from None
            time.sleep(0.1)
    # something to find: a subscriber with services, a blacklist entry
    auth = {"Authorization": f"Bearer {token}"}
    sub = {"services": ["missed-call", "voicemail"], "group": "vip"}
    httpx.put(f"{base}/api/v1/subscribers/8613912345678", json=sub, headers=auth).raise_for_status()
    try:
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log_file.close()
        err = log_path.read_text(errors="replace")
        # a 500 is also logged, and refused input must not be: no traceback of a request
        assert "api request failed" not in err and "Traceback" not in err, err[-4000:]


@pytest.fixture(scope="module")
def api_schema(web: tuple[str, str]) -> schemathesis.BaseSchema:
    base, _ = web
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
    )
    schema.config.update(base_url=f"{base}/api/v1")
    return schema


def test_every_operation_answers_as_documented(
    api_schema: schemathesis.BaseSchema, web: tuple[str, str]
) -> None:
    """Each operation, in both modes, up to MAX_EXAMPLES requests; every failure is collected
    with the request that caused it (the repro line schemathesis prints)."""
    base, token = web
    auth = {"Authorization": f"Bearer {token}"}
    paths = httpx.get(f"{base}/api/v1/openapi.json").json()["paths"]
    documented = sum(len(item) for item in paths.values())
    failures: list[str] = []
    operations = 0
    for found in api_schema.get_all_operations():
        op = found.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
                # no shrinking: each step is a request; the failing request is reported as found
                phases=[Phase.explicit, Phase.generate],
            )
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=auth, checks=CHECKS)

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - schemathesis raises groups; all kept
                failures.append(f"{op.label} [{mode.value}]: {e}"[:3000])
    assert operations == documented >= 30  # every operation was run, none skipped
    assert not failures, "\n\n".join(failures)


def test_the_document_is_the_one_served(web: tuple[str, str]) -> None:
    base, _ = web
    doc = httpx.get(f"{base}/api/v1/openapi.json").json()
    assert doc["info"]["title"] == "mcn-scp carrier API"
    assert {s["url"] for s in doc.get("servers", [])} <= {"/api/v1"}
    assert Path(__file__).name  # the run above covered every path of this document
