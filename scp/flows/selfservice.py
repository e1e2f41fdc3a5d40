"""Web self-service and the operator console: logins, sessions, one-time codes, operator
accounts and the pages' read models - the flows behind the portal, the console and
``mcn-scp operator``.

Changes to a subscriber go through :mod:`scp.flows.provisioning` like every other channel's
(the portal as channel ``web`` with the subscriber as actor, the console as ``operator`` with
the agent's name); this module adds what only the web needs. Its rules are
:mod:`scp.service.webauth`; its SQL :mod:`scp.state.web_store` (migration 0100).

* **Subscriber login**: mobile number + PIN, checked by :func:`scp.flows.provisioning.verify_pin`,
  the same check (and the same lock: three wrong tries) as the IVR's self-service menu.
* **One-time code**: a number without a PIN, that forgot it, or that is not a subscriber yet
  asks for a code; the code's row and its SMS (outbox) are written in one transaction, rate
  limited per number and per client address. The right code logs the number in (enrolling
  it with the missed-call service if it was not a subscriber), and the portal then asks for a
  new PIN.
* **Throttling**: failed logins are counted per number (or operator name) and per client
  address over ``[web] login_window``; beyond the limits a login is refused before any PIN is
  checked, so a throttled guesser cannot even lock the PIN.
* Nothing here logs a password, a PIN or a code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg
import structlog

from scp.config import Config
from scp.flows import billing, reports
from scp.flows import provisioning as prov
from scp.service import webauth as auth
from scp.service.billing import price_on
from scp.service.notifications import local_day, render, templates_for
from scp.service.provisioning import (
    Actor,
    Conflict,
    InvalidInput,
    NotFound,
    valid_msisdn,
)
from scp.service.webauth import Operator, SessionInfo
from scp.state import notify_store
from scp.state import web_store as store

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

log = structlog.get_logger("scp.web")

__all__ = [
    "CODE_SMS_KEY",
    "Dashboard",
    "LoginResult",
    "WebSettings",
    "add_operator",
    "anonymous_session",
    "check_code",
    "dashboard",
    "delete_operator",
    "end_session",
    "list_operators",
    "load_session",
    "new_anonymous_session",
    "operator_login",
    "purge",
    "reset_pin",
    "run_purge",
    "send_code",
    "service_fees",
    "set_operator_password",
    "set_pin",
    "sms_is_for",
    "start_session",
    "subscriber_login",
]

# the idempotency key prefix of a one-time code's SMS: the console shows agents that it went,
# never the code
CODE_SMS_KEY = "web-code:"

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what auth.new_token() makes


@dataclass(frozen=True, slots=True)
class WebSettings:
    """``[web]`` as the flows use it."""

    idle: dt.timedelta
    lifetime: dt.timedelta
    window: dt.timedelta
    max_per_number: int
    max_per_address: int
    code_ttl: dt.timedelta
    code_interval: dt.timedelta
    code_max_per_day: int

    @classmethod
    def from_config(cls, cfg: Config) -> WebSettings:
        w = cfg.web
        return cls(
            idle=dt.timedelta(seconds=w.session_idle),
            lifetime=dt.timedelta(seconds=w.session_lifetime),
            window=dt.timedelta(seconds=w.login_window),
            max_per_number=w.login_max_per_number,
            max_per_address=w.login_max_per_address,
            code_ttl=dt.timedelta(seconds=w.code_ttl),
            code_interval=dt.timedelta(seconds=w.code_interval),
            code_max_per_day=w.code_max_per_day,
        )


# -- sessions ------------------------------------------------------------------------------------


async def start_session(
    db: Db,
    kind: str,
    subject: str | None,
    now: dt.datetime,
    s: WebSettings,
    *,
    via: str | None = None,
    role: str | None = None,
) -> tuple[str, SessionInfo]:
    """A new logged-in session; the token for the cookie and the session as requests will
    see it."""
    token, csrf = auth.new_token(), auth.new_token()
    th = auth.token_hash(token)
    await store.create_session(
        db,
        token_hash=th,
        kind=kind,
        subject=subject,
        csrf=csrf,
        via=via,
        now=now,
        expires_at=auth.session_expiry(now, now, idle=min(s.idle, s.lifetime), lifetime=s.lifetime),
    )
    return token, SessionInfo(th, kind, subject, csrf, via, role)


def anonymous_session(token: str) -> SessionInfo | None:
    """A login form's session, kept by the browser alone: no row, so a page view by anyone
    writes nothing. The cookie's token is the secret and the form's CSRF token is derived
    from it (a double-submit pair another site can neither read nor forge); a login then
    starts a stored session under a new token. None: ``token`` is not a token of ours."""
    if not _TOKEN.fullmatch(token):
        return None
    csrf = hashlib.sha256(b"mcn-login-form\0" + token.encode()).hexdigest()
    return SessionInfo(auth.token_hash(token), "anonymous", None, csrf, None, None)


def new_anonymous_session() -> tuple[str, SessionInfo]:
    """A new login form's session (:func:`anonymous_session`): the cookie's token and it."""
    token = auth.new_token()
    sess = anonymous_session(token)
    assert sess is not None  # new_token() makes what _TOKEN matches
    return token, sess


async def load_session(db: Db, token: str, now: dt.datetime, s: WebSettings) -> SessionInfo | None:
    """The live session of a cookie's token, or None (unknown, expired, account gone)."""
    if not token or len(token) > 100:
        return None
    return await store.load_session(
        db, auth.token_hash(token), now, idle=s.idle, lifetime=s.lifetime
    )


