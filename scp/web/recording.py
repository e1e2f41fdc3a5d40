"""A voice message's recording over HTTP, with Range (RFC 9110 §14), for every site that plays
one: the API's ``GET /api/v1/voicemail/{id}/audio`` (the media server) and the portal's and
the console's ``<audio>`` element, which seeks by asking for ranges.

The recording is read from PostgreSQL a chunk at a time through :mod:`scp.flows.voicemail`, so
a long one never sits whole in memory. Who may fetch which message is the caller's business
(``owner``: only that subscriber's messages, others are :class:`NotFound` as if they did not
exist); how an error reads (problem+json or a page) too: :class:`Unsatisfiable` carries what
a 416 answer needs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from scp.flows import voicemail as vm
from scp.flows.provisioning import Db

__all__ = ["CHUNK", "Unsatisfiable", "byte_range", "stream"]

CHUNK = 256 * 1024  # octets read from PostgreSQL per step of a stream
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range asked for lies beyond the recording (416, ``Content-Range: bytes */size``)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the recording has {size} octets")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for as (first, last) octet; None: the whole recording. Several
    ranges or a malformed header are ignored (RFC 9110 §14.2 allows it): the whole goes."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last n octets
        n = int(last)
        if n == 0:
            raise Unsatisfiable(size)
        return max(0, size - n), size - 1
    a = int(first)
    b = min(int(last), size - 1) if last else size - 1
    if a >= size or (last and int(last) < a):
        raise Unsatisfiable(size)
    return a, b


async def stream(
    db: Db, vm_id: int, range_header: str | None, *, owner: str | None = None
) -> StreamingResponse:
    """200 with the whole recording, or 206 with the range asked for (NotFound: no such
    message, deleted, or not ``owner``'s; Unsatisfiable: a range beyond its end)."""
    size, content_type = await vm.audio_length(db, vm_id, owner=owner)
    asked = byte_range(range_header, size)
    first, last = asked if asked is not None else (0, size - 1)

    async def body() -> AsyncIterator[bytes]:
        pos = first
        while pos <= last:
            n = min(CHUNK, last - pos + 1)
            yield await vm.read_audio(db, vm_id, pos, n)
            pos += n

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1)}
    if asked is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        body(), status_code=206 if asked else 200, media_type=content_type, headers=headers
    )
