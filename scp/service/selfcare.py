"""Self-service IVR (主人菜单): the subscriber dials the access number and manages the service.

Pure, like :mod:`scp.service.calls` whose session machinery (SRF reached by ConnectToResource or
EstablishTemporaryConnection + AssistRequestInstructions, PlayAnnouncement /
PromptAndCollectUserInformation, endings, timers) it reuses. An InitialDP with the
``selfcare_service_key`` (TS 29.078 §6.1.2 / ETS 300 374-1 §6.1: serviceKey selects the
service logic) is answered with the resource; the PIN is collected (6-10 digits then '#'; the
account locks after 3 wrong tries, ops unlock it), then the menu:

  1 hear missed calls (count and up to four numbers as variable parts of one announcement)
  2 voicemail retrieval (Connect ``call.voicemail_retrieval``)
  3 service on / off: which service (:data:`SERVICE_DIGITS`), then 1 on, 2 off
  4 blacklist (1 add, 2 remove, then the number and '#')
  5 change PIN (the new PIN then '#')
  6 notification mode (1 one SMS per call, 2 digest, 3 none)
  0 operator

A caller whose own number is not an active subscriber's (the subscriber calls from another
phone) is asked for the mobile number first, then its PIN (系统提示用户输入移动号码和密码); a
wrong PIN, or a number that is no subscriber's, asks for the number again, and the PIN's
failures count against that number's lock like any other.

What the menu offers is declared against the self-service table of every channel
(:data:`MENU_FUNCTIONS`, :mod:`scp.service.parity`).

Every change goes through the same functions the CLI uses (``scp.service.provisioning``,
channel "ivr"): the session asks for them with :class:`ServiceRequest` and is told the outcome
with :class:`ServiceAnswer`; the executor does the asking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from scp.codecs import ops
from scp.codecs.numbers import GenericDigits
from scp.service.calls import (
    Action,
    Callee,
    CallSession,
    DigitsCollected,
    Event,
    OpFailed,
    Phase,
    Send,
    called_number,
    e164,
    prompt,
)

__all__ = [
    "MAX_VARIABLE_NUMBERS",
    "MENU_FUNCTIONS",
    "SERVICE_DIGITS",
    "SelfcareSession",
    "ServiceAnswer",
    "ServiceRequest",
]

MAX_VARIABLE_NUMBERS = 4  # VariableParts is SIZE (1..5) in CAP and INAP: the count + 4 numbers


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """Ask the provisioning layer: ``op`` for ``msisdn`` with ``arg``; answer with ServiceAnswer.

    ops: verify_pin(pin), missed_calls(), enable_service(service), disable_service(service),
    blacklist_add(number), blacklist_del(number), set_pin(pin), set_notify_mode(mode).
    """

    op: str
    msisdn: str
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """The outcome of a ServiceRequest: ``ok`` and a value (PinCheck outcome, numbers...)."""

    op: str
    ok: bool
    value: Any = None


MENU_MISSED, MENU_VOICEMAIL, MENU_SERVICE, MENU_BLACKLIST, MENU_PIN, MENU_NOTIFY, MENU_OPERATOR = (
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "0",
)
MENU_SERVICE_ON_OFF = "3+"  # menu 3, the service chosen: waiting for 1 on / 2 off
NOTIFY_MODES = {"1": "sms", "2": "digest", "3": "none"}
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
        now: float,  # type: ignore[override]
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

    def _on_pin(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
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

    def _on_login_number(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
        n = e164(ev.digits.rstrip("#C"))
        if n is None:
            return self._wrong_pin()
        self.callee = n
        self.phase = Phase.PIN
        return [Send((self._pin_prompt(),), self.srf_leg)]

    def _on_menu(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
        d = ev.digits[:1]
        a = self.s.ann
        self.choice = d
        if d == MENU_MISSED:
            return self._request("missed_calls")
        if d == MENU_VOICEMAIL:
            return self._leave_srf((self._connect_plain(self.s.voicemail_retrieval),), "voicemail")
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

    def _on_choice(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
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

    def _on_number(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
        n = e164(ev.digits.rstrip("#C"))
        if n is None:
            return self._menu_retry()
        return self._request(self.bl_op, n)

    def _on_new_pin(self, ev: DigitsCollected, now: float, at: dt.datetime) -> list[Action]:
        pin = ev.digits.rstrip("#C")
        if not (6 <= len(pin) <= 10 and pin.isdigit()):
            return self._menu_retry()
        return self._request("set_pin", pin)

    def _on_answer(self, ev: ServiceAnswer, now: float, at: dt.datetime) -> list[Action]:
        a = self.s.ann
        if ev.op == "verify_pin":
            if ev.value == "ok":
                self.tries = 1
                return self._menu()
            if ev.value == "wrong":
                return self._wrong_pin()
            return self._announce(a["pin_locked"])  # locked, or no PIN set: ops must act
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

    def _on_failed(self, ev: OpFailed, now: float, at: dt.datetime) -> list[Action]:
        if ev.error == "improperCallerResponse":
            if self.phase in (Phase.PIN, Phase.SC_LOGIN):
                return self._wrong_pin()
            return self._menu_retry()
        return self._release(at, f"prompt-failed:{ev.error}")

    def _connect_plain(self, dest: str) -> ops.Connect:
        return ops.Connect((called_number(dest),))

    def handle(
        self,
        ev: Event | ServiceAnswer,
        now: float,  # type: ignore[override]
        at: dt.datetime,
    ) -> list[Action | ServiceRequest]:
        return super().handle(ev, now, at)  # type: ignore[arg-type,return-value]

    known: bool = False
    login: bool = False  # the caller gave the mobile number (another phone)
    choice: str = ""
    service: str = "missed-call"
    bl_op: str = "blacklist_add"
    pending: str = ""


_S = SelfcareSession
SELFCARE_TRANSITIONS = {
    (Phase.WAIT_ASSIST, "AssistRequestInstructions"): CallSession._on_assist,
    (Phase.ANNOUNCING, "SpecializedResourceReport"): CallSession._on_srr,
    (Phase.ANNOUNCING, "OpFailed"): CallSession._on_announcement_failed,
    (Phase.SC_LOGIN, "DigitsCollected"): _S._on_login_number,
    (Phase.SC_LOGIN, "OpFailed"): _S._on_failed,
    (Phase.PIN, "DigitsCollected"): _S._on_pin,
    (Phase.PIN, "OpFailed"): _S._on_failed,
    (Phase.SC_MENU, "DigitsCollected"): _S._on_menu,
    (Phase.SC_MENU, "OpFailed"): _S._on_failed,
    (Phase.SC_CHOICE, "DigitsCollected"): _S._on_choice,
    (Phase.SC_CHOICE, "OpFailed"): _S._on_failed,
    (Phase.SC_NUMBER, "DigitsCollected"): _S._on_number,
    (Phase.SC_NUMBER, "OpFailed"): _S._on_failed,
    (Phase.SC_NEW_PIN, "DigitsCollected"): _S._on_new_pin,
    (Phase.SC_NEW_PIN, "OpFailed"): _S._on_failed,
    (Phase.SC_WAIT, "ServiceAnswer"): _S._on_answer,
}
"""(phase, event) -> handler of the self-service session."""

SelfcareSession.table = SELFCARE_TRANSITIONS  # type: ignore[assignment]
