"""What every route of the API shares: bearer authentication with scopes, opaque cursors, the
Idempotency-Key of POST requests, and JSON answers.

* Authentication (RFC 6750): ``Authorization: Bearer <token>``. No or unknown token: 401 with
  ``WWW-Authenticate: Bearer``; a token without a scope the route needs: 403
  (``error="insufficient_scope"``). The client's name is the audit actor of every write.
* Cursors: opaque (base64url of the last key seen); lists are in a stable key order, so a page
  never repeats or skips a row whatever is written meanwhile. A cursor's values meet the rules
  of any other input (:mod:`.models`): a forged one is 422 naming ``cursor``.
* No query or path value holds a NUL character (:func:`no_nul`, a dependency of every route).
* Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): the first request's
  effect and its answer commit in one transaction; a retry with the same key and the same
  request gets that answer again (``Idempotent-Replayed: true``), with another request 422; a
  retry while the first is still running waits up to 5 s for it, then gets 409.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.responses import Response

from scp.flows import api as api_flow
from scp.flows.api import ApiClient
from scp.flows.provisioning import Db
from scp.service.provisioning import Actor, to_json
from scp.web.api.models import check_instant, check_text
from scp.web.api.problems import ApiProblem, urn
from scp.web.context import WebContext

T = TypeVar("T")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token made with `mcn-scp api token create NAME --scope SCOPE[,SCOPE]`.",
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_WAIT = "5s"  # lock_timeout while a retry waits for the first request with its key


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` fetches the next one (null: the last page)."""

    items: list[T]
    next_cursor: str | None = None


def ctx_of(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def require(*scopes: str) -> Callable[..., Awaitable[ApiClient]]:
    """A dependency: the client of the request's bearer token, holding one of ``scopes``."""

    async def client(
        request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiClient:
        realm = 'Bearer realm="mcn-scp"'
        if cred is None:
            raise ApiProblem(
                401,
                "Unauthorized",
                "a bearer token is required",
                kind=urn("unauthorized"),
                headers={"WWW-Authenticate": realm},
            )
        ctx = ctx_of(request)
        found = await api_flow.authenticate(ctx.pool, cred.credentials, now=ctx.wall_now())
        if found is None:
            raise ApiProblem(
                401,
                "Unauthorized",
                "the token is unknown or revoked",
                kind=urn("unauthorized"),
                headers={"WWW-Authenticate": f'{realm}, error="invalid_token"'},
            )
        if not set(scopes) & set(found.scopes):
            need = " ".join(scopes)
            raise ApiProblem(
                403,
                "Forbidden",
                f"this route needs the scope {' or '.join(scopes)}",
                kind=urn("insufficient-scope"),
                headers={
                    "WWW-Authenticate": f'{realm}, error="insufficient_scope", scope="{need}"'
                },
            )
        return found

    return client


async def no_nul(request: Request) -> None:
    """Refuse a query or path value holding a NUL character: 422 naming its parameter."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if isinstance(value, str) and "\x00" in value:
            raise ApiProblem(
                422,
                "Invalid input",
                f"{name}: a NUL character is not allowed",
                kind=urn("invalid-input"),
                field=name,
            )


def actor(client: ApiClient) -> Actor:
    return Actor("api", client.name)


def plain(v: Any) -> Any:
    """JSON-ready data from values, database rows, and dicts or lists of them."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return to_json(v)


def json_response(data: Any, status: int = 200, *, location: str | None = None) -> Response:
    body = json.dumps(plain(data), ensure_ascii=False, separators=(",", ":"))
    headers = {"Location": location} if location else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def encode_cursor(**key: Any) -> str:
    raw = json.dumps(
        {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in key.items()},
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _cursor_value(v: Any, t: type) -> Any:
    """The value of type ``t`` a cursor's JSON value stands for; ValueError if none."""
    if isinstance(v, bool):
        raise ValueError("bool")
    if t is dt.datetime:
        if not isinstance(v, str):
            raise ValueError("at")
        at = dt.datetime.fromisoformat(check_text(v))
        if at.tzinfo is None:
            raise ValueError("naive")
        return check_instant(at)
    if not isinstance(v, t):
        raise ValueError("type")
    if isinstance(v, int) and not 0 <= v < 2**63:
        raise ValueError("range")
    if isinstance(v, str):
        check_text(v)
    return v


def decode_cursor(cursor: str | None, **types: type) -> dict[str, Any] | None:
    """The key a cursor carries (None for the first page), each value of its type (str, int,
    or an aware datetime); 422 naming ``cursor`` if forged."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
        if not isinstance(key, dict) or set(key) != set(types):
            raise ValueError("keys")
        return {k: _cursor_value(key[k], t) for k, t in types.items()}
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ApiProblem(
            422,
            "Invalid input",
            "cursor: not a cursor this API gave out",
            kind=urn("invalid-input"),
            field="cursor",
        ) from None


def fingerprint(request: Request, *parts: bytes | str) -> bytes:
    """What makes two requests the same request: method, path, query and the parts given."""
    h = hashlib.sha256()
    for p in (request.method, request.url.path, str(request.url.query), *parts):
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "big") + b)
    return h.digest()


@asynccontextmanager
async def _borrowed(
    pool: asyncpg.Pool, given: asyncpg.Connection | None
) -> AsyncIterator[asyncpg.Connection]:
    if given is not None:
        yield given
    else:
        async with pool.acquire() as conn:
            yield conn


async def idempotent(
    request: Request,
    client: ApiClient,
    request_sha256: bytes,
    run: Callable[[Db], Awaitable[Response]],
    *,
    conn: asyncpg.Connection | None = None,
) -> Response:
    """Run a POST's ``run`` under its Idempotency-Key, if it has one (see the module doc); on
    ``conn`` if given (the caller's own), else on the pool."""
    ctx = ctx_of(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return await run(conn if conn is not None else ctx.pool)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiProblem(
            422,
            "Invalid input",
            f"{IDEMPOTENCY_HEADER}: 1-255 printable characters",
            kind=urn("invalid-input"),
            field=IDEMPOTENCY_HEADER,
        )
    async with _borrowed(ctx.pool, conn) as conn, conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{KEY_WAIT}'")
        try:
            seen = await api_flow.reserve_key(conn, client, key, request_sha256, ctx.wall_now())
        except asyncpg.LockNotAvailableError:
            raise ApiProblem(
                409,
                "Conflict",
                "a request with this Idempotency-Key is still being served",
                kind=urn("idempotency-key-in-use"),
                field=IDEMPOTENCY_HEADER,
            ) from None
        if seen is not None:
            if seen.request_sha256 != request_sha256:
                raise ApiProblem(
                    422,
                    "Invalid input",
                    f"{IDEMPOTENCY_HEADER} {key!r} was used for another request",
                    kind=urn("idempotency-key-reused"),
                    field=IDEMPOTENCY_HEADER,
                )
            headers = {"Idempotent-Replayed": "true"}
            if seen.location:
                headers["Location"] = seen.location
            return Response(
                seen.body, status_code=seen.status, media_type=seen.content_type, headers=headers
            )
        await conn.execute("SET LOCAL lock_timeout = 0")
        resp = await run(conn)
        await api_flow.remember_answer(
            conn,
            client,
            key,
            status=resp.status_code,
            body=bytes(resp.body),
            content_type=resp.headers.get("content-type", "application/json"),
            location=resp.headers.get("location"),
        )
        return resp
