"""Provisioning for BOSS / CRM in real time: subscribers, services, blacklists, PINs, user groups
(CRM segments) and the ads that target them, and the call inquiry (来话点播) of a number.

Each route is a thin shell over :mod:`scp.flows.provisioning`, the functions the CLI, IVR, SMS
and portal call (ARCHITECTURE §2): the same validation, one transaction per change with its
audit row (channel ``api``, the client's name).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from scp.flows import provisioning as prov
from scp.flows.api import ApiClient
from scp.flows.provisioning import Db
from scp.service.notifications import local_day
from scp.service.provisioning import valid_msisdn
from scp.web.api.common import (
    Page,
    actor,
    ctx_of,
    decode_cursor,
    encode_cursor,
    fingerprint,
    idempotent,
    json_response,
    require,
)
from scp.web.api.models import (
    AdIn,
    AdOut,
    BlacklistIn,
    BlacklistOut,
    GroupOut,
    MissedCallOut,
    Service,
    SubscriberIn,
    SubscriberOut,
    SubscriberPatch,
)
from scp.web.api.problems import responses

router = APIRouter(tags=["provisioning"])

WRITE = require("provisioning")
READ = require("provisioning", "read")
MSISDN = Annotated[str, Path(min_length=1, max_length=32, description="E.164 or national")]
LIMIT = Annotated[int, Query(ge=1, le=1000)]
ID = Annotated[int, Path(ge=1, le=2**63 - 1)]
AUTH = (401, 403)


def _today(request: Request) -> dt.date:
    ctx = ctx_of(request)
    return local_day(ctx.wall_now(), ctx.cfg)


@router.get(
    "/subscribers",
    response_model=Page[SubscriberOut],
    responses=responses(*AUTH, 422),
    summary="List subscribers (scope provisioning or read)",
)
async def list_subscribers(
    request: Request,
    client: Annotated[ApiClient, Depends(READ)],
    group: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    cursor: str | None = None,
    limit: LIMIT = 100,
) -> Response:
    after = decode_cursor(cursor, msisdn=str)
    subs = await prov.list_subscribers(
        ctx_of(request).pool,
        group=group,
        after=after["msisdn"] if after is not None else None,
        limit=limit,
    )
    nxt = encode_cursor(msisdn=subs[-1].msisdn) if len(subs) == limit else None
    return json_response({"items": subs, "next_cursor": nxt})


@router.put(
    "/subscribers/{msisdn}",
    response_model=SubscriberOut,
    status_code=200,
    responses={
        201: {"model": SubscriberOut, "description": "Created"},
        **responses(*AUTH, 409, 422),
    },
    summary="Create or replace a subscriber (scope provisioning)",
)
async def put_subscriber(
    request: Request,
    msisdn: MSISDN,
    body: SubscriberIn,
    client: Annotated[ApiClient, Depends(WRITE)],
) -> Response:
    sub, created = await prov.put_subscriber(
        ctx_of(request).pool,
        actor(client),
        msisdn,
        today=_today(request),
        services=body.services,
        group=body.group,
        language=body.language,
        notify_mode=body.notify_mode,
        voicemail_notify=body.voicemail_notify,
        forward_to=body.forward_to,
        imsi=body.imsi,
        status=body.status,
    )
    return json_response(sub, 201 if created else 200, location=f"/api/v1/subscribers/{sub.msisdn}")


@router.get(
    "/subscribers/{msisdn}",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 422),
    summary="One subscriber (scope provisioning or read)",
)
async def get_subscriber(
    request: Request, msisdn: MSISDN, client: Annotated[ApiClient, Depends(READ)]
) -> Response:
    return json_response(await prov.get_subscriber(ctx_of(request).pool, msisdn))


@router.patch(
    "/subscribers/{msisdn}",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 409, 422),
    summary="Change some attributes (scope provisioning)",
)
async def patch_subscriber(
    request: Request,
    msisdn: MSISDN,
    body: SubscriberPatch,
    client: Annotated[ApiClient, Depends(WRITE)],
) -> Response:
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    for k in ("group", "language", "notify_mode", "voicemail_notify", "status"):
        if k in changes and changes[k] is None:
            del changes[k]  # null means "leave it" for attributes that cannot be empty
    sub = await prov.update_subscriber(ctx_of(request).pool, actor(client), msisdn, **changes)
    return json_response(sub)


@router.delete(
    "/subscribers/{msisdn}",
    status_code=204,
    responses=responses(*AUTH, 404, 422),
    summary="Remove a subscriber and everything hanging off it (scope provisioning)",
)
async def delete_subscriber(
    request: Request, msisdn: MSISDN, client: Annotated[ApiClient, Depends(WRITE)]
) -> Response:
    await prov.delete_subscriber(ctx_of(request).pool, actor(client), msisdn)
    return Response(status_code=204)


@router.put(
    "/subscribers/{msisdn}/services/{service}",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 422),
    summary="Subscribe a service from today (scope provisioning)",
)
async def enable_service(
    request: Request,
    msisdn: MSISDN,
    service: Service,
    client: Annotated[ApiClient, Depends(WRITE)],
) -> Response:
    sub = await prov.enable_service(
        ctx_of(request).pool, actor(client), msisdn, service, today=_today(request)
    )
    return json_response(sub)


@router.delete(
    "/subscribers/{msisdn}/services/{service}",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 422),
    summary="End a service today (scope provisioning)",
)
async def disable_service(
    request: Request,
    msisdn: MSISDN,
    service: Service,
    client: Annotated[ApiClient, Depends(WRITE)],
) -> Response:
    sub = await prov.disable_service(
        ctx_of(request).pool, actor(client), msisdn, service, today=_today(request)
    )
    return json_response(sub)


@router.get(
    "/subscribers/{msisdn}/blacklist",
    response_model=list[BlacklistOut],
    responses=responses(*AUTH, 422),
    summary="The subscriber's blacklist (scope provisioning or read)",
)
async def get_blacklist(
    request: Request, msisdn: MSISDN, client: Annotated[ApiClient, Depends(READ)]
) -> Response:
    return json_response(await prov.blacklist_list(ctx_of(request).pool, msisdn))


@router.post(
    "/subscribers/{msisdn}/blacklist",
    response_model=BlacklistOut,
    status_code=201,
    responses=responses(*AUTH, 404, 409, 422),
    summary="Block a number or prefix (scope provisioning; Idempotency-Key)",
)
async def add_blacklist(
    request: Request,
    msisdn: MSISDN,
    body: BlacklistIn,
    client: Annotated[ApiClient, Depends(WRITE)],
) -> Response:
    async def run(db: Db) -> Response:
        entry = await prov.blacklist_add(db, actor(client), msisdn, body.number, prefix=body.prefix)
        return json_response(entry, 201)

    return await idempotent(request, client, fingerprint(request, body.model_dump_json()), run)


@router.delete(
    "/subscribers/{msisdn}/blacklist/{number}",
    status_code=204,
    responses=responses(*AUTH, 404, 422),
    summary="Unblock a number, or a prefix with ?prefix=true (scope provisioning)",
)
async def del_blacklist(
    request: Request,
    msisdn: MSISDN,
    number: Annotated[str, Path(min_length=1, max_length=32)],
    client: Annotated[ApiClient, Depends(WRITE)],
    prefix: bool = False,
) -> Response:
    await prov.blacklist_del(ctx_of(request).pool, actor(client), msisdn, number, prefix=prefix)
    return Response(status_code=204)


@router.post(
    "/subscribers/{msisdn}/pin/reset",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 409, 422),
    summary="Remove the PIN, its failures and its lock (scope provisioning; Idempotency-Key)",
)
async def reset_pin(
    request: Request, msisdn: MSISDN, client: Annotated[ApiClient, Depends(WRITE)]
) -> Response:
    async def run(db: Db) -> Response:
        await prov.reset_pin(db, actor(client), msisdn)
        return json_response(await prov.get_subscriber(db, msisdn))

    return await idempotent(request, client, fingerprint(request), run)


@router.post(
    "/subscribers/{msisdn}/pin/unlock",
    response_model=SubscriberOut,
    responses=responses(*AUTH, 404, 409, 422),
    summary="Clear the PIN lock, keep the PIN (scope provisioning; Idempotency-Key)",
)
async def unlock_pin(
    request: Request, msisdn: MSISDN, client: Annotated[ApiClient, Depends(WRITE)]
) -> Response:
    async def run(db: Db) -> Response:
        await prov.unlock_pin(db, actor(client), msisdn)
        return json_response(await prov.get_subscriber(db, msisdn))

    return await idempotent(request, client, fingerprint(request), run)


@router.get(
    "/subscribers/{msisdn}/missed-calls",
    response_model=Page[MissedCallOut],
    responses=responses(*AUTH, 422),
    summary="Call inquiry (来话点播): the number's missed calls, newest first"
    " (scope provisioning, read or media)",
)
async def missed_calls(
    request: Request,
    msisdn: MSISDN,
    client: Annotated[ApiClient, Depends(require("provisioning", "read", "media"))],
    cursor: str | None = None,
    limit: LIMIT = 100,
) -> Response:
    key = decode_cursor(cursor, at=dt.datetime, id=int)
    before = (key["at"], key["id"]) if key is not None else None
    rows = await prov.list_missed_calls(
        ctx_of(request).pool, callee=valid_msisdn(msisdn), limit=limit, before=before
    )
    nxt = (
        encode_cursor(at=rows[-1]["occurred_at"], id=rows[-1]["id"]) if len(rows) == limit else None
    )
    return json_response({"items": rows, "next_cursor": nxt})


@router.get(
    "/groups",
    response_model=list[GroupOut],
    responses=responses(*AUTH),
    summary="User groups (CRM segments) and their sizes (scope provisioning or read)",
)
async def groups(request: Request, client: Annotated[ApiClient, Depends(READ)]) -> Response:
    return json_response(await prov.list_groups(ctx_of(request).pool))


@router.get(
    "/ads",
    response_model=list[AdOut],
    responses=responses(*AUTH),
    summary="Ad rules, highest priority first (scope provisioning or read)",
)
async def list_ads(request: Request, client: Annotated[ApiClient, Depends(READ)]) -> Response:
    return json_response(await prov.list_ads(ctx_of(request).pool))


@router.post(
    "/ads",
    response_model=AdOut,
    status_code=201,
    responses=responses(*AUTH, 422),
    summary="Add an ad rule targeting user groups (scope provisioning; Idempotency-Key)",
)
async def add_ad(
    request: Request, body: AdIn, client: Annotated[ApiClient, Depends(WRITE)]
) -> Response:
    async def run(db: Db) -> Response:
        ad = await prov.add_ad(
            db,
            actor(client),
            body.text,
            now=ctx_of(request).wall_now(),
            window_start=body.window_start,
            window_end=body.window_end,
            caller_prefixes=body.caller_prefixes,
            user_groups=body.user_groups,
            priority=body.priority,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
        )
        return json_response(ad, 201, location=f"/api/v1/ads/{ad.id}")

    return await idempotent(request, client, fingerprint(request, body.model_dump_json()), run)


@router.delete(
    "/ads/{ad_id}",
    status_code=204,
    responses=responses(*AUTH, 404, 422),
    summary="Delete an ad rule (scope provisioning)",
)
async def delete_ad(
    request: Request, ad_id: ID, client: Annotated[ApiClient, Depends(WRITE)]
) -> Response:
    await prov.delete_ad(ctx_of(request).pool, actor(client), ad_id)
    return Response(status_code=204)
