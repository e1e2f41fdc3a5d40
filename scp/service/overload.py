"""Overload control the IN way: CallGap toward the switches (TS 29.078 §8.4 CallGap, CAP v3/v4;
ETS 300 374-1 §6.1 callGap, INAP CS-1; Q.1214 §4.2.2.5 "SCF overload" for the model).

Above any ``[overload]`` limit (dialogues open, InitialDP-to-answer time, outbox age) the SCP
is overloaded; the answer to each new InitialDP then carries a CallGap invoke (class 4, no
answer) asking the switch to let through at most one call per ``gap_interval`` ms of that
service key for ``gap_duration`` s, controlType sCPOverloaded. A switch is asked again only
after half the duration (its gap is still running). Once every measure is below
``resume_ratio`` of its limit (hysteresis: no flapping at the edge) the SCP stops asking and
the switches' gaps run out by themselves. CAMEL phase 2 (CAP v2) has no CallGap: those
dialogues are answered as usual. An INAP CS-1 switch gets the same CallGap in its own syntax
(INAP's codec), under the standard's application contexts only.

Pure: measures and ``now`` are passed in; the node feeds them and sends what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scp.codecs import cap, inap
from scp.codecs import ops as O
from scp.codecs.appctx import Protocol, lookup
from scp.codecs.errors import CodecError
from scp.codecs.opcodec import OperationCodec
from scp.config import OverloadConfig
from scp.primitives import ApplicationContext, Invoke, TcContinue, TcEnd, TcPrimitive

__all__ = ["CALL_GAP_INVOKE_ID", "Measures", "OverloadControl"]

# the invoke ID of our CallGap in an InitialDP's dialogue: the call user numbers its own
# invokes from 1 up, a handful per dialogue; this one stays out of their way
CALL_GAP_INVOKE_ID = 127
# switches (by point code) remembered for "asked recently"; past it the memory starts over
MAX_SWITCHES = 10_000


@dataclass(frozen=True, slots=True)
class Measures:
    """What the limits are compared with."""

    dialogues: int
    answer_latency: float
    outbox_age: float


class OverloadControl:
    """The overload state with hysteresis, and the CallGap to add to an InitialDP's answer."""

    def __init__(self, cfg: OverloadConfig) -> None:
        self.cfg = cfg
        self.overloaded = False
        self.outbox_age = 0.0  # the last read (the node reads it every check_interval)
        self.episodes = 0  # times the node became overloaded
        self.gaps_sent = 0
        self._asked: dict[int | None, float] = {}  # switch point code -> when it was asked

    def _over(self, m: Measures, ratio: float) -> bool:
        c = self.cfg
        return bool(
            (c.max_dialogues and m.dialogues > c.max_dialogues * ratio)
            or (c.max_answer_latency and m.answer_latency > c.max_answer_latency * ratio)
            or (c.max_outbox_age and m.outbox_age > c.max_outbox_age * ratio)
        )

    def update(self, m: Measures) -> bool | None:
        """Compare ``m`` with the limits; True when the node became overloaded now, False when
        it recovered now, None when nothing changed."""
        if not self.cfg.enabled:
            return None
        if not self.overloaded and self._over(m, 1.0):
            self.overloaded = True
            self.episodes += 1
            return True
        if self.overloaded and not self._over(m, self.cfg.resume_ratio):
            self.overloaded = False
            self._asked.clear()
            return False
        return None

    def call_gap(
        self,
        answer: TcPrimitive,
        *,
        ac: ApplicationContext | None,
        service_key: int,
        switch: int | None,
        now: float,
    ) -> TcPrimitive:
        """``answer`` (the SCP's answer to an InitialDP) with a CallGap added when overloaded,
        the dialogue's context has CallGap, and ``switch`` was not asked within half the
        duration; else ``answer`` unchanged."""
        if not self.overloaded or not isinstance(answer, (TcContinue, TcEnd)):
            return answer
        known = lookup(ac) if ac is not None else None
        if known is None:
            return answer
        codec: OperationCodec
        if known.protocol is Protocol.INAP:
            codec = inap.CODEC
        elif known.protocol is Protocol.CAP and known.version >= 3:
            codec = cap.CODEC
        else:
            return answer
        asked = self._asked.get(switch)
        if asked is not None and now - asked < self.cfg.gap_duration / 2:
            return answer
        gap = O.CallGap(service_key, self.cfg.gap_duration, self.cfg.gap_interval, 0)
        try:
            code, param = codec.encode_arg(gap, ac=ac)
        except CodecError:
            return answer
        if len(self._asked) >= MAX_SWITCHES:
            self._asked.clear()
        self._asked[switch] = now
        self.gaps_sent += 1
        invoke = Invoke(CALL_GAP_INVOKE_ID, code, param, op_class=4)
        return replace(answer, components=(invoke, *answer.components))
