"""Every self-service function and the channels that offer it: the one table.

The brief asks for self-service "on your own (IVR, SMS), assisted by an operator seat (人工坐席)
and on the internet", and that the IVR and the web "offer exactly the same functions". Each
channel declares what it offers against the keys of :data:`FUNCTIONS` (the IVR menu in
:mod:`scp.service.selfcare`, the SMS commands in :mod:`scp.service.smscmd`, the portal and the
console in :mod:`scp.web`, the CLI in :mod:`scp.cli`), and the tests hold the declarations to this table and
this table to the rule: whatever the IVR offers, the web and the console offer too
(:func:`parity_gaps`). The README shows the matrix (:func:`matrix_markdown`).

Every channel calls the same flow functions (:mod:`scp.flows.provisioning`,
:mod:`scp.flows.selfservice`), so a function offered twice behaves the same twice.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHANNELS", "FUNCTIONS", "Function", "matrix_markdown", "offered_by", "parity_gaps"]

CHANNELS = ("ivr", "sms", "web", "operator", "cli")


@dataclass(frozen=True, slots=True)
class Function:
    """One self-service function: what it does and who offers it."""

    title: str
    channels: frozenset[str]


def _f(title: str, channels: str) -> Function:
    return Function(title, frozenset(channels.split()))


FUNCTIONS: dict[str, Function] = {
    "missed-calls": _f("missed calls of the window (来话点播)", "ivr sms web operator cli"),
    "callbacks": _f("callback requests", "web operator cli"),
    "voicemail": _f("voicemail", "ivr web operator"),
    "service-on-off": _f("each service on / off", "ivr sms web operator cli"),
    "blacklist": _f("blacklist: numbers and prefixes", "ivr sms web operator cli"),
    "forward-to": _f("forward-to number", "web operator cli"),
    "notify-mode": _f("notification mode (per caller / digest / off)", "ivr web operator cli"),
    "language": _f("language", "web operator cli"),
    "change-pin": _f("change PIN", "ivr web operator cli"),
    "charges": _f("my charges (CDRs)", "web operator cli"),
    "enrol": _f("enrol (subscribe)", "sms web operator cli"),
    "operator": _f("talk to an operator (人工坐席)", "ivr web operator"),
    "pin-reset-unlock": _f("PIN reset and unlock", "operator cli"),
    "sms-outbox": _f("the subscriber's SMS, retry", "operator cli"),
    "call-inquiry": _f("call inquiry for any number", "operator cli"),
}


def offered_by(channel: str) -> frozenset[str]:
    """The functions ``channel`` offers, per the table."""
    return frozenset(k for k, f in FUNCTIONS.items() if channel in f.channels)


def parity_gaps() -> list[str]:
    """Each function the IVR offers that the web or the console lacks (empty: parity)."""
    return [
        f"{key}: offered by the IVR, not by {ch}"
        for key, f in FUNCTIONS.items()
        if "ivr" in f.channels
        for ch in ("web", "operator")
        if ch not in f.channels
    ]


def matrix_markdown() -> str:
    """The table as the README shows it."""
    head = "| function | " + " | ".join(CHANNELS) + " |"
    rule = "| --- |" + " :-: |" * len(CHANNELS)
    rows = [
        f"| {f.title} | " + " | ".join("✓" if c in f.channels else "" for c in CHANNELS) + " |"
        for f in FUNCTIONS.values()
    ]
    return "\n".join([head, rule, *rows])
