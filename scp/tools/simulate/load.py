"""Load: the busy call flow N times, C at once (``mcn-scp simulate --calls N --concurrency C``),
reported as calls per second and answer latencies.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from scp.tools.simulate.network import (
    Simulator,
)

__all__ = [
    "LoadReport",
    "run_load",
]


@dataclass
class LoadReport:
    """Rates and latencies of a load run (``--calls N --concurrency C``)."""

    calls: int
    concurrency: int
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        s = sorted(self.latencies)

        def pct(p: float) -> float:
            if not s:
                return 0.0
            return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 3)

        return {
            "type": "load",
            "calls": self.calls,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed, 3),
            "calls_per_s": round(self.calls / self.elapsed, 1) if self.elapsed else 0.0,
            "first_answer_ms": {
                "p50": pct(50),
                "p95": pct(95),
                "p99": pct(99),
                "max": round(s[-1] * 1000, 3) if s else 0.0,
            },
            "outcomes": self.outcomes,
        }


async def run_load(
    sim: Simulator, *, calls: int, concurrency: int, scenario: str = "busy"
) -> LoadReport:
    """``calls`` calls of ``scenario``, ``concurrency`` at a time, distinct callers."""
    rep = LoadReport(calls=calls, concurrency=concurrency)
    sem = asyncio.Semaphore(max(1, concurrency))
    base = int(sim.numbers.caller)

    async def one(i: int) -> None:
        async with sem:
            r = await sim.call(scenario, caller=str(base + i))
        if r.ok:
            rep.ok += 1
        else:
            rep.failed += 1
        rep.outcomes[r.outcome] = rep.outcomes.get(r.outcome, 0) + 1
        if r.first_answer is not None:
            rep.latencies.append(r.first_answer)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(calls)))
    rep.elapsed = time.monotonic() - t0
    return rep
