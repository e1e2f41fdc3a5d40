"""Fast typed conversions of CAMEL octet strings coded by hand (no pycrate, no generic TLV walk).

Spec: 3GPP TS 29.078 §7.6 CAMEL-CallResult (ApplyChargingReportArg's CallResult contents):
``timeDurationChargingResult [0] SEQUENCE { partyToCharge [0] ReceivingSideID,
timeInformation [1] TimeInformation, legActive [2] BOOLEAN DEFAULT TRUE,
callLegReleasedAtTcpExpiry [3] NULL OPTIONAL, extensions [4] ..., ... }`` with
``TimeInformation ::= CHOICE { timeIfNoTariffSwitch [0] INTEGER, timeIfTariffSwitch [1]
SEQUENCE { timeSinceTariffSwitch [0] INTEGER, tariffSwitchInterval [1] INTEGER OPTIONAL } }``;
BER per X.690 §8.

Why: an ApplyChargingReport arrives on every charged call; the general converter in
``cap.dec_acr`` walks the TLVs with :mod:`scp.codecs.ber`'s reader. This one reads the common shape
straight off the octets and gives the *same* :class:`~scp.codecs.ops.ApplyChargingReport`,
or :data:`~scp.codecs.fastber.DECLINE` for anything else (long-form lengths, extensions,
members repeated or out of order, other CallResult alternatives), so ``cap.dec_acr`` then
decides (tests/unit/test_codecs_fastpath*.py compare the two on the fuzz corpus).
"""

from __future__ import annotations

from typing import Any

from scp.codecs import ops
from scp.codecs.ber import decode_integer
from scp.codecs.fastber import DECLINE

__all__ = ["dec_acr_fast"]


def dec_acr_fast(d: Any, version: int) -> Any:
    """CAMEL-CallResult octets -> ApplyChargingReport, or DECLINE (never raises)."""
    if type(d) is not bytes:
        return DECLINE
    n = len(d)
    # a0 L | a0 03 81 01 <leg> | a1 L <timeInformation> | [82 01 b] | [83 00]
    if not 12 <= n < 0x82 or d[0] != 0xA0 or d[1] != n - 2 or d[2:6] != b"\xa0\x03\x81\x01":
        return DECLINE
    leg = ops.LegID(d[6])
    if d[7] != 0xA1:
        return DECLINE
    tl = d[8]
    end = 9 + tl
    if tl < 3 or end > n:
        return DECLINE
    t = d[9]
    ln = d[10]
    if 11 + ln != end:
        return DECLINE
    if t == 0x80:  # timeIfNoTariffSwitch
        if not 1 <= ln <= 4:
            return DECLINE
        ti = ops.TimeInformation(time_if_no_tariff_switch=decode_integer(d, 11, 11 + ln))
    elif t == 0xA1:  # timeIfTariffSwitch { [0] since, [1] interval OPTIONAL }
        if ln < 3 or d[11] != 0x80:
            return DECLINE
        k = d[12]
        if not 1 <= k <= 4 or 13 + k > end:
            return DECLINE
        since = decode_integer(d, 13, 13 + k)
        j = 13 + k
        tsi = None
        if j != end:
            if j + 2 > end or d[j] != 0x81:
                return DECLINE
            k = d[j + 1]
            if not 1 <= k <= 4 or j + 2 + k != end:
                return DECLINE
            tsi = decode_integer(d, j + 2, j + 2 + k)
        ti = ops.TimeInformation(time_since_tariff_switch=since, tariff_switch_interval=tsi)
    else:
        return DECLINE
    active = True
    expiry = False
    i = end
    if i < n and d[i] == 0x82:  # legActive
        if i + 3 > n or d[i + 1] != 1:
            return DECLINE
        active = d[i + 2] != 0
        i += 3
    if i < n and d[i] == 0x83:  # callLegReleasedAtTcpExpiry
        if i + 2 > n or d[i + 1] != 0:
            return DECLINE
        expiry = True
        i += 2
    if i != n:
        return DECLINE
    return ops.ApplyChargingReport(leg, ti, active, expiry, {})
