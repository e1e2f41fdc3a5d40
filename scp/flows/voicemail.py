"""Voice messages from deposit to deletion (brief 2.1.6: 留言完毕后,系统将以短信的方式通知被叫
用户 … 随时提取留言、删除留言 … 通知方式包括:不通知、短信).

* :func:`deposit`: the media server hands over a recording. It is checked by its own bytes and
  against ``[voicemail]`` before any transaction (:mod:`scp.service.voicemail`); then, in ONE
  transaction under the callee's row lock (so two deposits at once cannot overfill a mailbox):
  the mailbox limit, the recording stored (completing the row the caller's menu choice left,
  or a new one), the callee's SMS queued when their ``voicemail_notify`` is ``sms`` (same
  transaction: an SMS for a message that was not stored is impossible, and the reverse), and
  the audit row.
* :func:`list_messages`, :func:`message`, :func:`audio_length` / :func:`read_audio` (by range,
  so a player can seek), :func:`mark_heard`, :func:`delete_message`: the owner's side, played
  by the media server after the SCP connected the subscriber to the retrieval number, or by the
  portal and the console (``owner``: the page's subscriber, whose messages alone it reaches);
  :func:`mailbox_counts` for the self-service IVR and the ``LY`` SMS command.
* :func:`purge`: the retention job, once across all nodes (a transaction-level advisory lock
  that the other nodes' runs skip rather than wait on).

Every channel calls these functions (ARCHITECTURE §2, one service layer); the audit rows name
the channel and the client.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import asyncpg

from scp.flows.notify import with_ad
from scp.flows.provisioning import Db, audit, transaction
from scp.service.notifications import local_day, notify_tz, notify_window, templates_for
from scp.service.provisioning import Actor, Conflict, NotFound, valid_msisdn
from scp.service.voicemail import (
    AudioInfo,
    MailboxFull,
    VoiceMessage,
    check_limits,
    inspect_audio,
    voicemail_text,
)
from scp.state import notify_store
from scp.state import voicemail_store as store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "Deposited",
    "audio_length",
    "delete_message",
    "deposit",
    "list_messages",
    "mailbox_counts",
    "mark_heard",
    "message",
    "purge",
    "read_audio",
    "check_recording",
]

# pg_try_advisory_xact_lock key of the retention job: one node runs it, the others skip
RETENTION_LOCK = 0x6D636E0E
# a menu choice's expected row that no recording completed within this is dropped
EXPECTED_TTL = dt.timedelta(days=1)


class Deposited:
    """What a deposit did: the message stored and the SMS queued (None: not notified)."""

    __slots__ = ("message", "sms_id")

    def __init__(self, message: VoiceMessage, sms_id: int | None) -> None:
        self.message = message
        self.sms_id = sms_id


def check_recording(audio: bytes, *, declared: int | None, cfg: Config) -> AudioInfo:
    """The recording's type and length, within ``[voicemail]``'s limits (VoicemailError)."""
    info = inspect_audio(audio)
    v = cfg.voicemail
    check_limits(info, declared=declared, max_bytes=v.max_bytes, max_seconds=v.max_seconds)
    return info


async def deposit(
    db: Db,
    actor: Actor,
    cfg: Config,
    *,
    callee: str,
    caller: str | None,
    audio: bytes,
    declared_seconds: int | None,
    deposited_at: dt.datetime,
    now: dt.datetime,
) -> Deposited:
    """Store a recording for ``callee`` and notify them (see the module docstring)."""
    callee = valid_msisdn(callee, "callee")
    caller = valid_msisdn(caller, "caller") if caller else None
    info = check_recording(audio, declared=declared_seconds, cfg=cfg)
    async with transaction(db) as conn:
        sub = await conn.fetchrow(
            "SELECT language, user_group, voicemail_notify FROM subscriber"
            " WHERE msisdn = $1 FOR UPDATE",
            callee,
        )
        if sub is None:
            raise NotFound(f"subscriber {callee} does not exist")
        day = local_day(now, cfg)
        has_service = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM subscription WHERE msisdn = $1 AND service = 'voicemail'"
            " AND start_date <= $2 AND (end_date IS NULL OR $2 < end_date))",
            callee,
            day,
        )
        if not has_service:
            raise Conflict(f"subscriber {callee} has no voicemail service")
        if await store.count_messages(conn, callee) >= cfg.voicemail.max_messages:
            raise MailboxFull(
                "callee",
                f"the mailbox of {callee} is full ({cfg.voicemail.max_messages} messages):"
                " the caller may try again later",
            )
        since = deposited_at - dt.timedelta(seconds=cfg.ivr.choice_window) - EXPECTED_TTL
        expected = await store.claim_expected(conn, callee, caller, since)
        kw = dict(
            at=deposited_at,
            duration_s=info.whole_seconds,
            content_type=info.content_type,
            audio=audio,
        )
        if expected is not None:
            msg = await store.fill(conn, expected, **kw)  # type: ignore[arg-type]
        else:
            msg = await store.insert_deposited(conn, callee=callee, caller=caller, **kw)  # type: ignore[arg-type]
        sms_id = None
        if sub["voicemail_notify"] == "sms":
            t = templates_for(cfg, sub["language"])
            core = voicemail_text(
                caller=caller,
                at=deposited_at,
                seconds=msg.duration_s,
                retrieval=cfg.call.voicemail_retrieval,
                t=t,
                tz=notify_tz(cfg),
            )
            text = await with_ad(
                conn, cfg, core, t, at=now, caller=caller, user_group=sub["user_group"]
            )
            sms_id = await notify_store.enqueue_sms(
                conn,
                key=f"voicemail:{msg.id}",
                destination=callee,
                text=text,
                not_before=now,
                expires_at=now + notify_window(cfg),
            )
            await store.mark_notified(conn, msg.id, now)
            msg = await store.get(conn, msg.id) or msg
        await audit(conn, actor, "deposit", "voicemail", str(msg.id), None, msg)
    return Deposited(msg, sms_id)


async def _owned(
    conn: asyncpg.Connection, vm_id: int, *, lock: bool = False, owner: str | None = None
) -> VoiceMessage:
    """The message; NotFound when there is none or, with ``owner``, it is another's (the
    same answer: a subscriber cannot even learn that someone else's message exists)."""
    msg = await store.get(conn, vm_id, lock=lock)
    if msg is None or (owner is not None and msg.callee != owner):
        raise NotFound(f"voice message {vm_id} does not exist")
    return msg


