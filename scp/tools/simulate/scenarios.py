"""What each simulator scenario is about, and the verdict on a run of it.

Each scenario (:data:`SCENARIOS`) declares what it is about (:data:`EXPECTATIONS`: the
missed-call reason, the caller's menu choice (:data:`MENU_CHOICES`) and what it makes the SCP
send and write, the presence report, the SMS) and :func:`judge` gives the verdict: ok only when
all of it was seen, "not checked" naming what could not be seen from here (the rows with
``--target``; the caller menu in connect mode, which the IVR runs), "contradicted" naming what
went otherwise. The rows are read from the database the SCP writes to (:func:`records_since`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from scp.config import Config
from scp.flows import provisioning as prov
from scp.service.provisioning import Actor, Conflict

__all__ = [
    "SCENARIOS",
    "SCENARIO_DIGITS",
    "EXPECTATIONS",
    "MENU_CHOICES",
    "Expectation",
    "Records",
    "Verdict",
    "judge",
    "provision_for_scenarios",
    "Numbers",
    "CallResult",
]


SCENARIOS: dict[str, str] = {
    # the caller's menu choice runs here in [ivr] mode ctr / etc only: in connect mode the
    # IVR platform runs the menu, and the verdict lists the choice as not exercised
    "busy": "subscriber busy (tBusy, busyCause 17); the caller takes menu choice 1 (ctr/etc)",
    "not-reachable-then-present": "subscriber absent (busyCause 20), caller asks for an SMS "
    "(ctr/etc); then the HLR sends AlertServiceCentre",
    "present-vlr": "subscriber absent, then the VLR reports IMSI attach (NoteMM-Event)",
    "no-answer": "subscriber does not answer (tNoAnswer); caller takes choice 1 (ctr/etc)",
    "menu-sms": "caller menu choice 1: SMS me when reachable",
    "menu-voicemail": "caller menu choice 2: leave a voice message",
    "menu-other-number": "caller menu choice 3: call another number",
    "menu-operator": "caller menu choice 0: operator",
    "selfcare-pin": "the subscriber calls the self-service number and enters the PIN",
}


@dataclass(frozen=True, slots=True)
class Numbers:
    """The numbers a scenario uses (E.164 international digits)."""

    subscriber: str = "8613800138000"
    caller: str = "8613900139000"
    other: str = "8613700137000"
    imsi: str = "460001234567890"
    pin: str = "246813"
    selfcare: str = "12599"
    msc: str = "8613900000"


@dataclass
class CallResult:
    """What one simulated scenario saw: the SCP's operations in order and the outcome."""

    scenario: str
    ok: bool = False
    outcome: str = ""
    received: list[str] = field(default_factory=list)
    first_answer: float | None = None  # s from InitialDP to the SCP's first answer
    duration: float = 0.0
    map_outcome: str | None = None
    verdict: Verdict | None = None  # run_scenario: did what the scenario is about happen

    @property
    def status(self) -> str:
        """ok / not checked / contradicted (a call without a verdict: ok or contradicted)."""
        if self.verdict is not None:
            return self.verdict.status
        return "ok" if self.ok else "contradicted"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "call",
            "scenario": self.scenario,
            "ok": self.status == "ok",
            "verdict": self.status,
            "outcome": self.outcome,
            "received": self.received,
            "duration_ms": round(self.duration * 1000, 3),
        }
        if self.first_answer is not None:
            d["first_answer_ms"] = round(self.first_answer * 1000, 3)
        if self.map_outcome is not None:
            d["map"] = self.map_outcome
        v = self.verdict
        if v is not None:
            d.update(
                checked=list(v.checked),
                contradicted=list(v.missing),
                not_checked=list(v.not_checked),
                not_exercised=list(v.not_exercised),
            )
        return d


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """What one caller-menu digit makes the SCP do (ARCHITECTURE §4): operations, rows, route."""

    what: str
    ops: tuple[str, ...]  # sent by the SCP after the choice, in this order
    records: tuple[str, ...]  # rows written for the call: callback, voicemail, cdr:<service>
    route: str | None  # where the caller is connected: a [ivr] key, "other", or None (release)


