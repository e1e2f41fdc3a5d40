"""SMS commands to the service number (来话点播 by SMS): the commands and their parsing.

The pure part (ARCHITECTURE §2: ``service/`` decides, it never does I/O): :func:`parse_command`
reads the one command of a mobile-originated SMS to ``[notify].service_number`` (default
``[smpp].source_addr``, :func:`service_number`), case-insensitive, full-width characters
accepted (NFKC), extra blanks ignored:

=============  ====================================================  ==========
``CX``         list the missed calls of the last ``[service].window_hours``  charged
``KT``         turn missed-call notification (来话提示) on              charged
``QX``         turn it off                                            charged
``LY``         how many voice messages are new, and the retrieval number  charged
``KTYM``       turn busy notification (遇忙提示) on ("KT YM" too)      charged
``QXYM``       turn it off ("QX YM" too)                              charged
``HMD n``      add number ``n`` to the sender's blacklist             charged
``QHMD n``     remove it                                              charged
anything else  the help text                                          free
=============  ====================================================  ==========

Carrying a command out (the provisioning change, the reply SMS, the CDR, all in the MO's
transaction) is :func:`scp.flows.smscmd.handle_mo`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["CHARGED", "PRODUCT_OF", "Command", "parse_command", "service_number"]

CHARGED = ("CX", "KT", "QX", "KTYM", "QXYM", "HMD", "QHMD", "LY")

# The product each on / off command switches: the two notifications are separate products.
PRODUCT_OF = {"KT": "missed-call", "QX": "missed-call", "KTYM": "busy", "QXYM": "busy"}


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed SMS command: ``verb`` (one of CHARGED, or HELP) and its argument."""

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
    if verb in ("KT", "QX") and rest == ["YM"]:
        return Command(verb + "YM")
    if verb in ("CX", "KT", "QX", "KTYM", "QXYM", "LY") and not rest:
        return Command(verb)
    if verb in ("HMD", "QHMD"):
        return Command(verb, "".join(rest))
    return Command("HELP")


def service_number(cfg: Config) -> str:
    return cfg.notify.service_number or cfg.smpp.source_addr
