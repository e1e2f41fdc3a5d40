"""SMS commands to the service number (来话点播 by SMS): the commands and their parsing.

The pure part (ARCHITECTURE §2: ``service/`` decides, it never does I/O): :func:`parse_command`
reads the one command of a mobile-originated SMS to ``[notify].service_number`` (default
``[smpp].source_addr``, :func:`service_number`), case-insensitive, full-width characters
accepted (NFKC), extra blanks ignored:

=============  ====================================================  ==========
``CX``         list the missed calls of the last ``[service].window_hours``  charged
``KT [s]``     turn service ``s`` on (default missed-call); a number  charged
               that is not a subscriber yet is enrolled with it
``QX [s]``     turn it off                                            charged
``KTYM``       the same as ``KT YM``, ``QXYM`` as ``QX YM`` (busy notification, charged
               遇忙提示: a product of its own)
``LY``         how many voice messages are new, and the retrieval number  charged
``HMD n``      add number ``n`` to the sender's blacklist             charged
``QHMD n``     remove it                                              charged
anything else  the help text                                          free
=============  ====================================================  ==========

A service ``s`` is one of :data:`SERVICE_CODES` (pinyin initials, as Chinese operators write
their SMS codes) or the service's own name (``KT BUSY``, ``QX voicemail``).

Carrying a command out (the provisioning change, the reply SMS, the CDR, all in the MO's
transaction) is :func:`scp.flows.smscmd.handle_mo`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "CHARGED",
    "Command",
    "SERVICE_CODES",
    "VERB_FUNCTIONS",
    "parse_command",
    "service_number",
]

CHARGED = ("CX", "KT", "QX", "HMD", "QHMD", "LY")
SERVICE_CODES = {
    "LD": "missed-call",  # 来电提醒
    "YM": "busy",  # 遇忙提示
    "HZ": "delivery-receipt",  # 短信回执
    "LY": "voicemail",  # 语音留言
    "ZJ": "forwarding",  # 来电转接
}
_SERVICE_NAMES = {s.upper(): s for s in SERVICE_CODES.values()}
# The commands against the self-service table of every channel (scp.service.parity).
VERB_FUNCTIONS = {
    "CX": ("missed-calls",),
    "KT": ("service-on-off", "enrol"),  # KT from a number that is not a subscriber enrols it
    "QX": ("service-on-off",),
    "HMD": ("blacklist",),
    "QHMD": ("blacklist",),
}


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed SMS command: ``verb`` (one of CHARGED, or HELP) and its argument (KT / QX:
    the service's name, "" for missed-call)."""

    verb: str
    arg: str = ""


def parse_command(text: str) -> Command:
    """The command in ``text`` (anything unrecognised is HELP)."""
    words = unicodedata.normalize("NFKC", text).upper().split()
    if not words:
        return Command("HELP")
    verb, rest = words[0], words[1:]
    # "HMD13800138000" without the blank is common on handsets
    for v in ("QHMD", "HMD"):
        if verb.startswith(v) and verb != v and not rest:
            verb, rest = v, [verb[len(v) :]]
            break
    if verb in ("KTYM", "QXYM") and not rest:  # one word, as handsets often send it
        verb, rest = verb[:2], ["YM"]
    if verb in ("KT", "QX") and len(rest) <= 1:
        if not rest:
            return Command(verb)
        service = SERVICE_CODES.get(rest[0]) or _SERVICE_NAMES.get(rest[0])
        if service is None:
            return Command("HELP")
        return Command(verb, "" if service == "missed-call" else service)
    if verb in ("CX", "LY") and not rest:
        return Command(verb)
    if verb in ("HMD", "QHMD"):
        return Command(verb, "".join(rest))
    return Command("HELP")


def service_number(cfg: Config) -> str:
    return cfg.notify.service_number or cfg.smpp.source_addr
