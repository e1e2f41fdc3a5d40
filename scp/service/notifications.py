"""Notification decisions (issue 6): what SMS a missed call, a presence event or a receipt causes.

Flows (ARCHITECTURE §4 "Subscriber present"):

* :func:`on_missed_call` runs in the call handler's transaction right after it records the
  missed call. ``busy`` and ``no-answer``: the callee is reachable, so the SMS is queued at
  once, but held for ``[notify].busy_window`` seconds (the outbox row's ``next_attempt_at``)
  during which further attempts from the same caller only raise the count in its text: three
  busy attempts within a minute make one SMS saying 3. ``not-reachable``: the call waits for
  presence, and the HLR is asked to alert us (``hlr_alert`` row, consumed by
  :mod:`scp.mapuser`: MAP SendRoutingInfoForSM then ReportSM-DeliveryStatus, TS 29.002 §12.3,
  §12.4, TS 23.040 §10.2).
* :func:`record_missed_call` is the call path's form of the same: the missed call and
  :func:`on_missed_call`'s decision written by one statement (migration 0030), the decision
  taken in Python on a forecast of the state that the statement checks under the same locks;
  a wrong forecast costs one more round trip, never a different row.
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

The decisions (grouping, texts, ad choice) are pure functions of their inputs; the ``on_*``
coroutines load what they need through :mod:`scp.state.notify_store` and write the result.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from scp.codecs.numbers import CHINA
from scp.codecs.sms import segment_count
from scp.service.provisioning import AdRule
from scp.state import notify_store as store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "CallerGroup",
    "Templates",
    "TemplateError",
    "ad_matches",
    "append_ad",
    "display_number",
    "digest_text",
    "group_by_caller",
    "load_templates",
    "missed_call_texts",
    "on_missed_call",
    "on_present",
    "on_subscriber_receipt",
    "record_missed_call",
    "render",
]

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "conf" / "templates"
REQUIRED_KEYS = (
    "missed_call", "digest", "digest_item", "digest_separator", "busy", "callback", "receipt",
    "unknown_caller", "ad_separator", "cmd_cx", "cmd_cx_item", "cmd_cx_separator",
    "cmd_cx_none", "cmd_kt", "cmd_qx", "cmd_qx_none", "cmd_hmd", "cmd_qhmd", "cmd_qhmd_none",
    "cmd_bad_number", "cmd_not_subscriber", "cmd_help",
)
PRESENCE_SOURCES = ("alert-sc", "note-mm-event", "delivery-receipt", "call", "operator")


class TemplateError(ValueError):
    """A template file is missing, incomplete, or a text uses an unknown variable."""


# ---------------------------------------------------------------------------------------------
# Templates and rendering (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    """The texts of one language."""

    language: str
    texts: Mapping[str, str]

    def __getitem__(self, key: str) -> str:
        return self.texts[key]


@functools.lru_cache(maxsize=16)
def load_templates(language: str, directory: str = "") -> Templates:
    """``<directory>/<language>.toml`` (default ``conf/templates``), checked for every key."""
    path = Path(directory or TEMPLATES_DIR) / f"{language}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TemplateError(f"{path}: {e}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(data.get(k), str)]
    if missing:
        raise TemplateError(f"{path}: missing {', '.join(missing)}")
    return Templates(language, dict(data))


def templates_for(cfg: Config, language: str | None) -> Templates:
    lang = language if language in ("zh", "en") else cfg.notify.language
    return load_templates(lang, cfg.notify.templates_dir)


def render(template: str, **values: object) -> str:
    """``template`` with its {placeholders} filled; an unknown one is a TemplateError."""
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as e:
        raise TemplateError(f"template {template!r}: {e!r}") from None


def display_number(e164: str | None, t: Templates) -> str:
    """How the recipient dials the number: national form at home, 00... abroad."""
    if not e164:
        return t["unknown_caller"]
    return CHINA.to_national(e164)


def time_values(at: dt.datetime, tz: zoneinfo.ZoneInfo) -> dict[str, str]:
    """{M} {D} {H} {MI} of ``at`` in local time (no leading zeros, minutes two digits)."""
    local = at.astimezone(tz)
    return {"M": str(local.month), "D": str(local.day), "H": str(local.hour),
            "MI": f"{local.minute:02d}"}


@dataclass(frozen=True, slots=True)
class CallerGroup:
    """The missed calls of one caller: what one per-caller SMS reports."""

    caller: str | None
    ids: tuple[int, ...]
    first_at: dt.datetime
    last_at: dt.datetime

    @property
    def count(self) -> int:
        return len(self.ids)


def group_by_caller(calls: Iterable[store.PendingCall]) -> list[CallerGroup]:
    """Calls grouped per caller, groups ordered by their first call."""
    groups: dict[str | None, list[store.PendingCall]] = {}
    for c in sorted(calls, key=lambda c: (c.occurred_at, c.id)):
        groups.setdefault(c.caller, []).append(c)
    return [CallerGroup(caller, tuple(c.id for c in cs), cs[0].occurred_at, cs[-1].occurred_at)
            for caller, cs in groups.items()]


def missed_call_texts(groups: Sequence[CallerGroup], t: Templates, tz: zoneinfo.ZoneInfo
                      ) -> list[str]:
    """One text per caller (``missed_call`` template, time of the caller's latest call)."""
    return [render(t["missed_call"], caller=display_number(g.caller, t), count=g.count,
                   **time_values(g.last_at, tz)) for g in groups]


def digest_text(groups: Sequence[CallerGroup], t: Templates, tz: zoneinfo.ZoneInfo) -> str:
    """One summary text for all callers (``digest`` with ``digest_item`` per caller)."""
    items = t["digest_separator"].join(
        render(t["digest_item"], caller=display_number(g.caller, t), count=g.count,
               **time_values(g.last_at, tz)) for g in groups)
    return render(t["digest"], total=len(groups), calls=sum(g.count for g in groups),
                  items=items)


def busy_text(caller: str | None, count: int, first_at: dt.datetime, t: Templates,
              tz: zoneinfo.ZoneInfo) -> str:
    return render(t["busy"], caller=display_number(caller, t), count=count,
                  **time_values(first_at, tz))


# -- ads ---------------------------------------------------------------------------------------


def _in_window(rule: AdRule, local: dt.time) -> bool:
    start, end = rule.window_start, rule.window_end
    if end is None:
        return local >= start
    if end >= start:
        return start <= local < end
    return local >= start or local < end  # spans midnight


def ad_matches(rule: AdRule, *, at: dt.datetime, tz: zoneinfo.ZoneInfo, caller: str | None,
               user_group: str) -> bool:
    """Whether ``rule`` applies to an SMS at ``at`` about ``caller`` for a callee in the group."""
    if at < rule.valid_from or (rule.valid_until is not None and at >= rule.valid_until):
        return False
    if not _in_window(rule, at.astimezone(tz).time().replace(tzinfo=None)):
        return False
    if rule.user_groups and user_group not in rule.user_groups:
        return False
    if rule.caller_prefixes:
        if not caller:
            return False
        national = CHINA.to_national(caller)
        if not any(caller.startswith(p) or national.startswith(p) for p in rule.caller_prefixes):
            return False
    return True


def append_ad(core: str, ads: Sequence[AdRule], *, budget: int, separator: str, at: dt.datetime,
              tz: zoneinfo.ZoneInfo, caller: str | None, user_group: str) -> str:
    """``core`` plus the highest-priority matching ad that keeps it within ``budget`` segments.

    A higher-priority ad that would not fit is skipped for a shorter one; with no room at all
    (or budget 0) the core text goes alone, never cut.
    """
    if budget <= 0 or segment_count(core) > budget:
        return core
    for rule in sorted(ads, key=lambda r: (-r.priority, r.id)):
        if not ad_matches(rule, at=at, tz=tz, caller=caller, user_group=user_group):
            continue
        candidate = core + separator + rule.text
        if segment_count(candidate) <= budget:
            return candidate
    return core


# ---------------------------------------------------------------------------------------------
# Orchestration over the store (same transaction as the event)
# ---------------------------------------------------------------------------------------------


def _tz(cfg: Config) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(cfg.notify.timezone)


def _window(cfg: Config) -> dt.timedelta:
    return dt.timedelta(hours=cfg.service.window_hours)


async def _with_ad(conn: asyncpg.Connection, cfg: Config, core: str, t: Templates, *,
                   at: dt.datetime, caller: str | None, user_group: str) -> str:
    if cfg.notify.ad_segment_budget <= 0:
        return core
    ads = await store.active_ads(conn, at)
    return append_ad(core, ads, budget=cfg.notify.ad_segment_budget,
                     separator=t["ad_separator"], at=at, tz=_tz(cfg), caller=caller,
                     user_group=user_group)


@dataclass(frozen=True, slots=True)
class Queued:
    """What an event caused: SMS ids queued (or updated) and whether the HLR will be asked."""

    sms_ids: tuple[int, ...] = ()
    hlr_alert: bool = False


async def on_missed_call(conn: asyncpg.Connection, *, missed_call_id: int, caller: str | None,
                         callee: str, reason: str, at: dt.datetime, cfg: Config) -> Queued:
    """React to a missed call just recorded in this transaction (see the module docstring)."""
    rcpt = await store.load_recipient(conn, callee, at.astimezone(_tz(cfg)).date())
    if rcpt is None:
        return Queued()
    if reason == "not-reachable":
        asked = False
        if cfg.notify.alert_via_hlr:
            asked = await store.request_hlr_alert(
                conn, callee, at, dt.timedelta(seconds=cfg.notify.alert_refresh))
        if "missed-call" not in rcpt.services or rcpt.notify_mode == "none":
            await store.mark_missed_calls(conn, [missed_call_id], at, "suppressed")
        return Queued(hlr_alert=asked)
    # busy / no-answer: the callee's phone is on, it can be told now.
    wanted = {"busy": ("busy", "missed-call")}.get(reason, ("missed-call",))
    if rcpt.notify_mode == "none" or not any(s in rcpt.services for s in wanted):
        await store.mark_missed_calls(conn, [missed_call_id], at, "suppressed")
        return Queued()
    t = templates_for(cfg, rcpt.language)
    tmpl_key = "busy" if reason == "busy" else "missed"
    prefix = f"{tmpl_key}:{callee}:{caller or '-'}:"
    open_row = await store.lock_open_busy_sms(conn, prefix, callee)
    if open_row is not None:
        sms_id, key = open_row
        first_id = int(key.rsplit(":", 1)[1])
    else:
        sms_id, first_id = None, missed_call_id
    count, first_at = await store.calls_since(conn, callee, caller, first_id, reason)
    first_at = first_at or at
    if reason == "busy":
        core = busy_text(caller, count, first_at, t, _tz(cfg))
    else:
        core = render(t["missed_call"], caller=display_number(caller, t), count=count,
                      **time_values(at, _tz(cfg)))
    text = await _with_ad(conn, cfg, core, t, at=at, caller=caller, user_group=rcpt.user_group)
    if sms_id is not None:
        await store.update_sms_text(conn, sms_id, text)
    else:
        sms_id = await store.enqueue_sms(
            conn, key=prefix + str(missed_call_id), destination=callee, text=text,
            not_before=at + dt.timedelta(seconds=cfg.notify.busy_window),
            expires_at=at + _window(cfg))
    await store.mark_missed_calls(conn, [missed_call_id], at, "queued")
    return Queued((sms_id,) if sms_id is not None else ())


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :func:`on_missed_call` would write on a given state (see :func:`_plan`)."""

    hlr: bool = False
    outcome: str | None = None
    text: str | None = None
    count: int = 0
    first_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    expires_at: dt.datetime | None = None


def _plan(st: store.MissedCallState, *, caller: str | None, callee: str, reason: str,
          at: dt.datetime, cfg: Config) -> _Plan:
    """:func:`on_missed_call`'s decision, taken on ``st`` instead of reading as it goes."""
    rcpt = st.recipient
    if rcpt is None:
        return _Plan()  # not a subscriber: nothing but the call
    if reason == "not-reachable":
        off = "missed-call" not in rcpt.services or rcpt.notify_mode == "none"
        return _Plan(hlr=cfg.notify.alert_via_hlr, outcome="suppressed" if off else None)
    wanted = {"busy": ("busy", "missed-call")}.get(reason, ("missed-call",))
    if rcpt.notify_mode == "none" or not any(s in rcpt.services for s in wanted):
        return _Plan(outcome="suppressed")
    tz = _tz(cfg)
    t = templates_for(cfg, rcpt.language)
    # calls_since once this call is in: the open SMS's calls plus this one
    if st.open_id is not None:
        count = st.count + 1
        first_at = min(st.first_at, at) if st.first_at is not None else at
    else:
        count, first_at = 1, at
    if reason == "busy":
        core = busy_text(caller, count, first_at, t, tz)
    else:
        core = render(t["missed_call"], caller=display_number(caller, t), count=count,
                      **time_values(at, tz))
    budget = cfg.notify.ad_segment_budget
    text = core if budget <= 0 else append_ad(
        core, st.ads, budget=budget, separator=t["ad_separator"], at=at, tz=tz, caller=caller,
        user_group=rcpt.user_group)
    return _Plan(False, "queued", text, count, first_at,
                 at + dt.timedelta(seconds=cfg.notify.busy_window), at + _window(cfg))


async def record_missed_call(conn: asyncpg.Connection, *, caller: str | None, callee: str,
                             reason: str, cause: int | None, call_ref: str | None,
                             at: dt.datetime, cfg: Config, attempts: int = 3) -> int | None:
    """Record a missed call and do :func:`on_missed_call`'s work in one statement.

    The decision is taken on a forecast of the state (``notify_store.forecast_missed_call``)
    and ``mcn_record_missed_call`` (migration 0030) writes it only if, under the same locks,
    the state is that forecast; if not, it returns the state it found and the decision is
    taken again on it: usually one round trip, two when the forecast was wrong. Returns the
    missed call's id, or None after ``attempts`` tries without a write (nothing written: the
    caller runs the transactional path, insert + :func:`on_missed_call`).
    """
    day = at.astimezone(_tz(cfg)).date()
    prefix: str | None = None
    if reason != "not-reachable":
        prefix = f"{'busy' if reason == 'busy' else 'missed'}:{callee}:{caller or '-'}:"
    want_ads = cfg.notify.ad_segment_budget > 0
    st = store.forecast_missed_call(callee=callee, prefix=prefix, at=at, ads=want_ads)
    refresh = dt.timedelta(seconds=cfg.notify.alert_refresh)
    for _ in range(attempts):
        plan = (_plan(st, caller=caller, callee=callee, reason=reason, at=at, cfg=cfg)
                if st is not None else _Plan())
        w = await store.record_missed_call(
            conn, caller=caller, callee=callee, at=at, reason=reason, cause=cause,
            call_ref=call_ref, day=day, state=st, hlr=plan.hlr, refresh=refresh, prefix=prefix,
            count=plan.count, first_at=plan.first_at, text=plan.text,
            not_before=plan.not_before, expires_at=plan.expires_at, outcome=plan.outcome,
            want_ads=want_ads)
        if w.done:
            return w.missed_call_id
        st = w.state
    return None


async def on_present(conn: asyncpg.Connection, *, msisdn: str, source: str, at: dt.datetime,
                     cfg: Config, detail: str | None = None) -> Queued:
    """The subscriber is reachable: record it and queue every notification that waited."""
    if source not in PRESENCE_SOURCES:
        raise ValueError(f"presence source {source!r}")
    rcpt = await store.load_recipient(conn, msisdn, at.astimezone(_tz(cfg)).date())
    if rcpt is None:
        return Queued()
    await store.set_presence(conn, msisdn, True, at, source, detail)
    await store.clear_hlr_alert(conn, msisdn)
    tz, window = _tz(cfg), _window(cfg)
    t = templates_for(cfg, rcpt.language)
    ids: list[int] = []

    pending = await store.pending_missed_calls(conn, msisdn)
    fresh = [c for c in pending if c.occurred_at >= at - window]
    await store.mark_missed_calls(conn, [c.id for c in pending if c.occurred_at < at - window],
                                  at, "expired")
    if fresh and ("missed-call" not in rcpt.services or rcpt.notify_mode == "none"):
        await store.mark_missed_calls(conn, [c.id for c in fresh], at, "suppressed")
        fresh = []
    if fresh:
        groups = group_by_caller(fresh)
        if rcpt.notify_mode == "digest":
            caller = groups[0].caller if len(groups) == 1 else None
            batches = [(f"digest:{msisdn}:{min(c.id for c in fresh)}", digest_text(groups, t, tz),
                        caller, max(g.last_at for g in groups))]
        else:
            batches = [(f"present:{msisdn}:{g.ids[0]}", text, g.caller, g.last_at)
                       for g, text in zip(groups, missed_call_texts(groups, t, tz), strict=True)]
        for key, core, caller, last_at in batches:
            text = await _with_ad(conn, cfg, core, t, at=at, caller=caller,
                                  user_group=rcpt.user_group)
            sms_id = await store.enqueue_sms(conn, key=key, destination=msisdn, text=text,
                                             expires_at=last_at + window)
            if sms_id is not None:
                ids.append(sms_id)
        await store.mark_missed_calls(conn, [c.id for c in fresh], at, "queued")

    if cfg.notify.callback_sms:
        callbacks = await store.pending_callbacks(conn, msisdn)
        due = [cb for cb in callbacks if (cb.expires_at is None or cb.expires_at > at)
               and cb.requested_at >= at - window]
        for cb in due:
            caller_rcpt = await store.load_recipient(conn, cb.caller, at.date())
            ct = templates_for(cfg, caller_rcpt.language if caller_rcpt else None)
            core = render(ct["callback"], callee=display_number(msisdn, ct))
            text = await _with_ad(conn, cfg, core, ct, at=at, caller=cb.caller,
                                  user_group=rcpt.user_group)
            sms_id = await store.enqueue_sms(conn, key=f"callback:{cb.id}", destination=cb.caller,
                                             text=text, expires_at=at + window)
            if sms_id is not None:
                ids.append(sms_id)
        await store.mark_callbacks(conn, [cb.id for cb in due], at)
    return Queued(tuple(ids))


async def on_absent(conn: asyncpg.Connection, *, msisdn: str, source: str, at: dt.datetime,
                    detail: str | None = None) -> None:
    """Evidence the subscriber left (IMSI detach in NoteMM-Event): recorded, nothing sent."""
    if await conn.fetchval("SELECT 1 FROM subscriber WHERE msisdn = $1", msisdn):
        await store.set_presence(conn, msisdn, False, at, source, detail)


async def on_subscriber_receipt(conn: asyncpg.Connection, *, owner: str, destination: str,
                                message_id: str, at: dt.datetime, cfg: Config) -> Queued:
    """短信回执: the SMSC forwarded the receipt of ``owner``'s own SMS to ``destination``."""
    rcpt = await store.load_recipient(conn, owner, at.astimezone(_tz(cfg)).date())
    if rcpt is None or "delivery-receipt" not in rcpt.services:
        return Queued()
    t = templates_for(cfg, rcpt.language)
    core = render(t["receipt"], dst=display_number(destination, t), **time_values(at, _tz(cfg)))
    text = await _with_ad(conn, cfg, core, t, at=at, caller=None, user_group=rcpt.user_group)
    sms_id = await store.enqueue_sms(conn, key=f"receipt:{owner}:{message_id}", destination=owner,
                                     text=text, expires_at=at + _window(cfg))
    return Queued((sms_id,) if sms_id is not None else ())
