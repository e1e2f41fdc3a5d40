"""Scenario verdicts (scp/tools/simulate/scenarios.py): each scenario's declared expectation
against what was seen.

Pure: a CallResult (what the SCP sent, how the call ended) and Records (the rows the call
wrote) go in, a verdict comes out: ok, not checked (naming what could not be seen and why) or
contradicted (naming what went otherwise). The same verdicts against a real SCP and database
are in tests/integration/test_simulate_inprocess.py and test_replay_cli.py.
"""

from __future__ import annotations

import dataclasses

from scp.config import parse_config
from scp.tools.simulate.scenarios import (
    EXPECTATIONS,
    MENU_CHOICES,
    SCENARIOS,
    CallResult,
    Numbers,
    Records,
    judge,
)

N = Numbers()

CTR = parse_config('[ivr]\nmode = "ctr"\n')
VOICEMAIL_SENT = [
    "requestReportBCSMEvent",
    "continue",
    "connectToResource",
    "promptAndCollectUserInformation",
    "disconnectForwardConnection",
    "connect",
]


def _voicemail_call(outcome: str = "connect 8613800200") -> CallResult:
    return CallResult("menu-voicemail", ok=True, outcome=outcome, received=VOICEMAIL_SENT)


def test_verdict_ok_when_the_voice_message_was_left() -> None:
    rec = Records(
        subscriber_known=True, missed=("busy",), voicemails=1, sms_to=(N.subscriber,), pin_failed=0
    )
    v = judge("menu-voicemail", _voicemail_call(), CTR, N, rec)
    assert v.status == "ok" and not v.missing and not v.not_checked, v
    assert "voice message recorded" in v.checked


def test_verdict_contradicted_names_what_did_not_happen() -> None:
    rec = Records(subscriber_known=True, missed=("busy",), voicemails=0, sms_to=())
    v = judge("menu-voicemail", _voicemail_call("connect 8613800100"), CTR, N, rec)
    assert v.status == "contradicted"
    assert v.missing == (
        "no SMS queued to 8613800138000",
        "voice message: no connect to 8613800200 (outcome: connect 8613800100)",
        "no voice message recorded",
    ), v.missing
    nobody = Records(subscriber_known=False)
    v = judge(
        "busy",
        CallResult("busy", ok=True, outcome="continue", received=["continue"]),
        parse_config(""),
        N,
        nobody,
    )
    assert v.status == "contradicted" and "is not a provisioned subscriber" in v.missing[0]


def test_verdict_says_what_it_could_not_see() -> None:
    # --target: the operations are seen, the rows are not.
    v = judge("menu-voicemail", _voicemail_call(), CTR, N, None, why_unseen="--target")
    assert v.status == "not checked" and not v.missing
    assert "missed call recorded (busy) (--target)" in v.not_checked
    assert any(
        c.startswith("voice message: disconnectForwardConnection connect") for c in v.checked
    )
    # connect mode: the menu runs on the IVR; what the scenario is about cannot be seen here.
    connect = CallResult(
        "menu-voicemail",
        ok=True,
        outcome="connect 8613800999",
        received=["requestReportBCSMEvent", "continue", "connect"],
    )
    rec = Records(subscriber_known=True, missed=("busy",), sms_to=(N.subscriber,))
    v = judge("menu-voicemail", connect, parse_config(""), N, rec)
    assert v.status == "not checked" and v.not_checked[0].startswith("voice message: connect")
    # ... while for busy the menu is a side part: ok, and the skipped part is still named.
    v = judge("busy", dataclasses.replace(connect, scenario="busy"), parse_config(""), N, rec)
    assert v.status == "ok" and v.not_exercised, v


def test_every_scenario_declares_its_expectation() -> None:
    assert set(EXPECTATIONS) == set(SCENARIOS)
    for name, exp in EXPECTATIONS.items():
        assert exp.selfcare or exp.missed in ("busy", "not-reachable", "no-answer"), name
        assert exp.digits and (exp.selfcare or exp.digits[0] in MENU_CHOICES), name
