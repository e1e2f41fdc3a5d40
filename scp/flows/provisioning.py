"""Provisioning functions: the one set every channel calls (CLI, OSS, IVR, SMS, web, operator).

ARCHITECTURE §2 "one service layer for every channel": a feature exists once, here, so the
channels stay identical; and "``service/`` decides; it never does I/O": the values, errors and
validation rules are :mod:`scp.service.provisioning`, the database work is here. Each function
validates its input with those rules (``InvalidInput`` names the field) before it opens a
transaction, does its change and writes the audit row (``audit_log``, migration 0001) in that
one transaction, and returns frozen values. Tables: ``subscriber``, ``subscription``,
``blacklist``, ``ad_rule``, ``rate``, ``missed_call``, ``callback_request``, ``sms_outbox``,
``cdr``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg

from scp.service import pin as pins
from scp.service.cdrfile import FIELDS as CDR_FIELDS
from scp.service.provisioning import (
    CALL_CATEGORIES,
    LANGUAGES,
    NOTIFY_MODES,
    SERVICES,
    SMS_STATUSES,
    STATUSES,
    UNSET,
    VOICEMAIL_NOTIFY,
    Actor,
    AdRule,
    BlacklistEntry,
    Conflict,
    InvalidInput,
    NotFound,
    PinCheck,
    Rate,
    Subscriber,
    Subscription,
    to_json,
    valid_ad,
    valid_blacklist_number,
    valid_choice,
    valid_group,
    valid_imsi,
    valid_msisdn,
    valid_pin,
    valid_rate,
    valid_services,
)
from scp.state import web_store

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


# --------------------------------------------------------------------------------------------
# Transactions and audit
# --------------------------------------------------------------------------------------------


@asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction, from a pool or an existing connection."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def audit(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    entity: str,
    key: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one audit row (call inside the change's transaction)."""
    await conn.execute(
        "INSERT INTO audit_log (channel, actor, action, entity, entity_key, before, after)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        actor.channel,
        actor.name,
        action,
        entity,
        key,
        to_json(before) if before is not None else None,
        to_json(after) if after is not None else None,
    )


# --------------------------------------------------------------------------------------------
# Subscribers
# --------------------------------------------------------------------------------------------

_SUB_COLS = (
    "msisdn, imsi, status, language, user_group, notify_mode, forward_to,"
    " pin_hash IS NOT NULL AS pin_set, pin_failed_attempts,"
    " pin_locked_at IS NOT NULL AS pin_locked, created_at, updated_at, voicemail_notify"
)


async def _load(conn: asyncpg.Connection, msisdn: str, *, lock: bool = False) -> Subscriber | None:
    row = await conn.fetchrow(
        f"SELECT {_SUB_COLS} FROM subscriber WHERE msisdn = $1" + (" FOR UPDATE" if lock else ""),
        msisdn,
    )
    if row is None:
        return None
    subs = await conn.fetch(
        "SELECT service, start_date, end_date FROM subscription WHERE msisdn = $1 ORDER BY service",
        msisdn,
    )
    return Subscriber(**dict(row), subscriptions=tuple(Subscription(**dict(s)) for s in subs))


async def _must_load(conn: asyncpg.Connection, msisdn: str, *, lock: bool = False) -> Subscriber:
    s = await _load(conn, msisdn, lock=lock)
    if s is None:
        raise NotFound(f"subscriber {msisdn} does not exist")
    return s


