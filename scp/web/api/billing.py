"""Billing's reads: CDRs by time, with cursors, and the tariffs (scope billing)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from scp.flows import provisioning as prov
from scp.flows.api import ApiClient
from scp.web.api.common import Page, ctx_of, decode_cursor, encode_cursor, json_response, require
from scp.web.api.models import CdrOut, Instant, RateOut
from scp.web.api.problems import responses

router = APIRouter(tags=["billing"])

BILLING = require("billing")


@router.get(
    "/cdrs",
    response_model=Page[CdrOut],
    responses=responses(401, 403, 422),
    summary="Charging data records in start order, since / until a time (scope billing)",
)
async def cdrs(
    request: Request,
    client: Annotated[ApiClient, Depends(BILLING)],
    since: Instant | None = None,
    until: Instant | None = None,
    msisdn: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    key = decode_cursor(cursor, at=dt.datetime, id=int)
    after = (key["at"], key["id"]) if key is not None else None
    rows = await prov.list_cdrs(
        ctx_of(request).pool, since=since, until=until, msisdn=msisdn, after=after, limit=limit
    )
    nxt = (
        encode_cursor(at=rows[-1]["started_at"], id=rows[-1]["id"]) if len(rows) == limit else None
    )
    return json_response({"items": rows, "next_cursor": nxt})


@router.get(
    "/rates",
    response_model=list[RateOut],
    responses=responses(401, 403),
    summary="Tariff lines by category, prefix and validity (scope billing)",
)
async def rates(request: Request, client: Annotated[ApiClient, Depends(BILLING)]) -> Response:
    return json_response(await prov.list_rates(ctx_of(request).pool))