async def list_messages(
    db: Db, msisdn: str, *, after: int | None = None, limit: int = 100, status: str | None = None
) -> list[VoiceMessage]:
    """The subscriber's messages in deposit order (NotFound for an unknown subscriber)."""
    m = valid_msisdn(msisdn)
    async with transaction(db) as conn:
        if not await conn.fetchval("SELECT 1 FROM subscriber WHERE msisdn = $1", m):
            raise NotFound(f"subscriber {m} does not exist")
        return await store.list_mailbox(conn, m, after=after, limit=limit, status=status)


async def mailbox_counts(db: Db, msisdn: str) -> tuple[int, int]:
    """(new, total) messages of the subscriber."""
    async with transaction(db) as conn:
        return await store.mailbox_counts(conn, msisdn)


async def message(db: Db, vm_id: int, *, owner: str | None = None) -> VoiceMessage:
    async with transaction(db) as conn:
        return await _owned(conn, vm_id, owner=owner)


async def audio_length(db: Db, vm_id: int, *, owner: str | None = None) -> tuple[int, str]:
    """(octets, content type) of the recording (NotFound once deleted, or not ``owner``'s)."""
    async with transaction(db) as conn:
        if owner is not None:
            await _owned(conn, vm_id, owner=owner)
        found = await store.audio_length(conn, vm_id)
    if found is None:
        raise NotFound(f"voice message {vm_id} does not exist")
    return found


async def read_audio(db: Db, vm_id: int, start: int, length: int) -> bytes:
    """Octets ``start`` .. ``start + length - 1`` of the recording."""
    async with transaction(db) as conn:
        data = await store.read_audio(conn, vm_id, start, length)
    if data is None:
        raise NotFound(f"voice message {vm_id} does not exist")
    return bytes(data)


async def mark_heard(
    db: Db, actor: Actor, vm_id: int, *, at: dt.datetime, owner: str | None = None
) -> VoiceMessage:
    """The owner heard it (the first time counts); with ``owner``, only theirs."""
    async with transaction(db) as conn:
        before = await _owned(conn, vm_id, lock=True, owner=owner)
        await store.mark_heard(conn, vm_id, at)
        after = await _owned(conn, vm_id)
        if after != before:
            await audit(conn, actor, "heard", "voicemail", str(vm_id), before, after)
    return after


async def delete_message(
    db: Db, actor: Actor, vm_id: int, *, at: dt.datetime, owner: str | None = None
) -> None:
    """The owner deleted it: the recording is gone at once; with ``owner``, only theirs."""
    async with transaction(db) as conn:
        before = await _owned(conn, vm_id, lock=True, owner=owner)
        await store.soft_delete(conn, vm_id, at)
        await audit(conn, actor, "delete", "voicemail", str(vm_id), before, None)


async def purge(pool: asyncpg.Pool, cfg: Config, *, now: dt.datetime) -> int | None:
    """Delete messages older than ``[voicemail] retention_days`` (and menu choices no recording
    followed); None when another node holds the job right now."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RETENTION_LOCK):
            return None
        n = await store.purge(
            conn,
            older_than=now - dt.timedelta(days=cfg.voicemail.retention_days),
            expected_before=now - EXPECTED_TTL,
        )
        if n:
            await audit(
                conn,
                Actor("system", "retention"),
                "purge",
                "voicemail",
                "*",
                None,
                {"deleted": n, "retention_days": cfg.voicemail.retention_days},
            )
        return n
