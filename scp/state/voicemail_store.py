"""Named SQL of voice messages: the mailbox, the recordings and their retention.

Table ``voicemail`` (migrations 0001 and 0150). A row is *expected* while it has no recording
(the caller chose "leave a voice message": menu digit 2, or the media server's report in
connect mode), *deposited* once the recording is in (``deposited_at``, ``audio``), *heard*
once played (``listened_at``) and *deleted* by its owner (``deleted_at``, recording dropped);
the retention job removes rows for good. The recording is read by range, so only the TOAST
chunks asked for leave the server (``audio`` is stored EXTERNAL, uncompressed).

Every function takes the connection of the caller's transaction; times come from the caller.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from scp.service.voicemail import VoiceMessage

__all__ = [
    "audio_length",
    "claim_expected",
    "count_messages",
    "fill",
    "get",
    "insert_deposited",
    "list_mailbox",
    "mailbox_counts",
    "mark_heard",
    "mark_notified",
    "purge",
    "read_audio",
    "soft_delete",
]

_COLS = (
    "id, callee, caller, deposited_at, duration_s, content_type, size_bytes,"
    " listened_at AS heard_at, notified_at"
)
_LIVE = "deposited_at IS NOT NULL AND deleted_at IS NULL"


def _message(r: asyncpg.Record) -> VoiceMessage:
    return VoiceMessage(**dict(r))


async def count_messages(conn: asyncpg.Connection, callee: str) -> int:
    """Messages in the mailbox (new and heard)."""
    return int(
        await conn.fetchval(f"SELECT count(*) FROM voicemail WHERE callee = $1 AND {_LIVE}", callee)
    )


async def mailbox_counts(conn: asyncpg.Connection, callee: str) -> tuple[int, int]:
    """(new, total) messages in the mailbox."""
    r = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE listened_at IS NULL) AS new, count(*) AS total"
        f" FROM voicemail WHERE callee = $1 AND {_LIVE}",
        callee,
    )
    return int(r["new"]), int(r["total"])


async def claim_expected(
    conn: asyncpg.Connection, callee: str, caller: str | None, since: dt.datetime
) -> int | None:
    """The latest expected row of this caller to this callee written since ``since`` (locked),
    if any: the deposit completes it."""
    result: int | None = await conn.fetchval(
        "SELECT id FROM voicemail WHERE callee = $1 AND caller IS NOT DISTINCT FROM $2"
        " AND deposited_at IS NULL AND deleted_at IS NULL AND recorded_at >= $3"
        " ORDER BY recorded_at DESC, id DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
        callee,
        caller,
        since,
    )
    return result


async def fill(
    conn: asyncpg.Connection,
    vm_id: int,
    *,
    at: dt.datetime,
    duration_s: int,
    content_type: str,
    audio: bytes,
) -> VoiceMessage:
    """Put the recording into the expected row ``vm_id``."""
    r = await conn.fetchrow(
        "UPDATE voicemail SET recorded_at = $2, deposited_at = $2, duration_s = $3,"
        " content_type = $4, size_bytes = $5, audio = $6, media_uri = 'pg:voicemail/' || id"
        f" WHERE id = $1 RETURNING {_COLS}",
        vm_id,
        at,
        duration_s,
        content_type,
        len(audio),
        audio,
    )
    return _message(r)


async def insert_deposited(
    conn: asyncpg.Connection,
    *,
    callee: str,
    caller: str | None,
    at: dt.datetime,
    duration_s: int,
    content_type: str,
    audio: bytes,
) -> VoiceMessage:
    """A deposit no menu choice announced: a new row with its recording."""
    vm_id = await conn.fetchval(
        "INSERT INTO voicemail (callee, caller, recorded_at, duration_s, media_uri)"
        " VALUES ($1, $2, $3, 0, 'pg:') RETURNING id",
        callee,
        caller,
        at,
    )
    return await fill(
        conn, vm_id, at=at, duration_s=duration_s, content_type=content_type, audio=audio
    )


async def mark_notified(conn: asyncpg.Connection, vm_id: int, at: dt.datetime) -> None:
    await conn.execute("UPDATE voicemail SET notified_at = $2 WHERE id = $1", vm_id, at)


async def list_mailbox(
    conn: asyncpg.Connection,
    callee: str,
    *,
    after: int | None,
    limit: int,
    status: str | None = None,
) -> list[VoiceMessage]:
    """The mailbox in id order (deposit order), from after ``after``; ``status`` new / heard."""
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM voicemail WHERE callee = $1 AND {_LIVE}"
        " AND ($2::bigint IS NULL OR id > $2)"
        " AND ($4::text IS NULL OR (listened_at IS NULL) = ($4 = 'new'))"
        " ORDER BY id LIMIT $3",
        callee,
        after,
        limit,
        status,
    )
    return [_message(r) for r in rows]


async def get(conn: asyncpg.Connection, vm_id: int, *, lock: bool = False) -> VoiceMessage | None:
    """A message of any mailbox, if deposited and not deleted."""
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM voicemail WHERE id = $1 AND {_LIVE}"
        + (" FOR UPDATE" if lock else ""),
        vm_id,
    )
    return _message(r) if r is not None else None


async def audio_length(conn: asyncpg.Connection, vm_id: int) -> tuple[int, str] | None:
    """(octets, content type) of a message's recording."""
    r = await conn.fetchrow(
        f"SELECT octet_length(audio) AS n, content_type FROM voicemail WHERE id = $1 AND {_LIVE}",
        vm_id,
    )
    return (int(r["n"]), r["content_type"]) if r is not None else None


async def read_audio(conn: asyncpg.Connection, vm_id: int, start: int, length: int) -> bytes | None:
    """``length`` octets of the recording from ``start`` (0-based); None if it is gone."""
    result: bytes | None = await conn.fetchval(
        f"SELECT substring(audio FROM $2 FOR $3) FROM voicemail WHERE id = $1 AND {_LIVE}",
        vm_id,
        start + 1,
        length,
    )
    return result


async def mark_heard(conn: asyncpg.Connection, vm_id: int, at: dt.datetime) -> None:
    await conn.execute(
        "UPDATE voicemail SET listened_at = coalesce(listened_at, $2) WHERE id = $1", vm_id, at
    )


async def soft_delete(conn: asyncpg.Connection, vm_id: int, at: dt.datetime) -> None:
    """The owner deleted it: the recording goes at once, the row stays until retention."""
    await conn.execute(
        "UPDATE voicemail SET deleted_at = $2, audio = NULL WHERE id = $1", vm_id, at
    )


async def purge(
    conn: asyncpg.Connection, *, older_than: dt.datetime, expected_before: dt.datetime
) -> int:
    """Delete messages recorded before ``older_than``, and rows still expected (no recording
    came) since before ``expected_before``; how many went."""
    status = await conn.execute(
        "DELETE FROM voicemail WHERE recorded_at < $1"
        " OR (deposited_at IS NULL AND recorded_at < $2)",
        older_than,
        expected_before,
    )
    return int(status.rsplit(" ", 1)[1])
