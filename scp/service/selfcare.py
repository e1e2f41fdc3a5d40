"""Self-service IVR (主人菜单): the subscriber dials the access number and manages the service.

Pure, like :mod:`scp.service.calls` whose session machinery (SRF reached by ConnectToResource or
EstablishTemporaryConnection + AssistRequestInstructions, PlayAnnouncement /
PromptAndCollectUserInformation, endings, timers) it reuses. An InitialDP with the
``selfcare_service_key`` (TS 29.078 §6.1.2 / ETS 300 374-1 §6.1: serviceKey selects the
service logic) is answered with the resource; the PIN is collected (6-10 digits then '#'; the
account locks after 3 wrong tries, ops unlock it), then the menu:

  1 hear missed calls (count and up to four numbers as variable parts of one announcement)
  2 voicemail: how many messages are new (a variable announcement), then the retrieval
    platform (Connect ``call.voicemail_retrieval``)
  3 service on / off: which service (:data:`SERVICE_DIGITS`: missed-call notification 来话提示
    and busy notification 遇忙提示 are two products, switched and billed apart), then 1 on, 2 off
  4 blacklist (1 add, 2 remove, then the number and '#')
  5 change PIN (the new PIN then '#')
  6 notification mode (1 one SMS per call, 2 digest, 3 none)
  0 operator

Every change goes through the same functions the CLI uses (``scp.service.provisioning``,
channel "ivr"): the session asks for them with :class:`ServiceRequest` and is told the outcome
with :class:`ServiceAnswer`; the executor does the asking.

A caller whose own number is not an active subscriber's (the subscriber calls from another
phone) is asked for the mobile number first, then its PIN (系统提示用户输入移动号码和密码); a
wrong PIN, or a number that is no subscriber's, asks for the number again, and the PIN's
failures count against that number's lock like any other.

What the menu offers is declared against the self-service table of every channel
(:data:`MENU_FUNCTIONS`, :mod:`scp.service.parity`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from scp.codecs import ops
from scp.codecs.numbers import GenericDigits
from scp.core.fsm import Transition, TransitionTable
from scp.service.calls import (
    Action,
    Callee,
    CallEvent,
    CallSession,
    DigitsCollected,
    Event,
    OpFailed,
    Phase,
    Send,
    ServiceAnswer,
    ServiceRequest,
    SessionAction,
    called_number,
    common_rows,
    e164,
    prompt,
)

__all__ = [
    "MAX_VARIABLE_NUMBERS",
    "MENU_FUNCTIONS",
    "SELFCARE_FSM",
    "SERVICE_DIGITS",
    "SelfcareSession",
    "ServiceAnswer",
    "ServiceRequest",
]

MAX_VARIABLE_NUMBERS = 4  # VariableParts is SIZE (1..5) in CAP and INAP: the count + 4 numbers


MENU_MISSED, MENU_VOICEMAIL, MENU_SERVICE, MENU_BLACKLIST, MENU_PIN, MENU_NOTIFY, MENU_OPERATOR = (
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "0",
)
NOTIFY_MODES = {"1": "sms", "2": "digest", "3": "none"}
MENU_SERVICE_ON_OFF = "3+"  # menu 3, the service chosen: waiting for 1 on / 2 off
# Menu 3: which service (announcement ``service_choice``), then on / off.
SERVICE_DIGITS = {
    "1": "missed-call",
    "2": "busy",
    "3": "delivery-receipt",
    "4": "voicemail",
    "5": "forwarding",
}
# The owner's menu against the self-service table (scp.service.parity.FUNCTIONS).
MENU_FUNCTIONS = {
    MENU_MISSED: "missed-calls",
    MENU_VOICEMAIL: "voicemail",
    MENU_SERVICE: "service-on-off",
    MENU_BLACKLIST: "blacklist",
    MENU_PIN: "change-pin",
    MENU_NOTIFY: "notify-mode",
    MENU_OPERATOR: "operator",
}


class SelfcareSession(CallSession):
    """One self-service call from the owner of ``msisdn``."""

    def start(
        self,
        idp: ops.InitialDP,
        callee: Callee | None,
        now: float,
        at: dt.datetime,
    ) -> list[Action]:
        """The InitialDP; ``callee`` is the *calling* subscriber as loaded (None: unknown)."""
        self.call_open = True
        self._now = now
        cpn = idp.calling_party_number
        self.caller = e164(cpn.digits, cpn.nai) if cpn is not None else None
        self.known = callee is not None and callee.active
        self.callee = callee.msisdn if callee is not None else (self.caller or "")
        self.choice = ""
        return self._open_srf(now)

    def _srf_ready(self) -> list[Action]:
        self.tries = 1
        if not self.known:
            # Calling from another phone: the mobile number first, then its PIN.
            self.login = True
            return self._ask(Phase.SC_LOGIN, self.s.ann["enter_msisdn"], number=True)
        self.phase = Phase.PIN
        return [Send((self._pin_prompt(),), self.srf_leg)]

    # -- prompts --------------------------------------------------------------------------------

    def _pin_prompt(self, wrong: bool = False) -> ops.PromptAndCollectUserInformation:
        a = self.s.ann
        ids = (a["pin_wrong"], a["pin"]) if wrong else (a["pin"],)
        return prompt(ids, min_digits=6, max_digits=11, end=True, s=self.s)

    def _menu(self, *before: int) -> list[Action]:
        self.phase = Phase.SC_MENU
        return [Send((prompt((*before, self.s.ann["selfcare_menu"]), s=self.s),), self.srf_leg)]

    def _ask(self, phase: Phase, ann: int, *, number: bool = False) -> list[Action]:
        self.phase = phase
        if number:
            p = prompt((ann,), min_digits=3, max_digits=16, end=True, s=self.s)
        else:
            p = prompt((ann,), s=self.s)
        return [Send((p,), self.srf_leg)]

    def _request(self, op: str, arg: str | None = None) -> list[Action]:
        self.phase = Phase.SC_WAIT
        self.pending = op
        return [ServiceRequest(op, self.callee, arg)]

    # -- handlers -------------------------------------------------------------------------------

    def _on_pin(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        pin = ev.digits.rstrip("#C")
        if not (6 <= len(pin) <= 10 and pin.isdigit()):
            return self._wrong_pin()
        return self._request("verify_pin", pin)

    def _wrong_pin(self) -> list[Action]:
        self.tries += 1
        if self.tries > self.s.menu_retries:
            return self._announce(self.s.ann["goodbye"])
        if self.login:  # the number may be the mistake: ask for both again
            a = self.s.ann
            self.phase = Phase.SC_LOGIN
            p = prompt(
                (a["pin_wrong"], a["enter_msisdn"]), min_digits=3, max_digits=16, end=True, s=self.s
            )
            return [Send((p,), self.srf_leg)]
        self.phase = Phase.PIN
        return [Send((self._pin_prompt(True),), self.srf_leg)]

    def _on_login_number(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        n = e164(ev.digits.rstrip("#C"))
        if n is None:
            return self._wrong_pin()
        self.callee = n
        self.phase = Phase.PIN
        return [Send((self._pin_prompt(),), self.srf_leg)]

    def _on_menu(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        d = ev.digits[:1]
        a = self.s.ann
        self.choice = d
        if d == MENU_MISSED:
            return self._request("missed_calls")
        if d == MENU_VOICEMAIL:
            return self._request("voicemail_count")
        if d in (MENU_SERVICE, MENU_BLACKLIST, MENU_NOTIFY):
            ann = {
                MENU_SERVICE: a["service_choice"],
                MENU_BLACKLIST: a["add_remove"],
                MENU_NOTIFY: a["notify_mode"],
            }[d]
            return self._ask(Phase.SC_CHOICE, ann)
        if d == MENU_PIN:
            return self._ask(Phase.SC_NEW_PIN, a["new_pin"], number=True)
        if d == MENU_OPERATOR:
            return self._leave_srf((self._connect_plain(self.s.operator),), "operator")
        return self._menu_retry()

    def _menu_retry(self) -> list[Action]:
        self.tries += 1
        if self.tries > self.s.menu_retries:
            return self._announce(self.s.ann["goodbye"])
        return self._menu(self.s.ann["invalid"])

    def _on_choice(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        d = ev.digits[:1]
        if self.choice == MENU_SERVICE and d in SERVICE_DIGITS:
            self.service = SERVICE_DIGITS[d]
            self.choice = MENU_SERVICE_ON_OFF
            return self._ask(Phase.SC_CHOICE, self.s.ann["on_off"])
        if self.choice == MENU_SERVICE_ON_OFF and d in ("1", "2"):
            return self._request("enable_service" if d == "1" else "disable_service", self.service)
        if self.choice == MENU_NOTIFY and d in NOTIFY_MODES:
            return self._request("set_notify_mode", NOTIFY_MODES[d])
        if self.choice == MENU_BLACKLIST and d in ("1", "2"):
            self.bl_op = "blacklist_add" if d == "1" else "blacklist_del"
            return self._ask(Phase.SC_NUMBER, self.s.ann["enter_number"], number=True)
        return self._menu_retry()

    def _on_number(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        n = e164(ev.digits.rstrip("#C"))
        if n is None:
            return self._menu_retry()
        return self._request(self.bl_op, n)

    def _on_new_pin(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        pin = ev.digits.rstrip("#C")
        if not (6 <= len(pin) <= 10 and pin.isdigit()):
            return self._menu_retry()
        return self._request("set_pin", pin)

    def _on_answer(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, ServiceAnswer)
        a = self.s.ann
        if ev.op == "verify_pin":
            if ev.value == "ok":
                self.tries = 1
                return self._menu()
            if ev.value == "wrong":
                return self._wrong_pin()
            return self._announce(a["pin_locked"])  # locked, or no PIN set: ops must act
        if ev.op == "voicemail_count":
            counts = ev.value if ev.ok and isinstance(ev.value, (list, tuple)) else (0, 0)
            its = ops.InformationToSend(
                extra={
                    "messageID": (
                        "variableMessage",
                        {
                            "elementaryMessageID": a["voicemail_new"],
                            "variableParts": [("integer", int(counts[0]))],
                        },
                    )
                }
            )
            # once told, the owner goes on to the retrieval platform (_after_announcement)
            self.then_retrieval = True
            self.phase = Phase.ANNOUNCING
            self._deadline = self._now + self.s.announcement_timeout
            return [Send((ops.PlayAnnouncement(its),), self.srf_leg)]
        if ev.op == "missed_calls":
            raw = ev.value if isinstance(ev.value, (list, tuple)) else ()
            # The count is every call (a hidden caller comes as ""); only real numbers are read.
            numbers = [n for n in raw if isinstance(n, str) and n.isdigit() and len(n) <= 15]
            parts: list[tuple[str, Any]] = [("integer", len(raw))]
            parts += [("number", GenericDigits(n).encode()) for n in numbers[:MAX_VARIABLE_NUMBERS]]
            its = ops.InformationToSend(
                extra={
                    "messageID": (
                        "variableMessage",
                        {"elementaryMessageID": a["missed_calls"], "variableParts": parts},
                    )
                }
            )
            self.phase = Phase.SC_MENU
            return [
                Send(
                    (
                        ops.PlayAnnouncement(its, request_announcement_complete=False),
                        prompt((a["selfcare_menu"],), s=self.s),
                    ),
                    self.srf_leg,
                )
            ]
        return self._menu(a["done"] if ev.ok else a["invalid"])

    def _on_failed(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpFailed)
        if ev.error == "improperCallerResponse":
            if self.phase in (Phase.PIN, Phase.SC_LOGIN):
                return self._wrong_pin()
            return self._menu_retry()
        return self._release(at, f"prompt-failed:{ev.error}")

    def _after_announcement(self, at: dt.datetime) -> list[Action]:
        if self.then_retrieval:
            self.then_retrieval = False
            return self._leave_srf((self._connect_plain(self.s.voicemail_retrieval),), "voicemail")
        return super()._after_announcement(at)

    def _connect_plain(self, dest: str) -> ops.Connect:
        return ops.Connect((called_number(dest),))

    def _fire(self, event: CallEvent, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        row = SELFCARE_FSM.get(self.phase, event)
        return self._illegal(ev) if row is None else row.action(self, ev, now, at)

    known: bool = False
    login: bool = False  # the caller gave the mobile number (another phone)
    then_retrieval: bool = False
    service: str = "missed-call"
    choice: str = ""
    bl_op: str = "blacklist_add"
    pending: str = ""


_S = SelfcareSession
_P = Phase
_CE = CallEvent
_PHASES = (
    _P.IDLE,
    _P.WAIT_ASSIST,
    _P.ANNOUNCING,
    _P.SC_LOGIN,
    _P.PIN,
    _P.SC_MENU,
    _P.SC_CHOICE,
    _P.SC_NUMBER,
    _P.SC_NEW_PIN,
    _P.SC_WAIT,
)

SELFCARE_FSM: TransitionTable[Phase, CallEvent, SessionAction[SelfcareSession]] = TransitionTable(
    "self-service session",
    {
        **common_rows(SelfcareSession, _PHASES),
        (_P.WAIT_ASSIST, _CE.ASSIST_REQUEST_INSTRUCTIONS): Transition(_S._on_assist),
        (_P.WAIT_ASSIST, _CE.GUARD_TIMER_EXPIRY): Transition(_S._on_assist_timeout, _P.DONE),
        (_P.ANNOUNCING, _CE.SPECIALIZED_RESOURCE_REPORT): Transition(_S._on_srr, _P.DONE),
        (_P.ANNOUNCING, _CE.OPERATION_FAILED): Transition(_S._on_srr, _P.DONE),
        (_P.ANNOUNCING, _CE.GUARD_TIMER_EXPIRY): Transition(_S._on_srr, _P.DONE),
        (_P.SC_LOGIN, _CE.RECEIVED_INFORMATION): Transition(_S._on_login_number),
        (_P.SC_LOGIN, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.PIN, _CE.RECEIVED_INFORMATION): Transition(_S._on_pin),
        (_P.PIN, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.SC_MENU, _CE.RECEIVED_INFORMATION): Transition(_S._on_menu),
        (_P.SC_MENU, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.SC_CHOICE, _CE.RECEIVED_INFORMATION): Transition(_S._on_choice),
        (_P.SC_CHOICE, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.SC_NUMBER, _CE.RECEIVED_INFORMATION): Transition(_S._on_number),
        (_P.SC_NUMBER, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.SC_NEW_PIN, _CE.RECEIVED_INFORMATION): Transition(_S._on_new_pin),
        (_P.SC_NEW_PIN, _CE.OPERATION_FAILED): Transition(_S._on_failed),
        (_P.SC_WAIT, _CE.SERVICE_ANSWER): Transition(_S._on_answer),
    },
)
"""The self-service session: the call session's SRF machinery with the owner's menus."""
