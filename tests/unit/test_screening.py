"""The pure screening decision (:func:`scp.service.screening.screen`), its answer, and the
:class:`Screener`'s counting and rationed log lines, with ``now`` passed in."""

from __future__ import annotations

import pytest

from scp.codecs.appctx import (
    CAP_V2_GSMSSF_SCF,
    INAP_CS1_SSP_SCP,
    MAP_MM_EVENT_REPORTING_V3,
    MAP_SHORT_MSG_ALERT_V2,
)
from scp.config import ConfigError, parse_config
from scp.primitives import (
    DialogueDiagnostic,
    DialogueResult,
    GlobalTitle,
    Invoke,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcUAbort,
)
from scp.service.screening import (
    MAX_LOG_SOURCES,
    LogRation,
    Refusal,
    Screener,
    ScreeningPolicy,
    refusal,
    screen,
)

CFG = parse_config(
    """
[screening]
log_interval = 10
[screening.map]
allowed_calling_gt = ["8613", "8520"]
[screening.map.alert_service_centre]
allowed_calling_gt = ["861390001"]
allowed_opc = [200, "300-309"]
[screening.map.note_mm_event]
allowed_opc = ["400-409"]
[screening.cap]
allowed_opc = [500]
"""
).screening
POLICY = ScreeningPolicy.of(CFG)
OPEN = ScreeningPolicy.of(parse_config("").screening)

CASES = [
    # (name, ac, calling GT, OPC, opcodes, refusal or None)
    ("alert from an HLR", MAP_SHORT_MSG_ALERT_V2, "8613900011", 305, (64,), None),
    ("v1 alert from an HLR", MAP_SHORT_MSG_ALERT_V2, "8613900011", 200, (49,), None),
    (
        "alert from a VLR's PC",
        MAP_SHORT_MSG_ALERT_V2,
        "8613900011",
        400,
        (64,),
        Refusal("map", "alertServiceCentre", "opc"),
    ),
    (
        "alert from a foreign GT",
        MAP_SHORT_MSG_ALERT_V2,
        "4479000000",
        200,
        (64,),
        Refusal("map", "*", "calling_gt"),
    ),
    (
        "alert, GT of ours but not an HLR's",
        MAP_SHORT_MSG_ALERT_V2,
        "8613800000",
        200,
        (64,),
        Refusal("map", "alertServiceCentre", "calling_gt"),
    ),
    (
        "alert routed on PC/SSN, no GT",
        MAP_SHORT_MSG_ALERT_V2,
        None,
        200,
        (64,),
        Refusal("map", "*", "no_calling_gt"),
    ),
    ("NoteMM-Event from a VLR", MAP_MM_EVENT_REPORTING_V3, "8520001", 401, (89,), None),
    (
        "NoteMM-Event from an HLR's PC",
        MAP_MM_EVENT_REPORTING_V3,
        "8520001",
        305,
        (89,),
        Refusal("map", "noteMM-Event", "opc"),
    ),
    ("InitialDP from the switch", CAP_V2_GSMSSF_SCF, None, 500, (0,), None),
    ("InitialDP from elsewhere", CAP_V2_GSMSSF_SCF, None, 501, (0,), Refusal("cap", "*", "opc")),
    ("InitialDP, OPC unknown", CAP_V2_GSMSSF_SCF, None, None, (0,), Refusal("cap", "*", "no_opc")),
    ("INAP: its list is empty", INAP_CS1_SSP_SCP, None, 999, (0,), None),
    ("unknown context: the dispatcher's", (1, 2, 3), None, 999, (64,), None),
]


