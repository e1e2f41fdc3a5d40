"""The one asyncio driver (scp.adapters.driver) around a core, with the clock in the test's hand.

A small fake core stands in for the protocol cores: it records its inputs and returns the outputs
the test scripts. The clock is a variable; a timer due "now" fires on the loop's next turn, so
nothing here waits for real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest

from scp.adapters.driver import CoreDriver


class FakeCore:
    """A core whose next deadline and timer outputs the test sets."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.timer_calls: list[float] = []
        self.timer_outputs: list[str] = []
        self.queued: list[str] = []  # for pull

    def next_deadline(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> Iterable[str]:
        self.timer_calls.append(now)
        self.deadline = None
        out, self.timer_outputs = self.timer_outputs, []
        return out

    def pull(self) -> list[str]:
        out, self.queued = self.queued, []
        return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Log:
    """Records what the driver logs as failures."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, dict[str, Any]]] = []

    def exception(self, event: str, **kw: Any) -> None:
        self.failures.append((event, kw))


async def turn(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def make(**kw: Any) -> tuple[CoreDriver[str], FakeCore, list[str], Clock, Log]:
    core, seen, clock, log = FakeCore(), [], Clock(), Log()
    handle = kw.pop("handle", seen.append)
    driver: CoreDriver[str] = CoreDriver(core, handle, clock=clock, logger=log, **kw)
    return driver, core, seen, clock, log


async def test_outputs_go_to_the_handler_in_order_with_now_from_the_clock() -> None:
    driver, _core, seen, clock, _ = make()
    nows: list[float] = []

    def step(now: float) -> list[str]:
        nows.append(now)
        return ["a", "b"]

    driver.feed(step)
    clock.now = 101.5
    driver.feed(step)
    assert seen == ["a", "b", "a", "b"] and nows == [100.0, 101.5]


async def test_an_input_fed_by_a_handler_queues_behind_the_batch() -> None:
    order: list[str] = []
    driver: CoreDriver[str]

    def handle(o: str) -> None:
        order.append(o)
        if o == "begin":  # a TC-user answering at once
            driver.feed(lambda now: ["answer"])

    driver, *_ = make(handle=handle)
    driver.feed(lambda now: ["begin", "log"])
    assert order == ["begin", "log", "answer"]


async def test_a_failing_handler_costs_no_other_output() -> None:
    seen: list[str] = []

    def handle(o: str) -> None:
        if o == "bad":
            raise RuntimeError("boom")
        seen.append(o)

    driver, _core, _, _clock, log = make(handle=handle)
    driver.feed(lambda now: ["abort-1", "bad", "abort-2"])
    assert seen == ["abort-1", "abort-2"]
    assert log.failures == [("output handling failed", {"output": "str"})]


async def test_a_failing_input_is_logged_with_its_context_and_the_timer_still_armed() -> None:
    driver, core, seen, _clock, log = make()
    core.deadline = 105.0

    def step(now: float) -> list[str]:
        raise ValueError("bug")

    driver.feed(step, "message handling", assoc=3, data=b"\x01\x02")
    assert seen == [] and log.failures == [
        ("message handling failed", {"assoc": 3, "data": "0102"})
    ]
    assert driver.timer_at == 105.0
    driver.close()


async def test_the_timer_runs_the_core_at_its_deadline_and_drains_it() -> None:
    driver, core, seen, clock, _ = make()
    loop = asyncio.get_running_loop()
    core.deadline = 100.5
    driver.feed(lambda now: [])
    timer = driver._timer
    assert driver.timer_at == 100.5 and core.timer_calls == []
    assert timer is not None and timer.when() == pytest.approx(loop.time() + 0.5, abs=0.25)
    await turn()
    assert core.timer_calls == []  # not due yet
    # Due (the test's clock): the loop's call is what the timer would make.
    clock.now = 100.5
    core.timer_outputs = ["expired"]
    timer.cancel()
    driver._on_timer()
    assert core.timer_calls == [100.5] and seen == ["expired"]
    assert driver.timer_at is None  # the core has nothing more armed


async def test_a_due_timer_fires_on_the_next_turn_of_the_loop() -> None:
    driver, core, seen, _clock, _ = make()
    core.deadline = 100.0  # due at once: armed with no delay
    core.timer_outputs = ["expired"]
    driver.feed(lambda now: [])
    await turn()
    assert core.timer_calls == [100.0] and seen == ["expired"]


async def test_a_timer_that_wakes_early_still_hands_the_core_its_deadline() -> None:
    driver, core, _seen, clock, _ = make()
    core.deadline = 100.0  # due already: armed with no delay
    driver.feed(lambda now: [])
    clock.now = 99.999  # the loop's clock a hair behind the deadline
    await turn()
    assert core.timer_calls == [100.0]


async def test_an_earlier_timer_is_kept_a_later_one_replaced() -> None:
    driver, core, _seen, clock, _ = make()
    loop = asyncio.get_running_loop()
    core.deadline = 160.0
    driver.feed(lambda now: [])
    first = driver._timer
    core.deadline = 170.0  # an idle timer restarted: later, so the armed timer stays
    driver.feed(lambda now: [])
    assert driver._timer is first and driver.timer_at == 160.0
    core.deadline = 130.0  # earlier: re-armed
    driver.feed(lambda now: [])
    assert driver._timer is not first and driver.timer_at == 130.0
    assert first is not None and first.cancelled()
    assert driver._timer is not None and driver._timer.when() == pytest.approx(
        loop.time() + 30.0, abs=1.0
    )
    # It fires for a deadline that moved later meanwhile: the core finds nothing due, and the
    # timer is armed again for the new one.
    core.deadline = 180.0
    clock.now = 130.0
    driver._timer.cancel()
    driver._on_timer()
    assert core.timer_calls == [130.0] and driver.timer_at is None  # handle_timer cleared it
    driver.close()


async def test_pull_drains_events_and_after_runs_once_per_drain() -> None:
    flushed: list[list[str]] = []
    seen: list[str] = []
    driver: CoreDriver[str]
    core = FakeCore()

    def handle(o: str) -> None:
        seen.append(o)
        if o == "deliver":  # a handler answering straight into the core
            core.queued.append("answered")

    driver = CoreDriver(
        core, handle, clock=Clock(), pull=core.pull, after=lambda: flushed.append(list(seen))
    )
    core.queued = ["bound", "deliver"]
    driver.feed(lambda now: None)  # a pull-style input returns nothing
    assert seen == ["bound", "deliver", "answered"] and flushed == [seen]


async def test_drain_soon_carries_a_burst_out_once_on_the_next_turn() -> None:
    core = FakeCore()
    flushed: list[int] = []
    driver: CoreDriver[str] = CoreDriver(
        core, lambda o: None, clock=Clock(), pull=core.pull, after=lambda: flushed.append(1)
    )
    for i in range(3):
        core.queued.append(f"submit-{i}")
        driver.drain_soon()
    assert flushed == []
    await turn()
    assert flushed == [1] and core.queued == []


async def test_a_closed_driver_arms_nothing_but_still_carries_outputs_out() -> None:
    driver, core, seen, _clock, _ = make()
    core.deadline = 150.0
    driver.feed(lambda now: [])
    driver.close()
    assert driver.timer_at is None
    driver.feed(lambda now: ["last"])
    assert seen == ["last"] and driver.timer_at is None