async def add_subscriber(
    db: Db,
    actor: Actor,
    msisdn: str,
    *,
    today: dt.date,
    services: Iterable[str] = (),
    pin: str | None = None,
    group: str = "default",
    language: str = "zh",
    imsi: str | None = None,
    notify_mode: str = "sms",
    forward_to: str | None = None,
    status: str = "active",
    voicemail_notify: str = "sms",
) -> Subscriber:
    """Create a subscriber with its services in force from ``today`` (Conflict if the MSISDN
    exists)."""
    m = valid_msisdn(msisdn)
    valid_choice(voicemail_notify, VOICEMAIL_NOTIFY, "voicemail_notify")
    svcs = valid_services(services)
    grp = valid_group(group)
    valid_choice(language, LANGUAGES, "language")
    valid_choice(notify_mode, NOTIFY_MODES, "notify_mode")
    valid_choice(status, STATUSES, "status")
    im = valid_imsi(imsi)
    fwd = valid_msisdn(forward_to, "forward_to") if forward_to else None
    pin_hash = pins.hash_pin(valid_pin(pin)) if pin else None
    async with transaction(db) as conn:
        try:
            await conn.execute(
                "INSERT INTO subscriber (msisdn, imsi, status, language, user_group, notify_mode,"
                " forward_to, pin_hash, voicemail_notify)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                m,
                im,
                status,
                language,
                grp,
                notify_mode,
                fwd,
                pin_hash,
                voicemail_notify,
            )
        except asyncpg.UniqueViolationError as e:
            what = "imsi" if "imsi" in (e.constraint_name or "") else "msisdn"
            raise Conflict(f"subscriber with this {what} already exists", field=what) from None
        if svcs:
            await conn.executemany(
                "INSERT INTO subscription (msisdn, service, start_date) VALUES ($1, $2, $3)",
                [(m, s, today) for s in svcs],
            )
        sub = await _must_load(conn, m)
        await audit(conn, actor, "create", "subscriber", m, None, sub)
    return sub


async def get_subscriber(db: Db, msisdn: str) -> Subscriber:
    """The subscriber, or NotFound."""
    m = valid_msisdn(msisdn)
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await _must_load(conn, m)
    return await _must_load(db, m)