async def end_session(db: Db, session: SessionInfo) -> None:
    await store.delete_session(db, session.token_hash)


async def set_pin(db: Db, actor: Actor, msisdn: str, pin: str) -> None:
    """A subscriber's new PIN by the web (the portal or an agent): the provisioning's
    :func:`~scp.flows.provisioning.set_pin` (6-10 digits, audited with the actor), which ends
    every portal session of the subscriber in the same transaction, as it does for every
    channel (the portal logs its own browser in again)."""
    await prov.set_pin(db, actor, valid_msisdn(msisdn, "msisdn"), pin)


async def reset_pin(db: Db, actor: Actor, msisdn: str) -> None:
    """The PIN removed (:func:`~scp.flows.provisioning.reset_pin`, audited) and the
    subscriber's portal sessions ended with it."""
    await prov.reset_pin(db, actor, valid_msisdn(msisdn, "msisdn"))


# -- throttling ----------------------------------------------------------------------------------


def _keys(kind: str, subject: str, address: str) -> tuple[str, str]:
    return f"{kind}:{subject}", f"address:{address}"


async def _throttled(
    db: Db, kind: str, subject: str, address: str, now: dt.datetime, s: WebSettings
) -> bool:
    k_subject, k_address = _keys(kind, subject, address)
    n = await store.count_attempts(db, (k_subject, k_address), now - s.window)
    return auth.throttled(n[k_subject], s.max_per_number) or auth.throttled(
        n[k_address], s.max_per_address
    )


# -- subscriber login ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    """ok | wrong | locked | no-pin | throttled; the number as stored; tries left."""

    outcome: str
    msisdn: str | None = None
    attempts_left: int = 0


async def subscriber_login(
    db: Db, number: str, pin: str, *, address: str, now: dt.datetime, s: WebSettings
) -> LoginResult:
    """Mobile number + PIN: the IVR's PIN check and lock, behind the web's throttling."""
    try:
        msisdn = valid_msisdn(number, "number")
    except InvalidInput:
        msisdn = None
    subject = msisdn or "invalid"
    if await _throttled(db, "number", subject, address, now, s):
        return LoginResult("throttled", msisdn)
    outcome, left = "wrong", 0
    if msisdn is not None:
        try:
            check = await prov.verify_pin(db, Actor("web", msisdn), msisdn, pin)
            outcome, left = check.outcome, check.attempts_left
        except NotFound:
            outcome = "wrong"  # the same answer as a wrong PIN: no list of subscribers here
    if outcome == "ok":
        await store.clear_attempts(db, _keys("number", subject, address)[0])
    elif outcome in ("wrong", "locked"):
        await store.record_attempt(db, _keys("number", subject, address), now)
    return LoginResult(outcome, msisdn, left)


