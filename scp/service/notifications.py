"""Notification decisions: what SMS a missed call, a presence event or a receipt causes.

The pure part (ARCHITECTURE §2: ``service/`` decides, it never does I/O): templates and their
rendering, grouping of missed calls per caller, the texts, the choice of an ad, and
:func:`plan_missed_call`, the decision a missed call takes on a known state. The coroutines that
load the state, take these decisions and write their result in the event's transaction
(``on_missed_call``, ``record_missed_call``, ``on_present``, ``on_absent``,
``on_subscriber_receipt``) are :mod:`scp.flows.notify`, which describes the flows
(ARCHITECTURE §4 "Subscriber present").

The texts come from ``conf/templates/<language>.toml``; numbers are shown in national form for
domestic numbers (:data:`scp.codecs.numbers.CHINA`). An ad (``ad_rule``) is appended only if
the SMS stays within ``[notify].ad_segment_budget`` segments
(:func:`scp.codecs.sms.segment_count`); the core text is never cut.
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

from scp.codecs.numbers import CHINA
from scp.codecs.sms import segment_count
from scp.service.provisioning import AdRule

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "CallerGroup",
    "MissedCallPlan",
    "MissedCallState",
    "PendingCall",
    "PendingCallback",
    "Recipient",
    "Queued",
    "Templates",
    "TemplateError",
    "ad_matches",
    "append_ad",
    "busy_text",
    "display_number",
    "digest_text",
    "group_by_caller",
    "load_templates",
    "local_day",
    "missed_call_texts",
    "notify_tz",
    "notify_window",
    "plan_missed_call",
    "render",
    "service_name",
    "templates_for",
    "time_values",
]

# -- what the decisions read (loaded by scp.state.notify_store) -----------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    """A subscriber as the notification decisions need it."""

    msisdn: str
    language: str
    user_group: str
    notify_mode: str
    services: frozenset[str]


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A missed call not yet notified."""

    id: int
    caller: str | None
    occurred_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """A caller waiting to hear that the callee is reachable (IVR digit 1)."""

    id: int
    caller: str
    requested_at: dt.datetime
    expires_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MissedCallState:
    """What the missed-call decision reads: a forecast, or what the database held."""

    recipient: Recipient | None
    rcpt: str | None  # the recipient row's text form: the write checks it
    open_id: int | None  # open busy / no-answer SMS of this caller (lock_open_busy_sms)
    open_key: str | None
    open_due: dt.datetime | None  # its next_attempt_at: a sender claims it from then on
    count: int  # calls the open SMS already counts (calls_since), this one not included
    first_at: dt.datetime | None
    ads: tuple[AdRule, ...]
    ads_digest: str | None


TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "conf" / "templates"
REQUIRED_KEYS = (
    "missed_call",
    "digest",
    "digest_item",
    "digest_separator",
    "busy",
    "callback",
    "receipt",
    "unknown_caller",
    "ad_separator",
    "cmd_cx",
    "cmd_cx_item",
    "cmd_cx_separator",
    "cmd_cx_none",
    "cmd_kt",
    "cmd_qx",
    "cmd_qx_none",
    "cmd_hmd",
    "cmd_qhmd",
    "cmd_qhmd_none",
    "cmd_bad_number",
    "cmd_not_subscriber",
    "cmd_help",
    "voicemail",
    "cmd_ly",
    "cmd_ly_none",
    "cmd_kt_service",
    "cmd_qx_service",
    "cmd_qx_service_none",
    "svc_missed_call",
    "svc_busy",
    "svc_delivery_receipt",
    "svc_voicemail",
    "svc_forwarding",
    "web_code",
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


def service_name(service: str, t: Templates) -> str:
    """A service's name in the recipient's language (``svc_<service>`` of the templates)."""
    return t.texts.get("svc_" + service.replace("-", "_"), service)


def display_number(e164: str | None, t: Templates) -> str:
    """How the recipient dials the number: national form at home, 00... abroad."""
    if not e164:
        return t["unknown_caller"]
    return CHINA.to_national(e164)


def time_values(at: dt.datetime, tz: zoneinfo.ZoneInfo) -> dict[str, str]:
    """{M} {D} {H} {MI} of ``at`` in local time (no leading zeros, minutes two digits)."""
    local = at.astimezone(tz)
    return {
        "M": str(local.month),
        "D": str(local.day),
        "H": str(local.hour),
        "MI": f"{local.minute:02d}",
    }


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


def group_by_caller(calls: Iterable[PendingCall]) -> list[CallerGroup]:
    """Calls grouped per caller, groups ordered by their first call."""
    groups: dict[str | None, list[PendingCall]] = {}
    for c in sorted(calls, key=lambda c: (c.occurred_at, c.id)):
        groups.setdefault(c.caller, []).append(c)
    return [
        CallerGroup(caller, tuple(c.id for c in cs), cs[0].occurred_at, cs[-1].occurred_at)
        for caller, cs in groups.items()
    ]


def missed_call_texts(
    groups: Sequence[CallerGroup], t: Templates, tz: zoneinfo.ZoneInfo
) -> list[str]:
    """One text per caller (``missed_call`` template, time of the caller's latest call)."""
    return [
        render(
            t["missed_call"],
            caller=display_number(g.caller, t),
            count=g.count,
            **time_values(g.last_at, tz),
        )
        for g in groups
    ]


def digest_text(groups: Sequence[CallerGroup], t: Templates, tz: zoneinfo.ZoneInfo) -> str:
    """One summary text for all callers (``digest`` with ``digest_item`` per caller)."""
    items = t["digest_separator"].join(
        render(
            t["digest_item"],
            caller=display_number(g.caller, t),
            count=g.count,
            **time_values(g.last_at, tz),
        )
        for g in groups
    )
    return render(t["digest"], total=len(groups), calls=sum(g.count for g in groups), items=items)


def busy_text(
    caller: str | None, count: int, first_at: dt.datetime, t: Templates, tz: zoneinfo.ZoneInfo
) -> str:
    return render(
        t["busy"], caller=display_number(caller, t), count=count, **time_values(first_at, tz)
    )


# -- ads ---------------------------------------------------------------------------------------


def _in_window(rule: AdRule, local: dt.time) -> bool:
    start, end = rule.window_start, rule.window_end
    if end is None:
        return local >= start
    if end >= start:
        return start <= local < end
    return local >= start or local < end  # spans midnight


def ad_matches(
    rule: AdRule, *, at: dt.datetime, tz: zoneinfo.ZoneInfo, caller: str | None, user_group: str
) -> bool:
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


def append_ad(
    core: str,
    ads: Sequence[AdRule],
    *,
    budget: int,
    separator: str,
    at: dt.datetime,
    tz: zoneinfo.ZoneInfo,
    caller: str | None,
    user_group: str,
) -> str:
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
# Settings and the missed-call decision (pure)
# ---------------------------------------------------------------------------------------------


def notify_tz(cfg: Config) -> zoneinfo.ZoneInfo:
    """The time zone of the texts and of "today" (``[notify].timezone``)."""
    return zoneinfo.ZoneInfo(cfg.notify.timezone)


def local_day(at: dt.datetime, cfg: Config) -> dt.date:
    """The network's calendar day at ``at`` (in ``[notify].timezone``, never the machine's):
    the "today" of services in force, tariffs, and the CLI's default dates."""
    return at.astimezone(notify_tz(cfg)).date()


def notify_window(cfg: Config) -> dt.timedelta:
    """How long a missed call stays worth a notification (``[service].window_hours``)."""
    return dt.timedelta(hours=cfg.service.window_hours)


@dataclass(frozen=True, slots=True)
class Queued:
    """What an event caused: SMS ids queued (or updated) and whether the HLR will be asked."""

    sms_ids: tuple[int, ...] = ()
    hlr_alert: bool = False


@dataclass(frozen=True, slots=True)
class MissedCallPlan:
    """What ``on_missed_call`` would write on a given state (see :func:`plan_missed_call`)."""

    hlr: bool = False
    outcome: str | None = None
    text: str | None = None
    count: int = 0
    first_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    expires_at: dt.datetime | None = None


def plan_missed_call(
    st: MissedCallState,
    *,
    caller: str | None,
    callee: str,
    reason: str,
    at: dt.datetime,
    cfg: Config,
) -> MissedCallPlan:
    """:func:`scp.flows.notify.on_missed_call`'s decision, taken on ``st`` instead of
    reading as it goes (``scp.flows.notify.record_missed_call`` writes it)."""
    rcpt = st.recipient
    if rcpt is None:
        return MissedCallPlan()  # not a subscriber: nothing but the call
    if reason == "not-reachable":
        off = "missed-call" not in rcpt.services or rcpt.notify_mode == "none"
        return MissedCallPlan(hlr=cfg.notify.alert_via_hlr, outcome="suppressed" if off else None)
    # busy: 遇忙提示 (product busy); no-answer: 来话提示 (product missed-call). Each product
    # sends its own SMS and nothing of the other's.
    product = "busy" if reason == "busy" else "missed-call"
    if rcpt.notify_mode == "none" or product not in rcpt.services:
        return MissedCallPlan(outcome="suppressed")
    tz = notify_tz(cfg)
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
        core = render(
            t["missed_call"], caller=display_number(caller, t), count=count, **time_values(at, tz)
        )
    budget = cfg.notify.ad_segment_budget
    text = (
        core
        if budget <= 0
        else append_ad(
            core,
            st.ads,
            budget=budget,
            separator=t["ad_separator"],
            at=at,
            tz=tz,
            caller=caller,
            user_group=rcpt.user_group,
        )
    )
    return MissedCallPlan(
        False,
        "queued",
        text,
        count,
        first_at,
        at + dt.timedelta(seconds=cfg.notify.busy_window),
        at + notify_window(cfg),
    )