MENU_CHOICES: dict[str, MenuChoice] = {
    "1": MenuChoice(
        "SMS when reachable",
        ("playAnnouncement", "releaseCall"),
        # the caller's fee comes with the callback SMS (when submitted), not with the digit
        ("callback",),
        None,
    ),
    "2": MenuChoice(
        "voice message",
        ("disconnectForwardConnection", "connect"),
        ("voicemail",),
        "voicemail_deposit",
    ),
    "3": MenuChoice(
        "another number",
        ("promptAndCollectUserInformation", "applyCharging", "connect"),
        ("cdr:other-number",),
        "other",
    ),
    "0": MenuChoice("operator", ("disconnectForwardConnection", "connect"), (), "operator"),
}


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a scenario is about; its verdict checks each part (operations, rows, SMS)."""

    digits: tuple[str, ...]  # keyed at the SCP's prompts, in order
    missed: str | None = None  # the missed-call reason the SCP must record
    presence: str | None = None  # the MAP presence report the SCP must acknowledge and store
    menu_is_the_point: bool = False  # menu-*: the caller's choice is what the scenario checks
    selfcare: bool = False


EXPECTATIONS: dict[str, Expectation] = {
    "busy": Expectation(("1",), missed="busy"),
    "not-reachable-then-present": Expectation(
        ("1",), missed="not-reachable", presence="alertServiceCentre"
    ),
    "present-vlr": Expectation(("1",), missed="not-reachable", presence="noteMM-Event"),
    "no-answer": Expectation(("1",), missed="no-answer"),
    "menu-sms": Expectation(("1",), missed="busy", menu_is_the_point=True),
    "menu-voicemail": Expectation(("2",), missed="busy", menu_is_the_point=True),
    "menu-other-number": Expectation(("3", Numbers().other), missed="busy", menu_is_the_point=True),
    "menu-operator": Expectation(("0",), missed="busy", menu_is_the_point=True),
    "selfcare-pin": Expectation((Numbers().pin, "1"), selfcare=True),
}
SCENARIO_DIGITS: dict[str, list[str]] = {name: list(e.digits) for name, e in EXPECTATIONS.items()}

# The operations that put a missed call's caller in front of the menu, per [ivr] mode.
_TO_IVR = {
    "connect": ("requestReportBCSMEvent", "connect"),
    "ctr": ("requestReportBCSMEvent", "connectToResource", "promptAndCollectUserInformation"),
    "etc": (
        "requestReportBCSMEvent",
        "establishTemporaryConnection",
        "promptAndCollectUserInformation",
    ),
}


@dataclass(frozen=True, slots=True)
class Records:
    """What the SCP wrote while a scenario ran (rows since it began, for its numbers)."""

    subscriber_known: bool
    missed: tuple[str, ...] = ()  # reasons of missed_call rows caller -> subscriber
    callbacks: int = 0
    voicemails: int = 0
    cdr_services: tuple[str, ...] = ()
    sms_to: tuple[str, ...] = ()
    presence: str | None = None  # source of a presence row written (present)
    pin_failed: int | None = None  # the subscriber's failed PIN attempts afterwards


_RECORD_TABLES = ("missed_call", "callback_request", "voicemail", "cdr", "sms_outbox")


async def records_floor(pool: Any, numbers: Numbers) -> dict[str, Any]:
    """Where each table stands before a scenario (highest ids, the presence row's time)."""
    out: dict[str, Any] = {}
    for t in _RECORD_TABLES:
        out[t] = int(await pool.fetchval(f"SELECT coalesce(max(id), 0) FROM {t}"))  # noqa: S608
    out["presence"] = await pool.fetchval(
        "SELECT event_at FROM presence WHERE msisdn = $1", numbers.subscriber
    )
    return out


async def records_since(pool: Any, floor: dict[str, Any], numbers: Numbers) -> Records:
    """The rows a scenario's call wrote: read-only, past ``floor``, for its two numbers."""
    sub, caller = numbers.subscriber, numbers.caller
    known = await pool.fetchrow("SELECT pin_failed_attempts FROM subscriber WHERE msisdn = $1", sub)
    missed = await pool.fetch(
        "SELECT reason FROM missed_call WHERE id > $1 AND callee = $2 AND caller = $3 ORDER BY id",
        floor["missed_call"],
        sub,
        caller,
    )
    callbacks = await pool.fetchval(
        "SELECT count(*) FROM callback_request WHERE id > $1 AND callee = $2 AND caller = $3",
        floor["callback_request"],
        sub,
        caller,
    )
    voicemails = await pool.fetchval(
        "SELECT count(*) FROM voicemail WHERE id > $1 AND callee = $2", floor["voicemail"], sub
    )
    cdrs = await pool.fetch(
        "SELECT service FROM cdr WHERE id > $1 AND msisdn IN ($2, $3) ORDER BY id",
        floor["cdr"],
        sub,
        caller,
    )
    sms = await pool.fetch(
        "SELECT destination FROM sms_outbox WHERE id > $1 AND destination IN ($2, $3) ORDER BY id",
        floor["sms_outbox"],
        sub,
        caller,
    )
    presence = await pool.fetchrow(
        "SELECT source, event_at, present FROM presence WHERE msisdn = $1", sub
    )
    written = (
        presence is not None and presence["present"] and presence["event_at"] != floor["presence"]
    )
    return Records(
        subscriber_known=known is not None,
        missed=tuple(r["reason"] for r in missed),
        callbacks=int(callbacks),
        voicemails=int(voicemails),
        cdr_services=tuple(r["service"] or "" for r in cdrs),
        sms_to=tuple(r["destination"] for r in sms),
        presence=presence["source"] if written else None,
        pin_failed=int(known["pin_failed_attempts"]) if known is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether what a scenario is about happened: ``ok``, ``not checked`` or ``contradicted``.

    ``checked`` lists what was seen as expected, ``missing`` what contradicts the scenario,
    ``not_checked`` what could not be seen from here (and why), ``not_exercised`` side parts
    the configuration leaves to another element (the caller menu on the IVR in connect mode).
    """

    checked: tuple[str, ...]
    missing: tuple[str, ...]
    not_checked: tuple[str, ...]
    not_exercised: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.missing:
            return "contradicted"
        return "not checked" if self.not_checked else "ok"


def _in_order(sent: list[str], want: tuple[str, ...]) -> bool:
    """``want`` appears in ``sent`` in this order (other operations may come between)."""
    it = iter(op.removeprefix("srf:") for op in sent)
    return all(any(op == w for op in it) for w in want)


def judge(
    scenario: str,
    res: CallResult,
    cfg: Config,
    numbers: Numbers,
    records: Records | None,
    *,
    why_unseen: str = "no database to look at",
) -> Verdict:
    """The verdict of one scenario run: its :data:`EXPECTATIONS` against what was seen.

    ``records`` None: the rows and SMS could not be looked at (``why_unseen`` says why).
    """
    exp = EXPECTATIONS[scenario]
    checked: list[str] = []
    missing: list[str] = []
    unseen: list[str] = []
    skipped: list[str] = []

    def check(ok: bool, what: str, otherwise: str) -> None:
        (checked if ok else missing).append(what if ok else otherwise)

    def rows(ok: bool, what: str, otherwise: str) -> None:
        if records is None:
            unseen.append(f"{what} ({why_unseen})")
        else:
            check(ok, what, otherwise)

    sent = res.received
    if records is not None and not records.subscriber_known:
        missing.append(
            f"{numbers.subscriber} is not a provisioned subscriber "
            "(mcn-scp subscriber add, or run without --live-db)"
        )
    mode = cfg.ivr.mode
    if exp.selfcare:
        srf = "connectToResource" if "connectToResource" in sent else "establishTemporaryConnection"
        check(
            _in_order(
                sent,
                (
                    srf,
                    "promptAndCollectUserInformation",
                    "promptAndCollectUserInformation",
                    "playAnnouncement",
                ),
            ),
            "PIN prompted, then the menu, then the missed calls announced",
            f"PIN, menu and missed-calls announcement not all sent (SCP sent: {_ops(sent)})",
        )
        rows(
            records is not None and records.pin_failed == 0,
            "PIN accepted",
            "PIN refused (failed attempts counted)",
        )
        return Verdict(tuple(checked), tuple(missing), tuple(unseen))
    to_ivr = _TO_IVR[mode]
    check(
        _in_order(sent, to_ivr),
        f"caller sent to the IVR ({mode} mode: {' '.join(to_ivr)})",
        f"caller not sent to the IVR: expected {' '.join(to_ivr)}, SCP sent {_ops(sent)}",
    )
    if mode == "connect":
        check(
            res.outcome == f"connect {cfg.ivr.number}",
            f"connected to the IVR number {cfg.ivr.number}",
            f"no Connect to the IVR number {cfg.ivr.number} (outcome: {res.outcome})",
        )
    rows(
        records is not None and exp.missed in records.missed,
        f"missed call recorded ({exp.missed})",
        f"no {exp.missed} missed call recorded for {numbers.caller} -> {numbers.subscriber}"
        + (f" (recorded: {', '.join(records.missed)})" if records and records.missed else ""),
    )
    rows(
        records is not None and numbers.subscriber in records.sms_to,
        f"SMS queued to {numbers.subscriber}",
        f"no SMS queued to {numbers.subscriber}",
    )
    if exp.presence is not None:
        check(
            "acknowledged" in (res.map_outcome or ""),
            f"{exp.presence} acknowledged",
            f"{exp.presence} not acknowledged ({res.map_outcome or 'not sent'})",
        )
        rows(
            records is not None and records.presence is not None,
            "presence stored",
            "no presence stored for the subscriber",
        )
    choice = MENU_CHOICES[exp.digits[0]]
    menu_parts = _menu_parts(choice, exp, res, cfg, numbers, records)
    if mode == "connect":
        why = (
            f"{choice.what}: connect mode hands the caller to the IVR at {cfg.ivr.number}, "
            "whose menu this SCP does not run ([ivr] mode = ctr or etc runs it here)"
        )
        (unseen if exp.menu_is_the_point else skipped).append(why)
    else:
        for ok, what, otherwise, from_rows in menu_parts:
            if from_rows:
                rows(ok, what, otherwise)
            else:
                check(ok, what, otherwise)
    return Verdict(tuple(checked), tuple(missing), tuple(unseen), tuple(skipped))


def _menu_parts(
    choice: MenuChoice,
    exp: Expectation,
    res: CallResult,
    cfg: Config,
    numbers: Numbers,
    records: Records | None,
) -> list[tuple[bool, str, str, bool]]:
    """(ok, what, otherwise, read from rows) for the caller's menu choice, in ctr / etc."""
    sent = res.received
    did = _in_order(sent, choice.ops)
    what = f"{choice.what}: {' '.join(choice.ops)}"
    otherwise = f"{choice.what}: expected {' '.join(choice.ops)}, SCP sent {_ops(sent)}"
    if choice.route is not None:
        target = numbers.other if choice.route == "other" else getattr(cfg.ivr, choice.route)
        did = did and res.outcome == f"connect {target}"
        what += f" {target}"
        otherwise = f"{choice.what}: no connect to {target} (outcome: {res.outcome})"
    parts = [(did, what, otherwise, False)]
    for rec in choice.records:
        if rec == "callback":
            ok = records is not None and records.callbacks == 1
            parts.append((ok, "callback request recorded", "no callback request recorded", True))
        elif rec == "voicemail":
            ok = records is not None and records.voicemails == 1
            parts.append((ok, "voice message recorded", "no voice message recorded", True))
        else:
            service = rec.removeprefix("cdr:")
            ok = records is not None and service in records.cdr_services
            parts.append((ok, f"CDR written ({service})", f"no {service} CDR written", True))
    if exp.presence is not None and "callback" in choice.records:
        ok = records is not None and numbers.caller in records.sms_to
        parts.append(
            (
                ok,
                f"SMS queued to the caller {numbers.caller}",
                f"no SMS queued to the caller {numbers.caller}",
                True,
            )
        )
    return parts


def _ops(sent: list[str]) -> str:
    return " ".join(sent) or "nothing"


async def provision_for_scenarios(pool: Any, numbers: Numbers, *, today: dt.date) -> bool:
    """The scenario subscriber (services and PIN the scenarios use), unless it exists.

    For the in-process SCP's scratch database only: a fresh installation has no subscriber,
    and a scenario against nobody proves nothing. Returns whether it was added.
    """

    try:
        await prov.add_subscriber(
            pool,
            Actor("system", "simulate"),
            numbers.subscriber,
            services=("missed-call", "busy", "voicemail"),
            pin=numbers.pin,
            language="en",
            today=today,
        )
    except Conflict:
        return False
    return True