# -- one-time codes ------------------------------------------------------------------------------


async def send_code(
    db: Db,
    number: str,
    *,
    address: str,
    now: dt.datetime,
    cfg: Config,
    s: WebSettings,
    language: str | None = None,
) -> str:
    """Queue a one-time code for ``number`` by SMS: "sent", or "throttled" (too soon, too many
    today from this number or this address). InvalidInput names a malformed number."""
    msisdn = valid_msisdn(number, "number")
    k_number, k_address = f"code:{msisdn}", f"code-address:{address}"
    day_ago = now - dt.timedelta(days=1)
    async with prov.transaction(db) as conn:
        # one sender at a time per number: the interval and the daily count hold under races
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", k_number)
        n = await store.count_attempts(conn, (k_number, k_address), day_ago)
        recent = await store.count_attempts(conn, (k_number,), now - s.code_interval)
        if (
            recent[k_number] > 0
            or auth.throttled(n[k_number], s.code_max_per_day)
            or auth.throttled(n[k_address], s.code_max_per_day * 4)
        ):
            return "throttled"
        day = local_day(now, cfg)
        rcpt = await notify_store.load_recipient(conn, msisdn, day)
        t = templates_for(cfg, rcpt.language if rcpt is not None else language)
        code = auth.new_code()
        minutes = max(1, round(s.code_ttl.total_seconds() / 60))
        await store.put_code(conn, msisdn, auth.code_hash(msisdn, code), now, now + s.code_ttl)
        await notify_store.enqueue_sms(
            conn,
            key=f"{CODE_SMS_KEY}{msisdn}:{auth.new_token()[:16]}",
            destination=msisdn,
            text=render(t["web_code"], code=code, minutes=minutes),
            not_before=now,
            expires_at=now + s.code_ttl,
            source=cfg.notify.service_number or cfg.smpp.source_addr,
        )
        await store.record_attempt(conn, (k_number, k_address), now)
    return "sent"


async def check_code(
    db: Db,
    number: str,
    code: str,
    *,
    address: str,
    now: dt.datetime,
    cfg: Config,
    s: WebSettings,
    language: str = "zh",
) -> LoginResult:
    """The code sent to ``number``: ok (the number is logged in; a number that was not a
    subscriber is enrolled with the missed-call service, channel ``web``), wrong, or
    throttled. A code is good for :data:`~scp.service.webauth.CODE_TRIES` tries."""
    try:
        msisdn = valid_msisdn(number, "number")
    except InvalidInput:
        return LoginResult("wrong")
    if await _throttled(db, "number", msisdn, address, now, s):
        return LoginResult("throttled", msisdn)
    async with prov.transaction(db) as conn:
        row = await store.take_code_try(conn, msisdn, now)
        good = (
            row is not None
            and row["tries"] < auth.CODE_TRIES
            and auth.same_secret(row["code_hash"], auth.code_hash(msisdn, code))
        )
        if good:
            await store.delete_code(conn, msisdn)
            try:
                async with conn.transaction():
                    await prov.add_subscriber(
                        conn,
                        Actor("web", msisdn),
                        msisdn,
                        today=local_day(now, cfg),
                        services=("missed-call",),
                        language=language if language in ("zh", "en") else "zh",
                    )
            except Conflict:
                pass  # a subscriber already: the code only logs in
    if not good:
        await store.record_attempt(db, _keys("number", msisdn, address), now)
        return LoginResult("wrong", msisdn)
    await store.clear_attempts(db, _keys("number", msisdn, address)[0])
    return LoginResult("ok", msisdn)


# -- operator accounts ---------------------------------------------------------------------------