@pytest.mark.parametrize(
    ("name", "ac", "gt", "opc", "ops", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_decision(name, ac, gt, opc, ops, expected) -> None:  # type: ignore[no-untyped-def]
    assert screen(POLICY, ac=ac, calling_gt=gt, opc=opc, opcodes=ops) == expected
    # empty lists allow all (the documented default)
    assert screen(OPEN, ac=ac, calling_gt=gt, opc=opc, opcodes=ops) is None


MWD_MNGT_V3 = (0, 4, 0, 0, 1, 0, 24, 3)
V1_POLICY = ScreeningPolicy.of(
    parse_config(
        """
[screening.map.alert_service_centre]
allowed_opc = ["300-309"]
"""
    ).screening,
    map_ssns=(147, 8),
)
V1_CASES = [
    # (name, ac, called SSN, OPC, opcodes, refusal or None)
    ("v1 alert from an HLR", None, 8, 305, (49,), None),
    (
        "v1 alert from elsewhere",
        None,
        8,
        200,
        (49,),
        Refusal("map", "alertServiceCentreWithoutResult", "opc"),
    ),
    # on another SSN too: the operation is MAP's, screened by its list
    (
        "v1 alert to a CAP SSN",
        None,
        146,
        200,
        (49,),
        Refusal("map", "alertServiceCentreWithoutResult", "opc"),
    ),
    ("no context, not MAP", None, 146, 200, (0,), None),
    # ReadyForSM: the same presence event, held to the HLRs' list (it has no list of its own)
    ("ReadyForSM from an HLR", MWD_MNGT_V3, 8, 300, (66,), None),
    ("ReadyForSM from elsewhere", MWD_MNGT_V3, 8, 201, (66,), Refusal("map", "readyForSM", "opc")),
    ("v1 ReadyForSM from elsewhere", None, 8, 201, (66,), Refusal("map", "readyForSM", "opc")),
]


@pytest.mark.parametrize(
    ("name", "ac", "ssn", "opc", "ops", "expected"), V1_CASES, ids=[c[0] for c in V1_CASES]
)
def test_decision_without_dialogue_portion_and_ready_for_sm(
    name, ac, ssn, opc, ops, expected
) -> None:  # type: ignore[no-untyped-def]
    got = screen(V1_POLICY, ac=ac, calling_gt=None, opc=opc, opcodes=ops, called_ssn=ssn)
    assert got == expected


def test_v1_begin_on_a_map_ssn_passes_the_map_list() -> None:
    """No context and no screened operation: on a MAP SSN still MAP's [screening.map]."""
    policy = ScreeningPolicy.of(
        parse_config("[screening.map]\nallowed_opc = [300]").screening, map_ssns=(147, 8)
    )
    kw = {"ac": None, "calling_gt": None, "opcodes": (45,)}
    assert screen(policy, opc=200, called_ssn=8, **kw) == Refusal("map", "*", "opc")
    assert screen(policy, opc=300, called_ssn=8, **kw) is None
    assert screen(policy, opc=200, called_ssn=146, **kw) is None  # not MAP: the dispatcher's


def test_ready_for_sm_has_its_own_list_when_set() -> None:
    policy = ScreeningPolicy.of(
        parse_config(
            """
[screening.map.alert_service_centre]
allowed_opc = ["300-309"]
[screening.map.ready_for_sm]
allowed_opc = [400]
"""
        ).screening
    )
    kw = {"ac": MWD_MNGT_V3, "calling_gt": None, "opcodes": (66,)}
    assert screen(policy, opc=400, **kw) is None
    assert screen(policy, opc=300, **kw) == Refusal("map", "readyForSM", "opc")


def test_screener_screens_a_begin_without_dialogue_portion() -> None:
    """The node's path: the Screener told the MAP SSNs refuses a v1 alert (no dialogue
    portion) from a point code off the HLR list, and answers with a U-ABORT without AARE."""
    s = Screener(
        parse_config('[screening.map.alert_service_centre]\nallowed_opc = ["300-309"]').screening,
        map_ssns=(147, 8),
    )
    a = SccpAddress(ri=RoutingIndicator.SSN, ssn=8, pc=100)
    begin = TcBegin(9, a, a, None, None, (Invoke(1, 49, b"\x30\x00", op_class=4),))
    got = s.check(begin, opc=200, now=0.0)
    assert got is not None and got.answer == TcUAbort(9)
    assert s.stats.refused == {("map", "alertServiceCentreWithoutResult", "opc"): 1}
    assert s.check(begin, opc=301, now=0.0) is None


def test_open_sections_are_named_for_the_warning() -> None:
    assert parse_config("").screening.open_lists() == [
        "screening.map",
        "screening.cap",
        "screening.inap",
    ]
    assert CFG.open_lists() == ["screening.inap"]


def test_a_map_operation_left_open_by_the_per_operation_lists_is_named() -> None:
    """[screening.map] empty, some per-operation lists set: the others let anyone send."""
    only_alert = parse_config("[screening.map.alert_service_centre]\nallowed_opc = [300]")
    # ReadyForSM follows the alert list; NoteMM-Event is open to all
    assert only_alert.screening.open_lists()[:1] == ["screening.map.note_mm_event"]
    only_note = parse_config("[screening.map.note_mm_event]\nallowed_opc = [300]")
    assert only_note.screening.open_lists()[:2] == [
        "screening.map.alert_service_centre",
        "screening.map.ready_for_sm",
    ]
    # [screening.map] set: every MAP operation passes it, nothing is open to all
    whole = parse_config("[screening.map]\nallowed_opc = [300]")
    assert whole.screening.open_lists() == ["screening.cap", "screening.inap"]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[screening.cap]\nallowed_opc = ["9-1"]', "screening.cap.allowed_opc[0]"),
        ("[screening.cap]\nallowed_opc = [20000]", "screening.cap.allowed_opc[0]"),
        ('[screening.inap]\nallowed_opc = ["a-b"]', "screening.inap.allowed_opc[0]"),
        (
            '[screening.map.note_mm_event]\nallowed_calling_gt = ["86+"]',
            "screening.map.note_mm_event.allowed_calling_gt[0]",
        ),
        ("[screening]\nlog_interval = 0", "screening.log_interval"),
        (
            '[screening.map.ready_for_sm]\nallowed_opc = ["1-x"]',
            "screening.map.ready_for_sm.allowed_opc[0]",
        ),
        ("[screening.map]\nallowed = []", "screening.map.allowed"),
    ],
)
def test_bad_config_names_the_key(toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(toml)
    assert e.value.key == key


def _begin(
    did: int, gt: str | None, ac: tuple[int, ...] | None = MAP_SHORT_MSG_ALERT_V2
) -> TcBegin:
    a = SccpAddress(
        ri=RoutingIndicator.GT if gt else RoutingIndicator.SSN,
        ssn=6,
        pc=None if gt else 305,
        gt=GlobalTitle(gt) if gt else None,
    )
    return TcBegin(did, a, a, ac, None, (Invoke(1, 64),))


def test_answer_is_the_dialogue_refused() -> None:
    assert refusal(_begin(7, "1")) == TcUAbort(
        7,
        application_context=MAP_SHORT_MSG_ALERT_V2,
        result=DialogueResult.REJECT_PERMANENT,
        diagnostic=DialogueDiagnostic.NO_REASON_GIVEN,
    )
    assert refusal(_begin(8, "1", ac=None)) == TcUAbort(8)


def test_screener_counts_every_refusal_and_logs_one_line_per_source_per_interval() -> None:
    s = Screener(CFG)
    assert s.check(_begin(1, "8613900011"), opc=305, now=0.0) is None
    got = [s.check(_begin(i, "4479000000"), opc=200, now=float(i)) for i in range(2, 14)]
    assert all(g is not None for g in got)
    logged = [(g.log, g.suppressed) for g in got if g is not None and g.log]
    # t=2 logs; t=3..11 are within 10 s of it (suppressed); t=12 logs with 9 not logged since
    assert logged == [(True, 0), (True, 9)]
    other = s.check(_begin(20, "4479000001"), opc=201, now=13.0)
    assert other is not None and other.log  # another point code has its own line
    assert other.source == "opc 201 gt 4479000001"
    assert s.stats.refused == {("map", "*", "calling_gt"): 13}


def test_a_sender_rotating_gts_or_point_codes_gets_one_line_per_interval() -> None:
    """The calling GT and the OPC are what the peer writes: rationed by the association the
    BEGINs came on (else the OPC), a peer rotating them still gets one line per interval."""
    s = Screener(CFG)
    by_gt = [s.check(_begin(i, f"44{i:08d}"), opc=200, now=0.0) for i in range(50)]
    assert [g.log for g in by_gt if g is not None] == [True] + [False] * 49
    on_assoc = [s.check(_begin(i, f"44{i:08d}"), opc=300 + i, now=0.0, assoc=7) for i in range(50)]
    assert [g.log for g in on_assoc if g is not None] == [True] + [False] * 49
    assert on_assoc[0] is not None and on_assoc[0].source == "assoc 7 opc 300 gt 4400000000"
    later = s.check(_begin(99, "4499"), opc=399, now=10.0, assoc=7)
    assert later is not None and later.log and later.suppressed == 49


def test_screener_log_memory_is_bounded() -> None:
    s = Screener(CFG)
    for i in range(MAX_LOG_SOURCES + 5):
        s.check(_begin(i, f"44{i:010d}"), opc=None, now=0.0)
    assert len(s.ration._logged) <= MAX_LOG_SOURCES


def test_log_ration_gives_each_source_one_line_per_interval() -> None:
    """What the node rations M3UA DATA refused by [[m3ua.binding]] with, per peer address."""
    r = LogRation(10.0)
    assert [r.due("10.0.0.66", float(t)) for t in range(12)] == [0] + [None] * 9 + [9, None]
    assert r.due("10.0.0.67", 11.0) == 0  # another source has its own line
