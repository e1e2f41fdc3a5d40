"""How large a request body the API reads: refused (413, problem+json) before it is read whole.

The routes' own checks come after the body is in: the multipart parser of ``POST /voicemail``
spools the whole upload before the route sees its size, and FastAPI reads a JSON body whole
before validating it. This ASGI middleware runs first: a ``Content-Length`` over the route's
limit is answered at once, without reading a byte of the body, and a body sent without one
(chunked) is counted as it arrives and refused at the first octet past the limit (RFC 9110
§15.5.14). Limits: ``POST /voicemail`` ``[voicemail] max_bytes`` plus room for the form's other
fields, ``POST /imports`` ``[api] max_import_bytes``, any other request :data:`OTHER_BODY` (a
JSON document of this API is a few kilobytes).

Before the 413 of a counted body goes out, up to :data:`LINGER` more octets are read and
dropped: a server that closes a connection with unread octets makes its kernel send a reset,
which can destroy the answer before the client reads it (RFC 9112 §9.6, "lingering close"), so
a sender that stops soon after the limit does get the 413.

Why not the ``max_body_size`` of FastAPI / Starlette's ``RequestBodyLimitMiddleware``: its 413
is plain text (or ``{"detail"}``), not a problem document naming the field; its per-route
limits are fixed where the route is declared, while these come from the configuration; and it
closes without the lingering read above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scp.config import Config
from scp.web.api.problems import ApiProblem, response, urn

FORM_ROOM = 64 * 1024  # multipart boundaries, part headers and the small form fields
OTHER_BODY = 1024 * 1024
LINGER = 1024 * 1024  # octets read and dropped after the limit, before the 413

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
Asgi = Callable[[Scope, Receive, Send], Any]


def limit_of(cfg: Config, method: str, path: str) -> tuple[int, str]:
    """(octets allowed, the field a 413 names) for a request to ``path`` (under the API)."""
    if method == "POST" and path == "/voicemail":
        return cfg.voicemail.max_bytes + FORM_ROOM, "audio"
    if method == "POST" and path == "/imports":
        return cfg.api.max_import_bytes, "body"
    return OTHER_BODY, "body"


class BodyTooLarge(ApiProblem):
    """What reading the body raises past the limit: a route that streams its body answers
    with it as with any problem; where FastAPI reads the body, the middleware answers."""


class BodyLimit:
    """The middleware (see the module doc); ``cfg`` gives the limits."""

    def __init__(self, app: Asgi, *, cfg: Callable[[], Config]) -> None:
        self.app = app
        self.cfg = cfg

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        limit, field = limit_of(self.cfg(), scope["method"], path)
        problem = BodyTooLarge(
            413,
            "Content too large",
            f"{field}: the request body is over the {limit} octets allowed here",
            kind=urn("too-large"),
            field=field,
            headers={"Connection": "close"},
        )
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(problem, send)
            return
        seen = 0
        over = False
        more = True  # the sender has more of the body to send
        started = False

        async def counted() -> Message:
            nonlocal seen, over, more
            if over:
                raise problem
            msg: Message = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                more = bool(msg.get("more_body", False))
                if seen > limit:
                    over = True
                    raise problem
            else:
                more = False
            return msg

        async def guarded(msg: Message) -> None:
            # once over the limit, the application's own answer (FastAPI turns the failed
            # read into a 400) gives way to the 413
            nonlocal started
            if over:
                return
            started = True
            await send(msg)

        try:
            await self.app(scope, counted, guarded)
        except BodyTooLarge:
            pass
        if over and not started:
            dropped = 0
            while more and dropped <= LINGER:
                msg = await receive()
                dropped += len(msg.get("body", b""))
                more = msg["type"] == "http.request" and bool(msg.get("more_body", False))
            await _answer(problem, send)


async def _answer(problem: ApiProblem, send: Send) -> None:
    r = response(problem)
    await send({"type": "http.response.start", "status": r.status_code, "headers": r.raw_headers})
    await send({"type": "http.response.body", "body": bytes(r.body)})
