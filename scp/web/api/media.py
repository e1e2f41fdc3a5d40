"""The IVR media server's side: callers' menu choices in connect mode, and voice messages from
deposit to deletion (the media-server contract of the README).

* ``POST /callbacks``, ``/voicemail-requests``, ``/operator-requests``: what the caller chose
  (:func:`scp.flows.ivr.caller_choice`: believed only for a missed call on record).
* ``POST /voicemail`` (multipart): the recording, checked by its own bytes, stored, the callee
  notified (:func:`scp.flows.voicemail.deposit`).
* ``GET /subscribers/{msisdn}/voicemail``, ``GET /voicemail/{id}``, ``GET /voicemail/{id}/audio``
  (HTTP Range, RFC 9110 §14: 206 with Content-Range, 416 beyond the end, so a player can
  seek; :mod:`scp.web.recording`, which the portal's player shares), ``POST /voicemail/{id}/heard``, ``DELETE /voicemail/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from starlette.responses import Response

from scp.flows import ivr
from scp.flows import voicemail as vm
from scp.flows.api import ApiClient
from scp.flows.provisioning import Db
from scp.service.voicemail import VoiceMessage
from scp.web import recording
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
from scp.web.api.models import ChoiceIn, ChoiceOut, DepositOut, Instant, Text, VoiceMessageOut
from scp.web.api.problems import ApiProblem, responses, urn

router = APIRouter(tags=["media server"])

MEDIA = require("media")
LISTS = require("media", "read")
AUTH = (401, 403)
ID = Annotated[int, Path(ge=1, le=2**63 - 1)]
AUDIO_TYPES = ("audio/wav", "audio/amr", "audio/amr-wb")


def _choice_route(choice: str, summary: str) -> Any:
    async def route(
        request: Request, body: ChoiceIn, client: Annotated[ApiClient, Depends(MEDIA)]
    ) -> Response:
        ctx = ctx_of(request)

        async def run(db: Db) -> Response:
            taken = await ivr.caller_choice(
                db,
                actor(client),
                ctx.cfg,
                choice=choice,
                caller=body.caller,
                callee=body.callee,
                now=ctx.wall_now(),
            )
            return json_response(taken, 201)

        return await idempotent(request, client, fingerprint(request, body.model_dump_json()), run)

    route.__name__ = f"report_{choice}"
    return router.post(
        f"/{'callbacks' if choice == 'callback' else choice + '-requests'}",
        response_model=ChoiceOut,
        status_code=201,
        responses=responses(*AUTH, 404, 409, 422),
        summary=summary,
    )(route)


_choice_route(
    "callback",
    "The caller asks for an SMS when the callee is reachable (menu 1; scope media;"
    " Idempotency-Key)",
)
_choice_route(
    "voicemail",
    "The caller will leave a voice message (menu 2): where to record it (scope media;"
    " Idempotency-Key)",
)
_choice_route(
    "operator", "The caller asks for the operator (menu 0): where to connect (scope media)"
)


def _out(m: VoiceMessage, **extra: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "callee": m.callee,
        "caller": m.caller,
        "deposited_at": m.deposited_at,
        "duration_s": m.duration_s,
        "content_type": m.content_type,
        "size_bytes": m.size_bytes,
        "status": m.status,
        "heard_at": m.heard_at,
        "notified_at": m.notified_at,
        "audio": f"/api/v1/voicemail/{m.id}/audio",
        **extra,
    }


@router.post(
    "/voicemail",
    response_model=DepositOut,
    status_code=201,
    responses=responses(*AUTH, 404, 409, 411, 413, 415, 422),
    summary="Deposit a voice message, WAV or AMR (scope media; Idempotency-Key)",
)
async def deposit(
    request: Request,
    client: Annotated[ApiClient, Depends(MEDIA)],
    callee: Annotated[Text, Form(min_length=1, max_length=32)],
    deposited_at: Annotated[Instant, Form(description="when the recording ended")],
    duration: Annotated[
        int, Form(ge=0, le=86400, description="seconds, as the media server counted")
    ],
    audio: Annotated[UploadFile, File(description="the recording: WAV (RIFF) or AMR / AMR-WB")],
    caller: Annotated[Text, Form(max_length=32, description="empty when withheld")] = "",
) -> Response:
    ctx = ctx_of(request)
    data = await audio.read(ctx.cfg.voicemail.max_bytes + 1)
    if len(data) > ctx.cfg.voicemail.max_bytes:
        raise ApiProblem(
            413,
            "Recording too large",
            f"audio: more than the {ctx.cfg.voicemail.max_bytes} octets allowed",
            kind=urn("too-large"),
            field="audio",
        )
    vm.check_recording(data, declared=duration, cfg=ctx.cfg)  # before any transaction

    async def run(db: Db) -> Response:
        done = await vm.deposit(
            db,
            actor(client),
            ctx.cfg,
            callee=callee,
            caller=caller or None,
            audio=data,
            declared_seconds=duration,
            deposited_at=deposited_at,
            now=ctx.wall_now(),
        )
        m = done.message
        return json_response(
            _out(m, sms_queued=done.sms_id is not None), 201, location=f"/api/v1/voicemail/{m.id}"
        )

    fields = f"{callee}\n{caller}\n{deposited_at.isoformat()}\n{duration}"
    return await idempotent(request, client, fingerprint(request, fields, data), run)


@router.get(
    "/subscribers/{msisdn}/voicemail",
    response_model=Page[VoiceMessageOut],
    responses=responses(*AUTH, 404, 422),
    summary="The subscriber's voice messages, new and heard, in deposit order"
    " (scope media or read)",
)
async def mailbox(
    request: Request,
    msisdn: Annotated[str, Path(min_length=1, max_length=32)],
    client: Annotated[ApiClient, Depends(LISTS)],
    status: Literal["new", "heard"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    key = decode_cursor(cursor, id=int)
    msgs = await vm.list_messages(
        ctx_of(request).pool,
        msisdn,
        after=key["id"] if key is not None else None,
        limit=limit,
        status=status,
    )
    nxt = encode_cursor(id=msgs[-1].id) if len(msgs) == limit else None
    return json_response({"items": [_out(m) for m in msgs], "next_cursor": nxt})


@router.get(
    "/voicemail/{vm_id}",
    response_model=VoiceMessageOut,
    responses=responses(*AUTH, 404, 422),
    summary="One voice message (scope media or read)",
)
async def one(
    request: Request, vm_id: ID, client: Annotated[ApiClient, Depends(LISTS)]
) -> Response:
    return json_response(_out(await vm.message(ctx_of(request).pool, vm_id)))


_AUDIO_CONTENT = {t: {"schema": {"type": "string", "format": "binary"}} for t in AUDIO_TYPES}


@router.get(
    "/voicemail/{vm_id}/audio",
    response_class=Response,
    responses={
        200: {"description": "The whole recording", "content": _AUDIO_CONTENT},
        206: {"description": "The range asked for (Content-Range)", "content": _AUDIO_CONTENT},
        **responses(*AUTH, 404, 416, 422),
    },
    summary="Stream the recording; HTTP Range lets a player seek (scope media)",
)
async def audio(
    request: Request, vm_id: ID, client: Annotated[ApiClient, Depends(MEDIA)]
) -> Response:
    try:
        return await recording.stream(ctx_of(request).pool, vm_id, request.headers.get("range"))
    except recording.Unsatisfiable as e:
        raise ApiProblem(
            416,
            "Range not satisfiable",
            str(e),
            kind=urn("range-not-satisfiable"),
            field="Range",
            headers={"Content-Range": e.content_range},
        ) from None


@router.post(
    "/voicemail/{vm_id}/heard",
    response_model=VoiceMessageOut,
    responses=responses(*AUTH, 404, 409, 422),
    summary="The owner heard it (scope media; Idempotency-Key)",
)
async def heard(
    request: Request, vm_id: ID, client: Annotated[ApiClient, Depends(MEDIA)]
) -> Response:
    async def run(db: Db) -> Response:
        m = await vm.mark_heard(db, actor(client), vm_id, at=ctx_of(request).wall_now())
        return json_response(_out(m))

    return await idempotent(request, client, fingerprint(request), run)


@router.delete(
    "/voicemail/{vm_id}",
    status_code=204,
    responses=responses(*AUTH, 404, 422),
    summary="Delete it; the recording is gone at once (scope media)",
)
async def delete(
    request: Request, vm_id: ID, client: Annotated[ApiClient, Depends(MEDIA)]
) -> Response:
    await vm.delete_message(
        ctx_of(request).pool, actor(client), vm_id, at=ctx_of(request).wall_now()
    )
    return Response(status_code=204)
