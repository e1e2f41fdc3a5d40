"""One asyncio driver for every sans-I/O core: inputs and timers in, outputs out, one timer.

As aioquic's ``QuicConnectionProtocol`` runs a ``QuicConnection``: the core never sees the event
loop. :class:`CoreDriver` reads the clock, hands an input to the core as a function of ``now``,
gives every output the core produced to its owner's handler, in order, and keeps one asyncio
timer armed at the core's ``next_deadline()``; when it fires, ``handle_timer(now)`` runs and its
outputs are handled the same way. The node's SIGTRAN stack, the SMPP gateway's ESME session,
the simulator's peer and live replay's ASP all run through it.

* Outputs are what an input returns and, for a core that queues them instead (the SMPP
  session's ``next_event()``), what ``pull`` drains. ``after`` runs once they are all handled
  (the SMPP gateway writes the session's bytes there, in one write).
* A handler may feed the core again (a TC-user answering a TC-BEGIN at once): that input runs at
  once and its outputs queue behind the batch being handled, so outputs are handled in the
  order the inputs came.
* An output whose handler fails is logged and costs no other output (the idle-timer aborts of
  many dialogues come in one batch; each must still reach its switch). An input that raises is
  logged and the timer still re-armed: the cores answer bad input themselves, this is a net.
* A timer already armed no later than the next deadline is kept: it fires, the core finds
  nothing due, and the timer is armed again. A deadline that keeps moving later (an idle timer
  restarted by every message) so costs no cancel and re-arm per input. ``handle_timer`` is given
  at least the deadline it was armed for, since the loop may wake a hair early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

import structlog

__all__ = ["CoreDriver", "TimedCore"]

O = TypeVar("O")  # noqa: E741 - the output type of the core, as in the cores' unions
O_co = TypeVar("O_co", covariant=True)

log = structlog.get_logger("scp.driver")


class TimedCore(Protocol[O_co]):
    """What the driver needs of a core besides its inputs: when to run it next, and how."""

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> Iterable[O_co] | None: ...


Step = Callable[[float], Iterable[O] | None]
"""One input to the core, as a function of ``now``; returns the outputs (None: see ``pull``)."""


class CoreDriver(Generic[O]):
    """Runs one sans-I/O core on the running asyncio loop (see the module doc)."""

    __slots__ = (
        "core",
        "_handle",
        "_clock",
        "_pull",
        "_after",
        "_log",
        "_pending",
        "_draining",
        "_timer",
        "_timer_at",
        "_loop",
        "_soon",
        "_closed",
    )

    def __init__(
        self,
        core: TimedCore[O],
        handle: Callable[[O], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        pull: Callable[[], Iterable[O]] | None = None,
        after: Callable[[], None] | None = None,
        logger: Any = None,
    ) -> None:
        self.core = core
        self._handle = handle
        self._clock = clock
        self._pull = pull
        self._after = after
        self._log = logger if logger is not None else log
        self._pending: list[O] = []
        self._draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._soon = False
        self._closed = False

    # -- inputs --------------------------------------------------------------------------------

    def feed(self, step: Step[O], what: str = "input", **context: object) -> None:
        """Run one input, ``step(now)``, and carry out everything the core produced."""
        try:
            outputs = step(self._clock())
        except Exception:
            self._log.exception(f"{what} failed", **_loggable(context))
            outputs = None
        self._drain(outputs)

    def drain(self) -> None:
        """Carry out what the core produced without an input through the driver (a pull-style
        core called directly, e.g. a submit whose reference the caller needs at once)."""
        self._drain(None)

    def drain_soon(self) -> None:
        """Drain once on the next loop iteration: what this iteration's direct calls produced
        leaves together (one write for a burst of submits)."""
        if not self._soon:
            self._soon = True
            self._running_loop().call_soon(self._drain_now)

    def close(self) -> None:
        """Stop the timer for good; inputs still run, but nothing is armed any more."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def timer_at(self) -> float | None:
        """The deadline the armed timer is for, if one is armed."""
        return self._timer_at if self._timer is not None else None

    # -- carrying outputs out --------------------------------------------------------------------

    def _drain_now(self) -> None:
        self._soon = False
        self._drain(None)

    def _drain(self, outputs: Iterable[O] | None) -> None:
        if outputs is not None:
            self._pending.extend(outputs)
        pull = self._pull
        if pull is not None:
            self._pending.extend(pull())
        if self._draining:
            return  # fed from a handler: the outer drain takes these in their turn
        self._draining = True
        handle = self._handle
        try:
            while self._pending:
                batch = self._pending
                self._pending = []
                for o in batch:
                    try:
                        handle(o)
                    except Exception:
                        self._log.exception("output handling failed", output=type(o).__name__)
                if pull is not None:
                    self._pending.extend(pull())
        finally:
            self._draining = False
        if self._after is not None:
            try:
                self._after()
            except Exception:
                self._log.exception("output handling failed")
        self._arm()

    # -- the one timer ---------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _arm(self) -> None:
        if self._closed:
            return
        deadline = self.core.next_deadline()
        if deadline is None:
            return  # an armed timer fires once for nothing
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return
            timer.cancel()
        self._timer_at = deadline
        delay = deadline - self._clock()
        self._timer = self._running_loop().call_later(delay if delay > 0.0 else 0.0, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        due = self._timer_at
        core = self.core
        self.feed(lambda now: core.handle_timer(now if now > due else due), "timer handling")


def _loggable(context: dict[str, object]) -> dict[str, object]:
    """Bytes in a failing input's context go to the log as hex (formatted only on failure)."""
    return {k: v.hex() if isinstance(v, bytes) else v for k, v in context.items()}
