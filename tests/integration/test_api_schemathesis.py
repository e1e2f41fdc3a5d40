"""A property-based run over the whole OpenAPI document (schemathesis) against ``mcn-scp web``
running as its own process on a real PostgreSQL: valid and invalid requests to every
operation; no answer may be a 500, and every answer must match its documented status, media
type, headers and schema. (Whether invalid data is refused is left to the tests that name the
field: schemathesis counts a query value as invalid by its JSON type, which the wire does not
carry - ``group=true`` is the string "true".) Bounded (``MAX_EXAMPLES`` per operation) so
``make test`` stays fast; times (format ``date-time``) are drawn with the edges a random draw
seldom reaches (offsets of +-14 h at the years 1 and 9999, where a valid RFC 3339 time is out
of PostgreSQL's and Python's range once in UTC).

The token comes from the real command, ``mcn-scp api token create``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scp.config import parse_config
from scp.web.api import build
from scp.web.context import WebContext
from tests.integration.api_rig import make_token, web_process, write_web_conf

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

EDGES = [dt.timezone(dt.timedelta(hours=h)) for h in (14, -14, 8, 0)]
DATE_TIMES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "1899-12-31T23:59:59Z",
            "2026-12-07T10:00:00+08:00",
        ]
    ),
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(EDGES),
    ).map(dt.datetime.isoformat),
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, db_dsn: str) -> Iterator[tuple[str, str]]:
    """(base URL, a token holding every scope) of a running ``mcn-scp web``."""
    tmp = tmp_path_factory.mktemp("web")
    base = write_web_conf(tmp)
    token = make_token(tmp, db_dsn, "fuzzer")
    with web_process(tmp, db_dsn, base):
        # something to find: a subscriber with services, a blacklist entry
        auth = {"Authorization": f"Bearer {token}"}
        sub = {"services": ["missed-call", "voicemail"], "group": "vip"}
        httpx.put(
            f"{base}/api/v1/subscribers/8613912345678", json=sub, headers=auth
        ).raise_for_status()
        yield base, token
    err = (tmp / "web.log").read_text(errors="replace")
    # a 500 is also logged, and refused input must not be: no traceback of a request
    assert "api request failed" not in err and "Traceback" not in err, err[-4000:]


@pytest.fixture(scope="module")
def api_schema(web: tuple[str, str]) -> schemathesis.BaseSchema:
    base, _ = web
    schemathesis.openapi.format("date-time", DATE_TIMES)
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
    # the process serves the document this code builds (the one the run above went through)
    ctx = WebContext(
        cfg=parse_config(""), pool=None, wall_now=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )  # type: ignore[arg-type]
    served = {k: v for k, v in doc.items() if k != "servers"}  # the mount adds its prefix
    assert served == json.loads(json.dumps(build(ctx).openapi()))
    # and every error it documents is a problem document; every operation documents its 422
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = {int(c) for c in op["responses"] if c.isdigit()}
            assert 422 in codes or not op.get("parameters") and "requestBody" not in op, (
                method,
                path,
            )
            for c in codes:
                if c >= 400:
                    assert list(op["responses"][str(c)]["content"]) == ["application/problem+json"]