async def update_subscriber(
    db: Db,
    actor: Actor,
    msisdn: str,
    *,
    imsi: Any = UNSET,
    status: Any = UNSET,
    language: Any = UNSET,
    group: Any = UNSET,
    notify_mode: Any = UNSET,
    forward_to: Any = UNSET,
    voicemail_notify: Any = UNSET,
) -> Subscriber:
    """Change the given attributes (None clears imsi / forward_to)."""
    m = valid_msisdn(msisdn)
    changes: dict[str, Any] = {}
    if imsi is not UNSET:
        changes["imsi"] = valid_imsi(imsi)
    if status is not UNSET:
        changes["status"] = valid_choice(status, STATUSES, "status")
    if language is not UNSET:
        changes["language"] = valid_choice(language, LANGUAGES, "language")
    if group is not UNSET:
        changes["user_group"] = valid_group(group)
    if notify_mode is not UNSET:
        changes["notify_mode"] = valid_choice(notify_mode, NOTIFY_MODES, "notify_mode")
    if forward_to is not UNSET:
        changes["forward_to"] = valid_msisdn(forward_to, "forward_to") if forward_to else None
    if voicemail_notify is not UNSET:
        changes["voicemail_notify"] = valid_choice(
            voicemail_notify, VOICEMAIL_NOTIFY, "voicemail_notify"
        )
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        if changes:
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
            # Only touch the row (and updated_at) when a value really changes.
            olds = ", ".join(changes)
            news = ", ".join(f"${i}" for i in range(2, len(changes) + 2))
            try:
                await conn.execute(
                    f"UPDATE subscriber SET {sets}, updated_at = now()"
                    f" WHERE msisdn = $1 AND ({olds}) IS DISTINCT FROM"
                    f" ({news})",
                    m,
                    *changes.values(),
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("another subscriber has this imsi", field="imsi") from None
        after = await _must_load(conn, m)
        if after != before:
            await audit(conn, actor, "update", "subscriber", m, before, after)
    return after


async def delete_subscriber(
    db: Db, actor: Actor, msisdn: str, *, today: dt.date | None = None
) -> None:
    """Remove the subscriber and everything hanging off it (services, lists, calls). With
    ``today`` (the caller's day) its services end that day first, so the month's billing still
    charges the days they ran (kept periods, migration 0200); without it, services still open
    are not billed for the month of the deletion."""
    m = valid_msisdn(msisdn)
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        if today is not None:
            await conn.execute(
                "UPDATE subscription SET end_date = greatest(start_date, $2)"
                " WHERE msisdn = $1 AND (end_date IS NULL OR end_date > $2)",
                m,
                today,
            )
        await conn.execute("DELETE FROM subscriber WHERE msisdn = $1", m)
        await audit(conn, actor, "delete", "subscriber", m, before, None)


async def put_subscriber(
    db: Db,
    actor: Actor,
    msisdn: str,
    *,
    today: dt.date,
    services: Iterable[str],
    group: str,
    language: str,
    notify_mode: str,
    voicemail_notify: str,
    forward_to: str | None,
    imsi: str | None,
    status: str,
) -> tuple[Subscriber, bool]:
    """Create the subscriber, or make it exactly this (attributes, and services in force from
    ``today``: the missing ones enabled, the others ended); (subscriber, created). One
    transaction; PIN and history are kept."""
    m = valid_msisdn(msisdn)
    svcs = valid_services(services)
    async with transaction(db) as conn:
        if await _load(conn, m, lock=True) is None:
            sub = await add_subscriber(
                conn,
                actor,
                m,
                today=today,
                services=svcs,
                group=group,
                language=language,
                imsi=imsi,
                notify_mode=notify_mode,
                forward_to=forward_to,
                status=status,
                voicemail_notify=voicemail_notify,
            )
            return sub, True
        sub = await update_subscriber(
            conn,
            actor,
            m,
            imsi=imsi or None,
            status=status,
            language=language,
            group=group,
            notify_mode=notify_mode,
            forward_to=forward_to or None,
            voicemail_notify=voicemail_notify,
        )
        active = set(sub.active_services(today))
        for svc in svcs:
            if svc not in active:
                sub = await enable_service(conn, actor, m, svc, today=today)
        for svc in sorted(active - set(svcs)):
            sub = await disable_service(conn, actor, m, svc, today=today)
    return sub, False


async def list_subscribers(
    db: Db, *, group: str | None = None, after: str | None = None, limit: int = 1000
) -> list[Subscriber]:
    """Subscribers in MSISDN order (keyset paging with ``after``), with their services."""
    async with transaction(db) as conn:
        rows = await conn.fetch(
            f"SELECT {_SUB_COLS} FROM subscriber WHERE ($1::text IS NULL OR user_group = $1)"
            " AND ($2::text IS NULL OR msisdn > $2) ORDER BY msisdn LIMIT $3",
            group,
            after,
            limit,
        )
        subs = await conn.fetch(
            "SELECT msisdn, service, start_date, end_date FROM subscription"
            " WHERE msisdn = ANY($1::text[]) ORDER BY msisdn, service",
            [r["msisdn"] for r in rows],
        )
    by: dict[str, list[Subscription]] = {}
    for s in subs:
        by.setdefault(s["msisdn"], []).append(
            Subscription(s["service"], s["start_date"], s["end_date"])
        )
    return [Subscriber(**dict(r), subscriptions=tuple(by.get(r["msisdn"], ()))) for r in rows]


async def list_groups(db: Db) -> list[dict[str, Any]]:
    """User groups (the CRM's segments, which ads target) with their subscriber counts."""
    async with transaction(db) as conn:
        rows = await conn.fetch(
            "SELECT user_group AS group, count(*) AS subscribers FROM subscriber"
            " GROUP BY user_group ORDER BY user_group"
        )
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------


async def enable_service(
    db: Db,
    actor: Actor,
    msisdn: str,
    service: str,
    *,
    today: dt.date,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Subscriber:
    """Subscribe (or re-subscribe) ``service`` from ``start`` (default ``today``, the caller's
    calendar day) until ``end``."""
    m = valid_msisdn(msisdn)
    valid_choice(service, SERVICES, "service")
    if start and end and end < start:
        raise InvalidInput("end", "must not be before start")
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        await conn.execute(
            "INSERT INTO subscription (msisdn, service, start_date, end_date)"
            " VALUES ($1, $2, coalesce($3::date, $5::date), $4)"
            " ON CONFLICT (msisdn, service) DO UPDATE SET start_date = CASE"
            "   WHEN subscription.end_date IS NULL OR subscription.end_date > $5::date"
            "   THEN least(subscription.start_date, EXCLUDED.start_date)"
            "   ELSE EXCLUDED.start_date END, end_date = EXCLUDED.end_date",
            m,
            service,
            start,
            end,
            today,
        )
        after = await _must_load(conn, m)
        if after != before:
            await audit(conn, actor, "enable-service", "subscriber", m, before, after)
    return after


async def disable_service(
    db: Db, actor: Actor, msisdn: str, service: str, *, today: dt.date
) -> Subscriber:
    """End ``service`` on ``today`` (kept as history; NotFound if never subscribed)."""
    m = valid_msisdn(msisdn)
    valid_choice(service, SERVICES, "service")
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        if service not in {s.service for s in before.subscriptions}:
            raise NotFound(f"subscriber {m} has no {service} service")
        await conn.execute(
            "UPDATE subscription SET end_date = greatest(start_date, $3)"
            " WHERE msisdn = $1 AND service = $2"
            " AND (end_date IS NULL OR end_date > $3)",
            m,
            service,
            today,
        )
        after = await _must_load(conn, m)
        if after != before:
            await audit(conn, actor, "disable-service", "subscriber", m, before, after)
    return after


# --------------------------------------------------------------------------------------------
# Blacklist
# --------------------------------------------------------------------------------------------


def _blacklist_entry(owner: str, number: str, prefix: bool) -> BlacklistEntry:
    """The validated entry (owner, number, kind) a blacklist command names."""
    return BlacklistEntry(
        valid_msisdn(owner, "owner"),
        valid_blacklist_number(number, prefix),
        "prefix" if prefix else "exact",
    )


async def blacklist_add(
    db: Db, actor: Actor, owner: str, number: str, *, prefix: bool = False
) -> BlacklistEntry:
    """Block calls from ``number`` (or a prefix) for ``owner``; adding twice is a no-op."""
    entry = _blacklist_entry(owner, number, prefix)
    o, n, kind = entry.owner, entry.number, entry.kind
    async with transaction(db) as conn:
        await _must_load(conn, o)
        r = await conn.execute(
            "INSERT INTO blacklist (owner, number, kind) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            o,
            n,
            kind,
        )
        if r.endswith(" 1"):
            await audit(conn, actor, "create", "blacklist", f"{o}:{kind}:{n}", None, entry)
    return entry


async def blacklist_del(
    db: Db, actor: Actor, owner: str, number: str, *, prefix: bool = False
) -> None:
    """Remove a blacklist entry (NotFound if absent)."""
    entry = _blacklist_entry(owner, number, prefix)
    o, n, kind = entry.owner, entry.number, entry.kind
    async with transaction(db) as conn:
        r = await conn.execute(
            "DELETE FROM blacklist WHERE owner = $1 AND number = $2 AND kind = $3", o, n, kind
        )
        if r.endswith(" 0"):
            raise NotFound(f"{n} ({kind}) is not on {o}'s blacklist")
        await audit(conn, actor, "delete", "blacklist", f"{o}:{kind}:{n}", entry, None)


async def blacklist_list(db: Db, owner: str) -> list[BlacklistEntry]:
    """The owner's entries."""
    o = valid_msisdn(owner, "owner")
    async with transaction(db) as conn:
        rows = await conn.fetch(
            "SELECT owner, number, kind FROM blacklist WHERE owner = $1 ORDER BY kind, number", o
        )
    return [BlacklistEntry(**dict(r)) for r in rows]


async def is_blacklisted(db: Db, owner: str, caller: str) -> bool:
    """True if ``caller`` (E.164) is blocked by ``owner`` exactly or by prefix."""
    async with transaction(db) as conn:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM blacklist WHERE owner = $1 AND ("
                " (kind = 'exact' AND number = $2) OR"
                " (kind = 'prefix' AND left($2, length(number)) = number)))",
                owner,
                caller,
            )
        )


# --------------------------------------------------------------------------------------------
# PIN
# --------------------------------------------------------------------------------------------


async def set_pin(db: Db, actor: Actor, msisdn: str, pin: str) -> None:
    """Set a new PIN; clears failed attempts and the lock, and ends the subscriber's portal
    sessions in the same transaction."""
    m = valid_msisdn(msisdn)
    # scrypt costs tens of ms: off the event loop, or every call in flight stalls meanwhile.
    h = await asyncio.to_thread(pins.hash_pin, valid_pin(pin))
    async with transaction(db) as conn:
        await _must_load(conn, m, lock=True)
        await conn.execute(
            "UPDATE subscriber SET pin_hash = $2, pin_failed_attempts = 0,"
            " pin_locked_at = NULL, updated_at = now() WHERE msisdn = $1",
            m,
            h,
        )
        # The hash is never written to the audit log, only the fact.
        await audit(conn, actor, "set-pin", "subscriber", m, None, {"pin_set": True})
        # whatever the channel (IVR, SMS, CLI, API, web): a portal browser logged in with the
        # old PIN is logged in no more
        await web_store.delete_sessions_of(conn, "subscriber", m)


async def reset_pin(db: Db, actor: Actor, msisdn: str) -> None:
    """Remove the PIN (the subscriber must set a new one); clears counters and lock, and ends
    the subscriber's portal sessions."""
    m = valid_msisdn(msisdn)
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        await conn.execute(
            "UPDATE subscriber SET pin_hash = NULL, pin_failed_attempts = 0,"
            " pin_locked_at = NULL, updated_at = now() WHERE msisdn = $1",
            m,
        )
        await audit(
            conn,
            actor,
            "reset-pin",
            "subscriber",
            m,
            {"pin_set": before.pin_set, "pin_locked": before.pin_locked},
            {"pin_set": False, "pin_locked": False},
        )
        await web_store.delete_sessions_of(conn, "subscriber", m)


async def unlock_pin(db: Db, actor: Actor, msisdn: str) -> None:
    """Clear the lock and the failed-attempt count, keep the PIN."""
    m = valid_msisdn(msisdn)
    async with transaction(db) as conn:
        before = await _must_load(conn, m, lock=True)
        await conn.execute(
            "UPDATE subscriber SET pin_failed_attempts = 0, pin_locked_at = NULL,"
            " updated_at = now() WHERE msisdn = $1",
            m,
        )
        await audit(
            conn,
            actor,
            "unlock-pin",
            "subscriber",
            m,
            {"pin_failed_attempts": before.pin_failed_attempts, "pin_locked": before.pin_locked},
            {"pin_failed_attempts": 0, "pin_locked": False},
        )


async def verify_pin(db: Db, actor: Actor, msisdn: str, pin: str) -> PinCheck:
    """Check a PIN (IVR / SMS self-care): counts failures, locks after MAX_FAILED_ATTEMPTS."""
    m = valid_msisdn(msisdn)
    async with transaction(db) as conn:
        row = await conn.fetchrow(
            "SELECT pin_hash, pin_failed_attempts, pin_locked_at"
            " FROM subscriber WHERE msisdn = $1 FOR UPDATE",
            m,
        )
        if row is None:
            raise NotFound(f"subscriber {m} does not exist")
        if row["pin_locked_at"] is not None:
            return PinCheck("locked")
        if row["pin_hash"] is None:
            return PinCheck("no-pin")
        if await asyncio.to_thread(pins.verify_pin, pin, row["pin_hash"]):
            if row["pin_failed_attempts"] or pins.needs_rehash(row["pin_hash"]):
                new_hash = (
                    await asyncio.to_thread(pins.hash_pin, pin)
                    if pins.needs_rehash(row["pin_hash"])
                    else row["pin_hash"]
                )
                await conn.execute(
                    "UPDATE subscriber SET pin_failed_attempts = 0,"
                    " pin_hash = $2 WHERE msisdn = $1",
                    m,
                    new_hash,
                )
            return PinCheck("ok", pins.MAX_FAILED_ATTEMPTS)
        failed = row["pin_failed_attempts"] + 1
        locked = failed >= pins.MAX_FAILED_ATTEMPTS
        await conn.execute(
            "UPDATE subscriber SET pin_failed_attempts = $2, pin_locked_at ="
            " CASE WHEN $3 THEN now() END, updated_at = now() WHERE msisdn = $1",
            m,
            failed,
            locked,
        )
        await audit(
            conn,
            actor,
            "pin-lock" if locked else "pin-failed",
            "subscriber",
            m,
            {"pin_failed_attempts": failed - 1},
            {"pin_failed_attempts": failed, "pin_locked": locked},
        )
        if locked:
            return PinCheck("locked")
        return PinCheck("wrong", pins.MAX_FAILED_ATTEMPTS - failed)


# --------------------------------------------------------------------------------------------
# Missed calls, callbacks (read side for ops; the call flow writes them)
# --------------------------------------------------------------------------------------------


async def list_missed_calls(
    db: Db,
    *,
    callee: str | None = None,
    pending: bool = False,
    limit: int = 100,
    since: dt.datetime | None = None,
    before: tuple[dt.datetime, int] | None = None,
) -> list[asyncpg.Record]:
    """Most recent missed calls first, optionally for one callee, only not yet notified, or
    only since a time (the self-service IVR announces the notification window's calls);
    ``before`` (occurred_at, id) continues a list after its last row (keyset paging)."""
    c = valid_msisdn(callee, "callee") if callee else None
    b_at, b_id = before if before is not None else (None, None)
    async with transaction(db) as conn:
        result: list[Any] = await conn.fetch(
            "SELECT id, caller, callee, occurred_at, reason, cause, call_ref, notified_at"
            " FROM missed_call WHERE ($1::text IS NULL OR callee = $1)"
            " AND (NOT $2 OR notified_at IS NULL)"
            " AND ($4::timestamptz IS NULL OR occurred_at >= $4)"
            " AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6::bigint))"
            " ORDER BY occurred_at DESC, id DESC LIMIT $3",
            c,
            pending,
            limit,
            since,
            b_at,
            b_id,
        )
        return result


async def list_callbacks(
    db: Db, *, callee: str | None = None, pending: bool = False, limit: int = 100
) -> list[asyncpg.Record]:
    """Callback requests, newest first."""
    c = valid_msisdn(callee, "callee") if callee else None
    async with transaction(db) as conn:
        result: list[Any] = await conn.fetch(
            "SELECT id, caller, callee, requested_at, expires_at, missed_call_id, notified_at"
            " FROM callback_request WHERE ($1::text IS NULL OR callee = $1)"
            " AND (NOT $2 OR notified_at IS NULL) ORDER BY requested_at DESC, id DESC LIMIT $3",
            c,
            pending,
            limit,
        )
        return result


# --------------------------------------------------------------------------------------------
# Ads
# --------------------------------------------------------------------------------------------


def _ad(r: asyncpg.Record) -> AdRule:
    d = dict(r)
    d["caller_prefixes"] = tuple(d["caller_prefixes"])
    d["user_groups"] = tuple(d["user_groups"])
    return AdRule(**d)


_AD_COLS = (
    "id, text, window_start, window_end, caller_prefixes, user_groups, priority,"
    " valid_from, valid_until"
)


async def add_ad(
    db: Db,
    actor: Actor,
    text: str,
    *,
    now: dt.datetime,
    window_start: dt.time = dt.time(0, 0),
    window_end: dt.time | None = None,
    caller_prefixes: Sequence[str] = (),
    user_groups: Sequence[str] = (),
    priority: int = 0,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
) -> AdRule:
    """Add an advertising rule (window_end None: end of day), valid from ``valid_from`` or else
    from the caller's ``now``."""
    valid_from = valid_from or now
    valid_ad(
        text,
        caller_prefixes=caller_prefixes,
        user_groups=user_groups,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    async with transaction(db) as conn:
        row = await conn.fetchrow(
            "INSERT INTO ad_rule (text, window_start, window_end, caller_prefixes, user_groups,"
            " priority, valid_from, valid_until) VALUES ($1, $2, $3,"
            f" $4, $5, $6, $7, $8) RETURNING {_AD_COLS}",
            text,
            window_start,
            window_end,
            list(caller_prefixes),
            list(user_groups),
            priority,
            valid_from,
            valid_until,
        )
        ad = _ad(row)
        await audit(conn, actor, "create", "ad_rule", str(ad.id), None, ad)
    return ad


async def list_ads(db: Db) -> list[AdRule]:
    """All ad rules, highest priority first."""
    async with transaction(db) as conn:
        rows = await conn.fetch(f"SELECT {_AD_COLS} FROM ad_rule ORDER BY priority DESC, id")
    return [_ad(r) for r in rows]


async def delete_ad(db: Db, actor: Actor, ad_id: int) -> None:
    """Delete an ad rule (NotFound if absent)."""
    async with transaction(db) as conn:
        row = await conn.fetchrow(f"DELETE FROM ad_rule WHERE id = $1 RETURNING {_AD_COLS}", ad_id)
        if row is None:
            raise NotFound(f"ad rule {ad_id} does not exist")
        await audit(conn, actor, "delete", "ad_rule", str(ad_id), _ad(row), None)


# --------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------

_RATE_COLS = "id, call_category, prefix, per_minute, per_sms, per_use, monthly_fee, valid_from"


_RATE_UPSERT = (
    "INSERT INTO rate (call_category, prefix, per_minute, per_sms, per_use, monthly_fee,"
    " valid_from) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (call_category, prefix, valid_from) DO UPDATE SET per_minute = EXCLUDED.per_minute,"
    " per_sms = EXCLUDED.per_sms, per_use = EXCLUDED.per_use, monthly_fee = EXCLUDED.monthly_fee"
    f" RETURNING {_RATE_COLS}"
)


async def add_rate(
    db: Db,
    actor: Actor,
    call_category: str,
    prefix: str = "",
    *,
    today: dt.date,
    per_minute: Any = 0,
    per_sms: Any = 0,
    per_use: Any = 0,
    monthly_fee: Any = 0,
    valid_from: dt.date | str | None = None,
) -> Rate:
    """Add (or replace, same category/prefix/valid_from) a tariff line; valid from
    ``valid_from``, or else from the caller's ``today``."""
    vals = valid_rate(
        call_category, prefix, per_minute, per_sms, per_use, monthly_fee, valid_from, today=today
    )
    async with transaction(db) as conn:
        rate = Rate(**dict(await conn.fetchrow(_RATE_UPSERT, *vals)))
        await audit(conn, actor, "upsert", "rate", str(rate.id), None, rate)
    return rate


async def import_rates(
    db: Db, actor: Actor, rows: Sequence[tuple[int, dict[str, str]]], *, today: dt.date
) -> int:
    """Upsert many tariff lines (``(line, csv-dict)``; no ``valid_from``: from ``today``); all
    validated first, else InvalidInput."""
    vals: list[tuple[Any, ...]] = []
    bad: list[str] = []
    for line, r in rows:
        try:
            vals.append(
                valid_rate(
                    r.get("call_category", ""),
                    r.get("prefix", ""),
                    r.get("per_minute") or 0,
                    r.get("per_sms") or 0,
                    r.get("per_use") or 0,
                    r.get("monthly_fee") or 0,
                    r.get("valid_from") or None,
                    today=today,
                )
            )
        except InvalidInput as e:
            bad.append(f"line {line}: {e}")
    if bad:
        raise InvalidInput("file", "\n".join(bad))
    async with transaction(db) as conn:
        for v in vals:
            rate = Rate(**dict(await conn.fetchrow(_RATE_UPSERT, *v)))
            await audit(conn, actor, "upsert", "rate", str(rate.id), None, rate)
    return len(vals)


async def delete_rate(db: Db, actor: Actor, rate_id: int) -> Rate:
    """Remove a tariff line (NotFound if absent); the line before it in time, if any, is in
    force again. The CDRs already rated keep their charges."""
    async with transaction(db) as conn:
        row = await conn.fetchrow(f"DELETE FROM rate WHERE id = $1 RETURNING {_RATE_COLS}", rate_id)
        if row is None:
            raise NotFound(f"rate {rate_id} does not exist")
        rate = Rate(**dict(row))
        await audit(conn, actor, "delete", "rate", str(rate_id), rate, None)
    return rate


async def list_rates(db: Db, *, call_category: str | None = None) -> list[Rate]:
    """Tariff lines by category, prefix and validity."""
    if call_category:
        valid_choice(call_category, CALL_CATEGORIES, "call_category")
    async with transaction(db) as conn:
        rows = await conn.fetch(
            f"SELECT {_RATE_COLS} FROM rate WHERE ($1::text IS NULL OR"
            " call_category = $1) ORDER BY call_category, prefix, valid_from",
            call_category,
        )
    return [Rate(**dict(r)) for r in rows]


# --------------------------------------------------------------------------------------------
# SMS outbox (ops view) and CDR export
# --------------------------------------------------------------------------------------------


async def list_sms(
    db: Db, *, status: str | None = None, destination: str | None = None, limit: int = 100
) -> list[asyncpg.Record]:
    """Outbox rows, newest first."""
    if status:
        valid_choice(status, SMS_STATUSES, "status")
    d = valid_msisdn(destination, "destination") if destination else None
    async with transaction(db) as conn:
        result: list[Any] = await conn.fetch(
            "SELECT id, idempotency_key, destination, text, status, attempts, next_attempt_at,"
            " last_error, smsc_message_id, delivery_status, created_at, updated_at"
            " FROM sms_outbox WHERE ($1::text IS NULL OR status = $1)"
            " AND ($2::text IS NULL OR destination = $2) ORDER BY id DESC LIMIT $3",
            status,
            d,
            limit,
        )
        return result


async def retry_sms(db: Db, actor: Actor, sms_id: int, *, now: dt.datetime) -> None:
    """Requeue a failed or expired SMS, due at ``now`` (Conflict if it is in any other state)."""
    async with transaction(db) as conn:
        row = await conn.fetchrow(
            "SELECT status, attempts FROM sms_outbox WHERE id = $1 FOR UPDATE", sms_id
        )
        if row is None:
            raise NotFound(f"sms {sms_id} does not exist")
        if row["status"] not in ("failed", "expired"):
            raise Conflict(
                f"sms {sms_id} is {row['status']}: only failed or expired SMS are retried"
            )
        # A real retry: a fresh attempt budget, and no validity left over from the first try
        # (an expired row would only be expired again by the next claim).
        await conn.execute(
            "UPDATE sms_outbox SET status = 'queued', next_attempt_at = $2,"
            " attempts = 0, expires_at = NULL, last_error = NULL,"
            " updated_at = now() WHERE id = $1",
            sms_id,
            now,
        )
        await audit(
            conn,
            actor,
            "retry",
            "sms_outbox",
            str(sms_id),
            {"status": row["status"]},
            {"status": "queued"},
        )


# the CSV / JSON-lines export carries the fields of the CDR files (docs/cdr-format.md)
CDR_COLUMNS = CDR_FIELDS


async def list_cdrs(
    db: Db,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    msisdn: str | None = None,
    after: tuple[dt.datetime, int] | None = None,
    limit: int = 100,
) -> list[asyncpg.Record]:
    """CDRs in start order (keyset paging with ``after``: (started_at, id) of the last row)."""
    m = valid_msisdn(msisdn, "msisdn") if msisdn else None
    a_at, a_id = after if after is not None else (None, None)
    async with transaction(db) as conn:
        result: list[Any] = await conn.fetch(
            f"SELECT {', '.join(CDR_COLUMNS)} FROM cdr WHERE ($1::timestamptz IS NULL OR"
            " started_at >= $1) AND ($2::timestamptz IS NULL OR started_at < $2)"
            " AND ($3::text IS NULL OR msisdn = $3)"
            " AND ($4::timestamptz IS NULL OR (started_at, id) > ($4, $5::bigint))"
            " ORDER BY started_at, id LIMIT $6",
            since,
            until,
            m,
            a_at,
            a_id,
            limit,
        )
        return result


async def iter_cdrs(
    conn: asyncpg.Connection, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> AsyncIterator[asyncpg.Record]:
    """CDRs in start order, streamed with a server-side cursor (call inside a transaction)."""
    async for r in conn.cursor(
        f"SELECT {', '.join(CDR_COLUMNS)} FROM cdr WHERE ($1::timestamptz IS NULL OR"
        " started_at >= $1) AND ($2::timestamptz IS NULL OR started_at < $2)"
        " ORDER BY started_at, id",
        since,
        until,
        prefetch=1000,
    ):
        yield r
