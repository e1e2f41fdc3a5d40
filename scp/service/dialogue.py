"""The TC-user side of the node: routes each TCAP dialogue to the service that owns it.

TC indications (Q.771 §3.1) arrive here; a TC-BEGIN is offered to each registered
:class:`DialogueUser` in turn (call control for CAP/INAP, MAP for subscriber presence...) and the
first that accepts the application context owns the dialogue until it ends. A dialogue opened in
an application context nobody serves is refused with an AARE carrying
``application-context-name-not-supported`` (Q.774 §3.2.2.1), so the peer can fall back.

:class:`ContinueUser` is the stack's own call-control user, for a node wired with no service
(tests, benchmarks; ``scp.app.Node`` without TC-users): it answers a CAP (29.078) or INAP CS-1
(ETS 300 374-1) InitialDP with a Continue in a TC-END, in the context the peer proposed, and
rejects any other operation (Q.773 §3.2.2.1 invoke problem ``unrecognizedOperation``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from scp.codecs.opcodes import CapOpcode
from scp.primitives import (
    ApplicationContext,
    DialogueDiagnostic,
    DialogueResult,
    Invoke,
    ProblemType,
    Reject,
    TcBegin,
    TcEnd,
    TcPAbort,
    TcPrimitive,
    TcUAbort,
)

# Application contexts (ARCHITECTURE §4; 3GPP TS 29.078 §6.1.1, ETS 300 374-1 §7).
AC_CAP_V2_GSMSSF_SCF: ApplicationContext = (0, 4, 0, 0, 1, 0, 50, 1)
AC_CAP_V3_GSMSSF_SCF: ApplicationContext = (0, 4, 0, 0, 1, 21, 3, 4)
AC_CAP_V4_GSMSSF_SCF: ApplicationContext = (0, 4, 0, 0, 1, 23, 3, 4)
AC_INAP_CS1_SSF_SCF: ApplicationContext = (0, 4, 0, 1, 1, 1, 0, 0)

CALL_CONTROL_ACS: Mapping[ApplicationContext, str] = {
    AC_CAP_V2_GSMSSF_SCF: "cap2",
    AC_CAP_V3_GSMSSF_SCF: "cap3",
    AC_CAP_V4_GSMSSF_SCF: "cap4",
    AC_INAP_CS1_SSF_SCF: "inap",
}

INVOKE_PROBLEM_UNRECOGNIZED_OPERATION = 1  # Q.773 §3.2.2.1 InvokeProblem

TcSend = Callable[[TcPrimitive], None]
"""Emit a TC request now (used by users that answer later, after a database round trip)."""


class DialogueUser(Protocol):
    """A TC-user for one family of application contexts."""

    def accepts(self, begin: TcBegin) -> bool:
        """Whether this user takes the dialogue this TC-BEGIN opens."""
        ...

    def handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        """React to an indication of a dialogue this user owns; return requests to send now.

        A user that must wait (database, timers) returns ``[]`` and later calls the ``TcSend``
        it was built with. It must never raise: a failure becomes a protocol answer.
        """
        ...


_ENDING = (TcEnd, TcUAbort, TcPAbort)


class Dispatcher:
    """Owns the dialogue -> user map; refuses contexts no user serves."""

    def __init__(
        self,
        users: list[DialogueUser],
        *,
        screen: Callable[[TcBegin], TcPrimitive | None] | None = None,
    ) -> None:
        self.users = users
        # SS7 screening (scp.service.screening): a TC-BEGIN it answers reaches no user
        self.screen = screen
        self._owner: dict[int, DialogueUser] = {}

    def bind(self, dialogue_id: int, user: DialogueUser) -> None:
        """Route a dialogue we open ourselves (e.g. MAP toward the HLR) to ``user``."""
        self._owner[dialogue_id] = user

    def release(self, dialogue_id: int) -> None:
        """Forget a dialogue the user ended (TC-END / TC-U-ABORT request)."""
        self._owner.pop(dialogue_id, None)

    @property
    def open_dialogues(self) -> int:
        return len(self._owner)

    def handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        """A TC indication: a TC-BEGIN to the first user that takes it (or refused in an
        AARE), anything else to the owner of its dialogue."""
        did = ind.dialogue_id
        if type(ind) is TcBegin:
            if self.screen is not None and (refused := self.screen(ind)) is not None:
                return [refused]
            for candidate in self.users:
                if candidate.accepts(ind):
                    self._owner[did] = candidate
                    return self._track(candidate.handle(ind))
            return [
                TcUAbort(
                    dialogue_id=did,
                    application_context=ind.application_context,
                    result=DialogueResult.REJECT_PERMANENT,
                    diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                )
            ]
        user = self._owner.get(did)
        if isinstance(ind, _ENDING):
            self._owner.pop(did, None)
        if user is None:
            # Indications for dialogues nobody owns (already closed by us): nothing to answer,
            # TCAP itself answers unknown transactions with a P-Abort.
            return []
        return self._track(user.handle(ind))

    def _track(self, reqs: list[TcPrimitive]) -> list[TcPrimitive]:
        for r in reqs:
            if isinstance(r, (TcEnd, TcUAbort)):
                self._owner.pop(r.dialogue_id, None)
        return reqs


class ContinueUser:
    """Call control of the stack alone: InitialDP -> Continue in TC-END; anything else is
    rejected."""

    def accepts(self, begin: TcBegin) -> bool:
        return begin.application_context in CALL_CONTROL_ACS

    def handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        if type(ind) is not TcBegin:
            return []
        answer: list[Invoke | Reject] = []
        for comp in ind.components:
            if type(comp) is not Invoke:
                continue
            if comp.opcode == CapOpcode.INITIAL_DP:  # INAP has the same codes (Q.1218)
                # Continue has no argument; class 4 (no result expected), our own invoke ID space.
                answer.append(Invoke(invoke_id=1, opcode=CapOpcode.CONTINUE, op_class=4))
            else:
                answer.append(
                    Reject(
                        invoke_id=comp.invoke_id,
                        problem_type=ProblemType.INVOKE,
                        problem_code=INVOKE_PROBLEM_UNRECOGNIZED_OPERATION,
                    )
                )
        return [
            TcEnd(
                dialogue_id=ind.dialogue_id,
                application_context=ind.application_context,
                components=tuple(answer),
            )
        ]
