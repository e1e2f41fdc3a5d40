"""Notification flows: the SMS a missed call, a presence event or a receipt causes,
queued in the event's own transaction.

Flows (ARCHITECTURE §4 "Subscriber present"):

* :func:`on_missed_call` runs in the call handler's transaction right after it records the
  missed call. ``busy`` and ``no-answer``: the callee is reachable, so the SMS is queued at
  once, but held for ``[notify].busy_window`` seconds (the outbox row's ``next_attempt_at``)
  during which further attempts from the same caller only raise the count in its text: three
  busy attempts within a minute make one SMS saying 3. ``not-reachable``: the call waits for
  presence, and the HLR is asked to alert us (``hlr_alert`` row, consumed by
  :mod:`scp.flows.presence`: MAP SendRoutingInfoForSM then ReportSM-DeliveryStatus, TS 29.002 §12.3,
  §12.4, TS 23.040 §10.2).
* :func:`record_missed_call` is the call path's form of the same: the missed call and
  :func:`on_missed_call`'s decision written by one statement (migration 0030), the decision
  taken in Python on a forecast of the state that the statement checks under the same locks;
  a wrong forecast costs one more round trip, never a different row.
  :func:`record_missed_calls` does it for the calls of one pass of the node's loop in one
  statement and one commit (migration 0280).
* :func:`on_present` runs when MAP AlertServiceCentre (§12.5) / NoteMM-Event (§8.11.2) /
  ReadyForSM or an SMSC delivery receipt shows the subscriber reachable: one SMS per caller
  (``notify_mode`` sms) or one digest (``digest``) to the callee, and "callee reachable" to every
  caller who pressed 1. Missed calls older than ``[service].window_hours`` expire unsent.
* :func:`on_subscriber_receipt`: the 短信回执 service.

Nothing is sent twice: every SMS is an outbox row with an idempotency key derived from the
events it reports (``present:<callee>:<first missed call id>``, ``callback:<request id>``...),
inserted with ON CONFLICT DO NOTHING, and the events are marked notified in the same
transaction under row locks. The texts come from ``conf/templates/<language>.toml``; numbers
are shown in national form for domestic numbers (:data:`scp.codecs.numbers.CHINA`). An ad
(``ad_rule``) is appended only if the SMS stays within ``[notify].ad_segment_budget`` segments
(:func:`scp.codecs.sms.segment_count`); the core text is never cut.

The decisions (grouping, texts, ad choice, :func:`scp.service.notifications.plan_missed_call`)
are the pure functions of :mod:`scp.service.notifications` (ARCHITECTURE §2: ``service/``
decides, it never does I/O); the coroutines here load what they need through
:mod:`scp.state.notify_store`, call them and write the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from scp.service.notifications import (
    PRESENCE_SOURCES,
    MissedCallPlan,
    MissedCallState,
    Queued,
    Recipient,
    Templates,
    append_ad,
    digest_text,
    display_number,
    group_by_caller,
    local_day,
    missed_call_texts,
    notify_tz,
    notify_window,
    plan_missed_call,
    render,
    templates_for,
    time_values,
)
from scp.service.provisioning import AdRule
from scp.state import notify_store as store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "MissedCall",
    "Queued",
    "on_absent",
    "on_missed_call",
    "on_present",
    "on_subscriber_receipt",
    "record_missed_call",
    "record_missed_calls",
    "with_ad",
]


async def with_ad(
    conn: asyncpg.Connection,
    cfg: Config,
    core: str,
    t: Templates,
    *,
    at: dt.datetime,
    caller: str | None,
    user_group: str,
) -> str:
    """``core`` with the ad that fits (:func:`append_ad` over the rules valid ``at``)."""
    if cfg.notify.ad_segment_budget <= 0:
        return core
    ads = await store.active_ads(conn, at)
    return append_ad(
        core,
        ads,
        budget=cfg.notify.ad_segment_budget,
        separator=t["ad_separator"],
        at=at,
        tz=notify_tz(cfg),
        caller=caller,
        user_group=user_group,
    )


async def on_missed_call(
    conn: asyncpg.Connection,
    *,
    missed_call_id: int,
    caller: str | None,
    callee: str,
    reason: str,
    at: dt.datetime,
    cfg: Config,
) -> Queued:
    """React to a missed call just recorded in this transaction (see the module docstring).

    The decision is :func:`plan_missed_call`'s, the same one :func:`record_missed_call` takes;
    here the state is read as it goes: first the recipient (enough to suppress or to ask the
    HLR), then, under the caller's lock, the open busy SMS, its count and the ads.
    """
    rcpt = await store.load_recipient(conn, callee, local_day(at, cfg))
    if rcpt is None:
        return Queued()
    first = plan_missed_call(
        _state(rcpt), caller=caller, callee=callee, reason=reason, at=at, cfg=cfg
    )
    if first.outcome != "queued":
        asked = False
        if first.hlr:
            asked = await store.request_hlr_alert(
                conn, callee, at, dt.timedelta(seconds=cfg.notify.alert_refresh)
            )
        if first.outcome == "suppressed":
            await store.mark_missed_calls(conn, [missed_call_id], at, "suppressed")
        return Queued(hlr_alert=asked)
    # busy / no-answer: the callee's phone is on, it can be told now.
    prefix = f"{'busy' if reason == 'busy' else 'missed'}:{callee}:{caller or '-'}:"
    open_row = await store.lock_open_busy_sms(conn, prefix, callee)
    rekey: str | None = None
    sms_id: int | None = None
    count, first_at = 0, None
    if open_row is not None:
        sms_id, key = open_row
        first_id = int(key.rsplit(":", 1)[1])
        if missed_call_id < first_id:
            # This call was inserted before the one that opened the window but reached the lock
            # after it (ids follow inserts, not commits): the window now starts here, or the
            # count below and every later one would miss this call.
            first_id = missed_call_id
            rekey = prefix + str(missed_call_id)
        n, first_at = await store.calls_since(conn, callee, caller, first_id, reason)
        count = n - 1  # this call is already in; the plan adds it
    ads = tuple(await store.active_ads(conn, at)) if cfg.notify.ad_segment_budget > 0 else ()
    plan = plan_missed_call(
        _state(rcpt, open_id=sms_id, count=count, first_at=first_at, ads=ads),
        caller=caller,
        callee=callee,
        reason=reason,
        at=at,
        cfg=cfg,
    )
    assert plan.text is not None  # queued plans always carry their text
    if sms_id is not None:
        await store.update_sms_text(conn, sms_id, plan.text, key=rekey)
    else:
        sms_id = await store.enqueue_sms(
            conn,
            key=prefix + str(missed_call_id),
            destination=callee,
            text=plan.text,
            not_before=plan.not_before or at,
            expires_at=plan.expires_at,
        )
    await store.mark_missed_calls(conn, [missed_call_id], at, "queued")
    return Queued((sms_id,) if sms_id is not None else ())


def _state(
    rcpt: Recipient,
    *,
    open_id: int | None = None,
    count: int = 0,
    first_at: dt.datetime | None = None,
    ads: tuple[AdRule, ...] = (),
) -> MissedCallState:
    """A decision state read from the database as it goes (no forecast fields)."""
    return MissedCallState(
        recipient=rcpt,
        rcpt=None,
        open_id=open_id,
        open_key=None,
        open_due=None,
        count=count,
        first_at=first_at,
        ads=ads,
        ads_digest=None,
    )


async def record_missed_call(
    conn: asyncpg.Connection,
    *,
    caller: str | None,
    callee: str,
    reason: str,
    cause: int | None,
    call_ref: str | None,
    at: dt.datetime,
    cfg: Config,
    attempts: int = 3,
) -> int | None:
    """Record a missed call and do :func:`on_missed_call`'s work in one statement.

    The decision is taken on a forecast of the state (``notify_store.forecast_missed_call``)
    and ``mcn_record_missed_call`` (migration 0030) writes it only if, under the same locks,
    the state is that forecast; if not, it returns the state it found and the decision is
    taken again on it: usually one round trip, two when the forecast was wrong. Returns the
    missed call's id, or None after ``attempts`` tries without a write (nothing written: the
    caller runs the transactional path, insert + :func:`on_missed_call`).
    """
    call = MissedCall(caller, callee, reason, cause, call_ref, at)
    return (await record_missed_calls(conn, [call], cfg=cfg, attempts=attempts))[0]


@dataclass(frozen=True, slots=True)
class MissedCall:
    """A missed call to record (:func:`record_missed_calls`)."""

    caller: str | None
    callee: str
    reason: str
    cause: int | None
    call_ref: str | None
    at: dt.datetime


async def record_missed_calls(
    conn: asyncpg.Connection,
    calls: Sequence[MissedCall],
    *,
    cfg: Config,
    attempts: int = 3,
) -> list[int | None]:
    """:func:`record_missed_call` for several calls at once: each round is ONE statement and
    one commit for the calls it carries (``notify_store.record_missed_calls``, migration
    0280). Each call keeps its own decision: one whose forecast was wrong is decided again on
    the state it found and goes in the next round, the others are written. Calls that share
    a busy SMS (same callee, caller and reason) go one per round: the later one's forecast is
    what the earlier one leaves, known only once it is written. The id of each missed call, or
    None for one the statement declined ``attempts`` times (the caller runs the transactional
    path for it). An error raises and writes none of the round's calls.
    """
    want_ads = cfg.notify.ad_segment_budget > 0
    refresh = dt.timedelta(seconds=cfg.notify.alert_refresh)
    ids: list[int | None] = [None] * len(calls)
    # per call still to write: its index, key prefix, day, state to decide on, rounds sent
    todo: list[tuple[int, str | None, dt.date, MissedCallState | None, int]] = []
    for k, c in enumerate(calls):
        prefix: str | None = None
        if c.reason != "not-reachable":
            prefix = f"{'busy' if c.reason == 'busy' else 'missed'}:{c.callee}:{c.caller or '-'}:"
        st = store.forecast_missed_call(callee=c.callee, prefix=prefix, at=c.at, ads=want_ads)
        todo.append((k, prefix, local_day(c.at, cfg), st, 0))
    while todo:
        sent: list[tuple[int, str | None, dt.date, MissedCallState | None, int]] = []
        later: list[tuple[int, str | None, dt.date, MissedCallState | None, int]] = []
        prefixes: set[str] = set()
        for item in todo:
            if item[1] is not None and item[1] in prefixes:
                later.append(item)
            else:
                sent.append(item)
                if item[1] is not None:
                    prefixes.add(item[1])
        decisions = []
        for k, prefix, day, st, _ in sent:
            c = calls[k]
            plan = (
                plan_missed_call(
                    st, caller=c.caller, callee=c.callee, reason=c.reason, at=c.at, cfg=cfg
                )
                if st is not None
                else MissedCallPlan()
            )
            decisions.append(
                store.MissedCallDecision(
                    c.caller,
                    c.callee,
                    c.at,
                    c.reason,
                    c.cause,
                    c.call_ref,
                    day,
                    st,
                    plan.hlr,
                    refresh,
                    prefix,
                    plan.count,
                    plan.first_at,
                    plan.text,
                    plan.not_before,
                    plan.expires_at,
                    plan.outcome,
                    want_ads,
                )
            )
        writes = await store.record_missed_calls(conn, decisions)
        todo = []
        for (k, prefix, day, _, n), w in zip(sent, writes, strict=True):
            if w.done:
                ids[k] = w.missed_call_id
            elif n + 1 < attempts:
                todo.append((k, prefix, day, w.state, n + 1))
        for k, prefix, day, st, n in later:
            # what the earlier call of its SMS left is the forecast now
            c = calls[k]
            again = store.forecast_missed_call(
                callee=c.callee, prefix=prefix, at=c.at, ads=want_ads
            )
            todo.append((k, prefix, day, again if again is not None else st, n))
        todo.sort()  # the calls' order
    return ids


async def on_present(
    conn: asyncpg.Connection,
    *,
    msisdn: str,
    source: str,
    at: dt.datetime,
    cfg: Config,
    detail: str | None = None,
) -> Queued:
    """The subscriber is reachable: record it and queue every notification that waited."""
    if source not in PRESENCE_SOURCES:
        raise ValueError(f"presence source {source!r}")
    rcpt = await store.load_recipient(conn, msisdn, local_day(at, cfg))
    if rcpt is None:
        return Queued()
    await store.set_presence(conn, msisdn, True, at, source, detail)
    await store.clear_hlr_alert(conn, msisdn)
    tz, window = notify_tz(cfg), notify_window(cfg)
    t = templates_for(cfg, rcpt.language)
    ids: list[int] = []

    pending = await store.pending_missed_calls(conn, msisdn)
    fresh = [c for c in pending if c.occurred_at >= at - window]
    await store.mark_missed_calls(
        conn, [c.id for c in pending if c.occurred_at < at - window], at, "expired"
    )
    if fresh and ("missed-call" not in rcpt.services or rcpt.notify_mode == "none"):
        await store.mark_missed_calls(conn, [c.id for c in fresh], at, "suppressed")
        fresh = []
    if fresh:
        groups = group_by_caller(fresh)
        if rcpt.notify_mode == "digest":
            caller = groups[0].caller if len(groups) == 1 else None
            batches = [
                (
                    f"digest:{msisdn}:{min(c.id for c in fresh)}",
                    digest_text(groups, t, tz),
                    caller,
                    max(g.last_at for g in groups),
                )
            ]
        else:
            batches = [
                (f"present:{msisdn}:{g.ids[0]}", text, g.caller, g.last_at)
                for g, text in zip(groups, missed_call_texts(groups, t, tz), strict=True)
            ]
        for key, core, caller, last_at in batches:
            text = await with_ad(
                conn, cfg, core, t, at=at, caller=caller, user_group=rcpt.user_group
            )
            sms_id = await store.enqueue_sms(
                conn,
                key=key,
                destination=msisdn,
                text=text,
                not_before=at,
                expires_at=last_at + window,
            )
            if sms_id is not None:
                ids.append(sms_id)
        await store.mark_missed_calls(conn, [c.id for c in fresh], at, "queued")

    if cfg.notify.callback_sms:
        callbacks = await store.pending_callbacks(conn, msisdn)
        due = [
            cb
            for cb in callbacks
            if (cb.expires_at is None or cb.expires_at > at) and cb.requested_at >= at - window
        ]
        for cb in due:
            caller_rcpt = await store.load_recipient(conn, cb.caller, local_day(at, cfg))
            ct = templates_for(cfg, caller_rcpt.language if caller_rcpt else None)
            core = render(ct["callback"], callee=display_number(msisdn, ct))
            text = await with_ad(
                conn, cfg, core, ct, at=at, caller=cb.caller, user_group=rcpt.user_group
            )
            sms_id = await store.enqueue_sms(
                conn,
                key=f"callback:{cb.id}",
                destination=cb.caller,
                text=text,
                not_before=at,
                expires_at=at + window,
            )
            if sms_id is not None:
                ids.append(sms_id)
        await store.mark_callbacks(conn, [cb.id for cb in due], at)
    return Queued(tuple(ids))


async def on_absent(
    conn: asyncpg.Connection,
    *,
    msisdn: str,
    source: str,
    at: dt.datetime,
    detail: str | None = None,
) -> None:
    """Evidence the subscriber left (IMSI detach in NoteMM-Event): recorded, nothing sent."""
    if await conn.fetchval("SELECT 1 FROM subscriber WHERE msisdn = $1", msisdn):
        await store.set_presence(conn, msisdn, False, at, source, detail)


async def on_subscriber_receipt(
    conn: asyncpg.Connection,
    *,
    owner: str,
    destination: str,
    message_id: str,
    at: dt.datetime,
    cfg: Config,
) -> Queued:
    """短信回执: the SMSC forwarded the receipt of ``owner``'s own SMS to ``destination``."""
    rcpt = await store.load_recipient(conn, owner, local_day(at, cfg))
    if rcpt is None or "delivery-receipt" not in rcpt.services:
        return Queued()
    t = templates_for(cfg, rcpt.language)
    core = render(
        t["receipt"], dst=display_number(destination, t), **time_values(at, notify_tz(cfg))
    )
    text = await with_ad(conn, cfg, core, t, at=at, caller=None, user_group=rcpt.user_group)
    sms_id = await store.enqueue_sms(
        conn,
        key=f"receipt:{owner}:{message_id}",
        destination=owner,
        text=text,
        not_before=at,
        expires_at=at + notify_window(cfg),
    )
    return Queued((sms_id,) if sms_id is not None else ())
