"""Application context names this SCP knows, with their protocol and version, and MAP negotiation.

Sources: 3GPP TS 29.078 §6.1.3 / §6.2.3 (CAP v2 phase 2 contexts 0.4.0.0.1.0.5x.1, v3
0.4.0.0.1.21.3.x / 20.3.x, v4 0.4.0.0.1.23.3.x / 22.3.x), ETSI ETS 300 374-1 §5 (Core INAP
CS-1, 0.4.0.1.1.1.x.0, as transcribed in ``scp.codecs.asn``), 3GPP TS 29.002 §17.3.3 (MAP application contexts
0.4.0.0.1.0.<ac>.<version>) and §12.1 / Q.773 for the dialogue-level rule: answer in the
version the peer proposed; if we do not support that version, refuse the dialogue (AARE
"application-context-name-not-supported", TS 29.002 §15.6.3) returning the highest version we
do support so the peer can fall back and retry (MAP version negotiation, TS 29.002 §5.3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scp.codecs import asn as _inap_asn

__all__ = [
    "Protocol",
    "AppContext",
    "APPLICATION_CONTEXTS",
    "lookup",
    "MapAcDecision",
    "map_ac_decision",
    "MAP_SUPPORTED",
    "CAP_V2_GSMSSF_SCF",
    "CAP_V3_GSMSSF_SCF",
    "CAP_V4_GSMSSF_SCF",
    "CAP_V2_ASSIST",
    "CAP_V2_GSMSRF_SCF",
    "INAP_CS1_SSP_SCP",
    "MAP_SHORT_MSG_ALERT_V2",
    "MAP_SHORT_MSG_GATEWAY_V3",
    "MAP_MM_EVENT_REPORTING_V3",
    "MAP_ANY_TIME_ENQUIRY_V3",
]


class Protocol(enum.Enum):
    """Which TC-user speaks in a dialogue."""

    CAP = "cap"
    INAP = "inap"
    MAP = "map"


@dataclass(frozen=True, slots=True)
class AppContext:
    """One application context name: its OID, protocol, version and spec name."""

    oid: tuple[int, ...]
    protocol: Protocol
    version: int
    name: str


def _cap(oid: tuple[int, ...], v: int, name: str) -> AppContext:
    return AppContext(oid, Protocol.CAP, v, name)


CAP_V2_GSMSSF_SCF = (0, 4, 0, 0, 1, 0, 50, 1)
CAP_V2_ASSIST = (0, 4, 0, 0, 1, 0, 51, 1)
CAP_V2_GSMSRF_SCF = (0, 4, 0, 0, 1, 0, 52, 1)
CAP_V3_GSMSSF_SCF = (0, 4, 0, 0, 1, 21, 3, 4)
CAP_V3_ASSIST = (0, 4, 0, 0, 1, 21, 3, 6)
CAP_V3_GSMSRF_SCF = (0, 4, 0, 0, 1, 20, 3, 14)
CAP_V4_GSMSSF_SCF = (0, 4, 0, 0, 1, 23, 3, 4)
CAP_V4_ASSIST = (0, 4, 0, 0, 1, 23, 3, 6)
CAP_V4_SCF_GSMSSF = (0, 4, 0, 0, 1, 23, 3, 8)
CAP_V4_GSMSRF_SCF = (0, 4, 0, 0, 1, 22, 3, 14)
INAP_CS1_SSP_SCP = _inap_asn.AC_INAP_CS1_SSP_TO_SCP  # 0.4.0.1.1.1.0.0
INAP_CS1_ASSIST = _inap_asn.AC_INAP_CS1_ASSIST_HANDOFF_SSP_TO_SCP  # 0.4.0.1.1.1.1.0
INAP_CS1_IP_SCP = _inap_asn.AC_INAP_CS1_IP_TO_SCP  # 0.4.0.1.1.1.2.0

MAP_SHORT_MSG_ALERT_V2 = (0, 4, 0, 0, 1, 0, 23, 2)
MAP_SHORT_MSG_GATEWAY_V3 = (0, 4, 0, 0, 1, 0, 20, 3)
MAP_MM_EVENT_REPORTING_V3 = (0, 4, 0, 0, 1, 0, 42, 3)
MAP_ANY_TIME_ENQUIRY_V3 = (0, 4, 0, 0, 1, 0, 29, 3)

# MAP application-context name (the 7th arc) -> (spec name, versions this SCP implements).
# shortMsgAlert v1 carries alertServiceCentreWithoutResult (op 49), v2 alertServiceCentre (64);
# shortMsgGateway v1-v3 carry SRI-SM (45) and ReportSM-DeliveryStatus (47);
# mwdMngt v1-v3 ReadyForSM (66); mm-EventReporting v3 NoteMM-Event (89);
# anyTimeInfoEnquiry v3 AnyTimeInterrogation (71).
MAP_SUPPORTED: dict[int, tuple[str, tuple[int, ...]]] = {
    23: ("shortMsgAlertContext", (1, 2)),
    20: ("shortMsgGatewayContext", (1, 2, 3)),
    24: ("mwdMngtContext", (1, 2, 3)),
    42: ("mm-EventReportingContext", (3,)),
    29: ("anyTimeInfoEnquiryContext", (3,)),
}

APPLICATION_CONTEXTS: dict[tuple[int, ...], AppContext] = {
    ac.oid: ac
    for ac in (
        _cap(CAP_V2_GSMSSF_SCF, 2, "CAP-v2-gsmSSF-to-gsmSCF-AC"),
        _cap(CAP_V2_ASSIST, 2, "CAP-v2-assist-gsmSSF-to-gsmSCF-AC"),
        _cap(CAP_V2_GSMSRF_SCF, 2, "CAP-v2-gsmSRF-to-gsmSCF-AC"),
        _cap(CAP_V3_GSMSSF_SCF, 3, "capssf-scfGenericAC"),
        _cap(CAP_V3_ASSIST, 3, "capssf-scfAssistHandoffAC"),
        _cap(CAP_V3_GSMSRF_SCF, 3, "gsmSRF-gsmSCF-ac"),
        _cap(CAP_V4_GSMSSF_SCF, 4, "capssf-scfGenericAC"),
        _cap(CAP_V4_ASSIST, 4, "capssf-scfAssistHandoffAC"),
        _cap(CAP_V4_SCF_GSMSSF, 4, "capscf-ssfGenericAC"),
        _cap(CAP_V4_GSMSRF_SCF, 4, "gsmSRF-gsmSCF-ac"),
        *(
            AppContext(oid, Protocol.INAP, 1, name)
            for oid, name in _inap_asn.APPLICATION_CONTEXTS.items()
        ),
        *(
            AppContext((0, 4, 0, 0, 1, 0, acn, v), Protocol.MAP, v, name)
            for acn, (name, versions) in MAP_SUPPORTED.items()
            for v in versions
        ),
    )
}


def lookup(oid: tuple[int, ...] | None) -> AppContext | None:
    """The application context for ``oid``, or None if this SCP does not know it."""
    if oid is None:
        return None
    return APPLICATION_CONTEXTS.get(tuple(oid))


@dataclass(frozen=True, slots=True)
class MapAcDecision:
    """Outcome of MAP AC negotiation for a proposed application context.

    ``accept``: answer in ``ac`` (= the proposed one, ``version`` its version). Otherwise
    ``ac`` is the context to return in the AARE reject (same name, our highest version), or
    None when we do not support that context name at all.
    """

    accept: bool
    version: int | None
    ac: tuple[int, ...] | None


def map_ac_decision(proposed: tuple[int, ...] | None) -> MapAcDecision:
    """Decide whether to accept a MAP dialogue proposing ``proposed`` (TS 29.002 §5.3)."""
    if proposed is None:
        # No dialogue portion: a MAP v1 peer (TS 29.002 §15.6.4); v1 is what it speaks.
        return MapAcDecision(True, 1, None)
    p = tuple(proposed)
    if len(p) != 8 or p[:6] != (0, 4, 0, 0, 1, 0):
        return MapAcDecision(False, None, None)
    entry = MAP_SUPPORTED.get(p[6])
    if entry is None:
        return MapAcDecision(False, None, None)
    versions = entry[1]
    if p[7] in versions:
        return MapAcDecision(True, p[7], p)
    # Propose back the highest version we have: lower if they asked higher, so they fall back.
    lower = [v for v in versions if v < p[7]]
    best = max(lower) if lower else max(versions)
    return MapAcDecision(False, None, p[:7] + (best,))
