"""Errors as ``application/problem+json`` (RFC 9457), naming the field at fault.

Every error of the API has this one shape: ``type`` (a URN naming the kind of problem, or
``about:blank`` for plain HTTP statuses), ``title``, ``status``, ``detail``, and ``field``
(the request part at fault: ``body.services[0]``, ``msisdn``, ``audio``...) with ``errors``
listing each one when there are several. The service layer's errors map onto it in one place
(:func:`from_exception`): bad input 422, unknown 404, contradicts the stored state 409,
recording too large 413, not WAV / AMR 415. FastAPI's own request validation becomes the same
422, so bad input is never a 500; a body that is not JSON at all is 400 naming ``body``.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from scp.service.provisioning import Conflict, InvalidInput, NotFound
from scp.service.voicemail import MailboxFull, MalformedAudio, TooLarge, UnsupportedAudio

log = structlog.get_logger("scp.api")

MEDIA_TYPE = "application/problem+json"
_JSON = "application/json"


class FieldError(BaseModel):
    """One request part at fault."""

    field: str
    reason: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str = Field("about:blank", description="URI naming the kind of problem")
    title: str
    status: int
    detail: str = ""
    field: str | None = Field(None, description="the request part at fault, if one")
    errors: list[FieldError] = Field(default_factory=list)


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        kind: str = "about:blank",
        field: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.problem = Problem(
            type=kind, title=title, status=status, detail=detail, field=field, errors=errors or []
        )
        self.headers = headers or {}


def urn(name: str) -> str:
    return f"urn:mcn-scp:problem:{name}"


def response(p: ApiProblem) -> Response:
    return Response(
        p.problem.model_dump_json(),
        status_code=p.problem.status,
        media_type=MEDIA_TYPE,
        headers=p.headers,
    )


DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    InvalidInput,
    MalformedAudio,
    UnsupportedAudio,
    TooLarge,
    MailboxFull,
    NotFound,
    Conflict,
)


def from_exception(e: Exception) -> ApiProblem | None:
    """The service layer's errors as problems (None: not one of ours)."""
    if isinstance(e, InvalidInput):
        return ApiProblem(
            422,
            "Invalid input",
            str(e),
            kind=urn("invalid-input"),
            field=e.field,
            errors=[FieldError(field=e.field, reason=e.reason)],
        )
    if isinstance(e, MalformedAudio):
        return ApiProblem(
            422, "Invalid recording", str(e), kind=urn("invalid-recording"), field=e.field
        )
    if isinstance(e, UnsupportedAudio):
        return ApiProblem(
            415, "Unsupported recording", str(e), kind=urn("unsupported-media"), field=e.field
        )
    if isinstance(e, TooLarge):
        return ApiProblem(413, "Recording too large", str(e), kind=urn("too-large"), field=e.field)
    if isinstance(e, MailboxFull):
        return ApiProblem(409, "Mailbox full", str(e), kind=urn("mailbox-full"), field=e.field)
    if isinstance(e, NotFound):
        return ApiProblem(404, "Not found", str(e), kind=urn("not-found"))
    if isinstance(e, Conflict):
        return ApiProblem(409, "Conflict", str(e), kind=urn("conflict"), field=e.field)
    return None


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "request"


def install(app: FastAPI) -> None:
    """Every error of ``app`` as a problem document."""

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, e: ApiProblem) -> Response:
        return response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> Response:
        broken = [err for err in e.errors() if err.get("type") == "json_invalid"]
        if broken:  # not JSON at all: nothing to name but the body (the position is a detail)
            where = broken[0].get("loc", ())
            at = f" at octet {where[-1]}" if where and isinstance(where[-1], int) else ""
            reason = str(broken[0].get("ctx", {}).get("error", "not JSON"))
            return response(
                ApiProblem(
                    400,
                    "Bad request",
                    f"body: cannot be parsed as JSON{at}: {reason}",
                    kind=urn("unparsable-body"),
                    field="body",
                )
            )
        errors = [
            FieldError(field=_loc(err.get("loc", ())), reason=str(err.get("msg", "invalid")))
            for err in e.errors()
        ]
        first = errors[0] if errors else FieldError(field="request", reason="invalid")
        return response(
            ApiProblem(
                422,
                "Invalid input",
                f"{first.field}: {first.reason}",
                kind=urn("invalid-input"),
                field=first.field,
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> Response:
        detail = e.detail if isinstance(e.detail, str) else ""
        return response(
            ApiProblem(
                e.status_code,
                _TITLES.get(e.status_code, "Error"),
                detail,
                headers=dict(e.headers or {}),
                field="body" if e.status_code == 400 else None,
            )
        )

    async def _domain(request: Request, e: Exception) -> Response:
        p = from_exception(e)
        return response(p) if p is not None else await _unexpected(request, e)

    # The domain's own errors by class: a handler for Exception alone runs in Starlette's
    # outermost middleware, which re-raises after answering, so every refused input would be
    # logged as a server failure.
    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, _domain)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> Response:
        p = from_exception(e)
        if p is not None:
            return response(p)
        log.exception("api request failed", path=request.url.path, method=request.method)
        return response(ApiProblem(500, "Internal error", "the failure is in the server's log"))


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    411: "Length required",
    413: "Content too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of these error statuses (problem+json)."""
    return {
        c: {
            "model": Problem,
            "description": _TITLES.get(c, {409: "Conflict", 422: "Invalid input"}.get(c, "Error")),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for c in codes
    }