async def add_operator(db: Db, actor: Actor, name: str, role: str, password: str) -> Operator:
    """A new staff account (Conflict if the name is taken); audited, the hash never is."""
    auth.valid_operator_name(name)
    auth.valid_role(role)
    # scrypt costs tens of ms: off the event loop
    h = await asyncio.to_thread(auth.hash_password, password)
    async with prov.transaction(db) as conn:
        try:
            op = await store.insert_operator(conn, name, role, h)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"operator {name} already exists") from None
        await prov.audit(conn, actor, "create", "operator", name, None, {"role": role})
    return op


async def delete_operator(db: Db, actor: Actor, name: str) -> None:
    """Delete the account and end its sessions (NotFound if absent)."""
    async with prov.transaction(db) as conn:
        op = await store.delete_operator(conn, name)
        if op is None:
            raise NotFound(f"operator {name} does not exist")
        await store.delete_sessions_of(conn, "operator", name)
        await prov.audit(conn, actor, "delete", "operator", name, {"role": op.role}, None)


async def set_operator_password(db: Db, actor: Actor, name: str, password: str) -> None:
    """A new password; the account's sessions end (NotFound if absent)."""
    h = await asyncio.to_thread(auth.hash_password, password)
    async with prov.transaction(db) as conn:
        if not await store.set_operator_password(conn, name, h):
            raise NotFound(f"operator {name} does not exist")
        await store.delete_sessions_of(conn, "operator", name)
        await prov.audit(conn, actor, "set-password", "operator", name, None, {"password": "set"})


async def list_operators(db: Db) -> list[Operator]:
    return await store.list_operators(db)


async def operator_login(
    db: Db, name: str, password: str, *, address: str, now: dt.datetime, s: WebSettings
) -> Operator | str:
    """The operator, or "throttled" / "wrong" (unknown name and wrong password alike)."""
    subject = name[:32]
    if await _throttled(db, "operator", subject, address, now, s):
        return "throttled"
    found = await store.operator_with_hash(db, subject)
    # An unknown name costs a hash too: the answer's timing does not tell names apart.
    stored = found[1] if found is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(auth.verify_password, password, stored)
    if not ok or found is None:
        await store.record_attempt(db, _keys("operator", subject, address), now)
        return "wrong"
    await store.clear_attempts(db, _keys("operator", subject, address)[0])
    return found[0]


_DUMMY_HASH = auth.hash_password("not a real password, only for timing")


# -- read models ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and where it stands."""

    rows: list[Any]
    page: int
    pages: int
    total: int


