"""Fakes of the ports in ``scp.service`` for unit tests of pure logic.

A fake here stands in for a real component behind one of our ports (``typing.Protocol`` classes
in ``scp.service``) and records what it was asked. It serves tests of the logic in front of the
port (the sender's window, backoff and row claiming), never a test of the component itself: the
SMS path is tested against the real SMSC in tests/smppd. In-memory stores that the package
ships (``scp.service.outbox.InMemoryOutbox``) are used from there, not copied here.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from scp.service.outbox import OutboundSms


class FakeGateway:
    """The SMS gateway port (``scp.service.outbox.SmsGatewayPort``) without an SMSC.

    Every submit is recorded (``calls`` in order, ``submits`` per SMS id) with the greatest
    number in flight at once. Its outcome comes from ``script`` (one entry per submit: an
    exception to raise, or None = accepted; accepted once the script runs out), then from
    ``fail``, called with the SMS and free to raise. The message id is ``m<n>``, n counting
    submits from 1.
    """

    def __init__(
        self,
        script: list[BaseException | None] | None = None,
        *,
        fail: Callable[[OutboundSms], None] | None = None,
        delay: float = 0.001,
    ) -> None:
        self.script = list(script or [])
        self.fail = fail
        self.delay = delay  # a yield to the loop, so that submits overlap as on a real link
        self.ready = True
        self.calls: list[OutboundSms] = []
        self.submits: collections.Counter[int] = collections.Counter()
        self.concurrent = 0
        self.max_concurrent = 0

    async def submit(self, sms: OutboundSms) -> str:
        self.calls.append(sms)
        self.submits[sms.id] += 1
        mid = f"m{len(self.calls)}"
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.delay)
            outcome = self.script.pop(0) if self.script else None
            if outcome is not None:
                raise outcome
            if self.fail is not None:
                self.fail(sms)
            return mid
        finally:
            self.concurrent -= 1