async def missed_calls_page(
    db: Db, msisdn: str, *, now: dt.datetime, cfg: Config, page: int = 1, per_page: int = 20
) -> Page:
    """The subscriber's missed calls of the window ([service] window_hours), per caller."""
    since = now - dt.timedelta(hours=cfg.service.window_hours)
    page = max(1, page)
    rows, total = await store.missed_calls_by_caller(
        db, msisdn, since, limit=per_page, offset=(page - 1) * per_page
    )
    return Page(rows, page, max(1, -(-total // per_page)), total)


async def calls_of_number(db: Db, number: str, *, now: dt.datetime, cfg: Config) -> list[Any]:
    """The console's call inquiry: missed calls to or from any number in the window."""
    n = valid_msisdn(number, "number")
    since = now - dt.timedelta(hours=cfg.service.window_hours)
    return await store.calls_of_number(db, n, since, 200)


async def sms_is_for(db: Db, sms_id: int, msisdn: str) -> bool:
    """Whether the outbox SMS ``sms_id`` went (or goes) to ``msisdn``: the console retries a
    subscriber's SMS from that subscriber's page only."""
    try:
        m = valid_msisdn(msisdn, "msisdn")
    except InvalidInput:
        return False
    return await store.sms_destination(db, sms_id) == m


async def charges_page(
    db: Db, msisdn: str, *, page: int = 1, per_page: int = 50
) -> tuple[Page, Any]:
    """One page of the subscriber's CDRs, newest first, and the sum of all their charges."""
    page = max(1, page)
    rows, n, total = await store.charges(db, msisdn, limit=per_page, offset=(page - 1) * per_page)
    return Page(rows, page, max(1, -(-n // per_page)), n), total


async def audit_page(
    db: Db,
    *,
    subject: str | None = None,
    agent: str | None = None,
    channel: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Any]:
    """The audit log, newest first, filtered (the console's supervisor view)."""
    if subject:
        try:
            subject = valid_msisdn(subject, "subscriber")
        except InvalidInput:
            pass  # any other entity key (an operator's name, an ad's id) is searched as typed
    return await store.search_audit(
        db,
        subject=subject or None,
        agent=agent or None,
        channel=channel or None,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )


async def service_fees(db: Db, *, today: dt.date) -> dict[str, Decimal]:
    """Each product's monthly fee in force ``today`` (the billing's price lists, ``mcn-scp
    products``), for the pages that switch services; a service without a price list is left
    out, and the pages say "per your tariff" rather than show a number that is not one."""
    lines = await billing.list_prices(db)
    fees = {}
    for service in {p.service for p in lines}:
        line = price_on(lines, service, today)
        if line is not None:
            fees[service] = line.monthly_fee
    return fees


@dataclass(frozen=True)
class Dashboard:
    """The supervisor's charts: per local day, oldest first."""

    days: tuple[dt.date, ...]
    missed: dict[str, tuple[int, ...]] = field(default_factory=dict)  # reason -> per day
    sms: dict[str, tuple[int, ...]] = field(default_factory=dict)  # sent / delivered / failed
    callbacks: tuple[int, ...] = ()
    revenue: tuple[Decimal, ...] = ()


SMS_BUCKETS = {
    "sent": ("submitted", "delivered"),
    "delivered": ("delivered",),
    "failed": ("failed", "expired"),
}


async def dashboard(db: Db, *, now: dt.datetime, cfg: Config, days: int = 7) -> Dashboard:
    """The last ``days`` local days ([notify] timezone) up to today, drawn from the billing's
    daily report, so the dashboard and `mcn-scp report daily` show the same numbers."""
    today = local_day(now, cfg)
    since = today - dt.timedelta(days=days - 1)
    report = await reports.daily_report(db, since=since, until=today, timezone=cfg.notify.timezone)
    return Dashboard(
        days=tuple(d.day for d in report),
        missed={
            reason: tuple(d.missed_calls.get(reason, 0) for d in report)
            for reason in reports.REASONS
        },
        sms={
            bucket: tuple(sum(d.sms.get(st, 0) for st in statuses) for d in report)
            for bucket, statuses in SMS_BUCKETS.items()
        },
        callbacks=tuple(d.callback_requests for d in report),
        revenue=tuple(d.revenue for d in report),
    )


async def purge(db: Db, *, now: dt.datetime, s: WebSettings) -> dict[str, int]:
    """Expired sessions and codes out, and the attempts older than every window that counts
    them (the logins' ``[web] login_window``, the codes' day); how many of each went. Any
    process may run it at any time: it deletes only what no request can use any more."""
    return await store.purge_expired(db, now, now - max(s.window, dt.timedelta(days=1)))


async def run_purge(
    pool: asyncpg.Pool,
    s: WebSettings,
    clock: Callable[[], dt.datetime],
    stop: asyncio.Event,
    every: float,
) -> None:
    """:func:`purge` now and then every ``every`` seconds until ``stop`` is set: the node's
    retention and ``mcn-scp web`` both run it, so the web's tables stay bounded whichever
    processes serve the pages. A failed pass (the database away) is logged and the next one
    tries again."""
    while not stop.is_set():
        try:
            gone = await purge(pool, now=clock(), s=s)
        except (OSError, asyncpg.PostgresError):
            log.exception("web.purge failed", retry_in=every)
        else:
            if any(gone.values()):
                log.info("web.purge", **gone)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
