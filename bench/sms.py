"""SMS throughput: outbox -> OutboxSender -> SmppGateway -> real SMPP server, vs a bare smpplib loop.

Prints one JSON object. Both paths send the same submit_sm (GSM 7-bit, registered_delivery=1,
window 10; the sender
keeps another 10 queued in the gateway) to the same test SMSC (tests/smppd/server.js, npm smpp) in the same run, and both
answer the delivery receipts it sends back. The durable path is the node's own PostgreSQL outbox
(``scp.flows.outbox.build_outbox``: claims with FOR UPDATE SKIP LOCKED read ahead, marks
submitted and receipts recorded in group commits, presence hook included) on a private embedded
PostgreSQL with its default durability (fsync, synchronous_commit on), or ``$MCN_DATABASE_URL``;
the in-memory outbox is measured too, to show what the database costs. ``transactions`` is the
number of group commits the durable run needed. The clock stops when the last submit_sm_resp
arrived; the sender's stop then waits for the last marks to commit (checked: every row is
'submitted' or 'delivered').

    python bench/sms.py [--count 5000] [--window 10] [--rounds 3]

The gateway is the sans-I/O ESME session (scp/core/smpp_esme.py) under a thin asyncio adapter;
it builds and reads its PDUs with its own codec (scp/codecs/smpp_pdu.py: smpplib's octets and
field values, proven against smpplib in the tests), while the bare loop goes through smpplib's
generic codec for every PDU. So part of the durable path's speed is that codec;
``durable_vs_in_memory`` shows what the database costs on its own.

The bare loop sets TCP_NODELAY like the gateway does (without it smpplib stalls on Nagle and
delayed ACK at ~500 SMS/s). ``cpu_us_per_sms`` is this process's CPU time per SMS, the steadier
number on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import smpplib.client  # noqa: E402
import structlog  # noqa: E402

from scp.adapters.clock import utcnow  # noqa: E402
from scp.adapters.smpp import SmppGateway, SmppGatewayConfig  # noqa: E402
from scp.config import parse_config  # noqa: E402
from scp.flows.outbox import OutboxSender  # noqa: E402
from scp.service.outbox import InMemoryOutbox  # noqa: E402
from tests.integration.smppd import Smppd  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


TEXT = "Missed call: 8613800138000 called you 2 times, last at 18:05. Reply 1 to call back."


async def _pg_outbox(dsn: str, count: int, run: int):  # type: ignore[no-untyped-def]
    from scp.flows.outbox import build_outbox
    from scp.state.db import open_pool
    from scp.state.migrate import migrate

    pool = await open_pool(dsn, min_size=2, max_size=4)
    await migrate(pool)
    await pool.execute("TRUNCATE sms_outbox, sms_receipt")
    # queued as the service queues them, one row per notification with its idempotency key
    await pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, next_attempt_at)"
        " SELECT 'bench-' || $2::text || '-' || g, '86139' || lpad(g::text, 8, '0'), $1, $4"
        " FROM generate_series(1, $3) g",
        TEXT,
        str(run),
        count,
        utcnow(),
    )
    return pool, build_outbox(pool, parse_config(""))


async def durable(
    server: Smppd, count: int, window: int, dsn: str | None, run: int = 0
) -> dict[str, float]:
    pool = None
    if dsn is None:
        outbox = InMemoryOutbox()
        for i in range(count):
            outbox.enqueue(f"86139{i:08d}", TEXT, idempotency_key=f"bench-{i}", now=utcnow())
    else:
        pool, outbox = await _pg_outbox(dsn, count, run)
    gw = SmppGateway(
        SmppGatewayConfig(port=server.port, window=window), on_receipt=outbox.record_receipt
    )
    gw.start()
    await gw.wait_ready()
    sender = OutboxSender(
        outbox=outbox, gateway=gw, clock=utcnow, window=window, poll_interval=0.01
    )
    c0 = _cpu()
    t0 = time.perf_counter()
    task = asyncio.create_task(sender.run())
    while sender.submitted < count:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    cpu = _cpu() - c0
    sender.stop()
    await task
    await gw.stop()
    extra = {}
    if pool is not None:
        extra["transactions"] = outbox.transactions  # type: ignore[union-attr,attr-defined]
        submitted = await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status IN ('submitted', 'delivered')"
        )
        assert submitted == count, f"{submitted} of {count} rows marked submitted"
        await pool.close()
    return {
        "sms": count,
        "seconds": round(elapsed, 3),
        "sms_per_s": round(count / elapsed, 1),
        "cpu_us_per_sms": round(cpu / count * 1e6, 1),
        "max_inflight": gw.max_inflight,
        **extra,
    }


def bare(server: Smppd, count: int, window: int) -> dict[str, float]:
    client = smpplib.client.Client("127.0.0.1", server.port, allow_unknown_opt_params=True)
    done = 0

    def sent(pdu: object) -> None:
        nonlocal done
        done += 1

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(lambda pdu: None)
    client.connect()
    # the same socket option the gateway sets: without it Nagle + delayed ACK cap smpplib at
    # ~500 SMS/s on loopback and the comparison would flatter the gateway
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="mcn", password="secret")
    body = TEXT.encode("ascii")  # the text is plain ASCII letters: same octets as GSM 7-bit
    c0 = _cpu()
    t0 = time.perf_counter()
    submitted = 0
    while done < count:
        while submitted < count and submitted - done < window:
            client.send_message(
                source_addr_ton=3,
                source_addr="12599",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"86138{submitted:08d}",
                short_message=body,
                data_coding=0,
                registered_delivery=1,
            )
            submitted += 1
        client.read_once()
    elapsed = time.perf_counter() - t0
    cpu = _cpu() - c0
    client.unbind()
    client.disconnect()
    return {
        "sms": count,
        "seconds": round(elapsed, 3),
        "sms_per_s": round(count / elapsed, 1),
        "cpu_us_per_sms": round(cpu / count * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("smpp").setLevel(logging.ERROR)  # smpplib's per-client chatter
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    import os

    with tempfile.TemporaryDirectory() as d:
        dsn = os.environ.get("MCN_DATABASE_URL")
        embedded = None
        if not dsn:
            from scp.state.db import start_embedded, stop_embedded

            embedded = Path(d) / "pg"
            dsn = start_embedded(embedded)
        server = Smppd(Path(d) / "submits.jsonl")
        server.start()
        try:
            # warm every path up (node's JIT), then alternate; the best run of each is the one
            # least disturbed by whatever else the machine runs
            bare(server, 500, args.window)
            asyncio.run(durable(server, 500, args.window, dsn, run=-1))
            bares, durables, memory = [], [], []
            for r in range(args.rounds):
                bares.append(bare(server, args.count, args.window))
                durables.append(asyncio.run(durable(server, args.count, args.window, dsn, run=r)))
                memory.append(asyncio.run(durable(server, args.count, args.window, None)))
        finally:
            server.stop()
            if embedded is not None:
                stop_embedded(embedded)
    best_bare = max(bares, key=lambda r: r["sms_per_s"])
    best_durable = max(durables, key=lambda r: r["sms_per_s"])
    best_memory = max(memory, key=lambda r: r["sms_per_s"])
    print(
        json.dumps(
            {
                "bench": "sms",
                "window": args.window,
                "durable_outbox": "postgresql",
                "durable": best_durable,
                "in_memory_outbox": best_memory,
                "bare_smpplib": best_bare,
                "runs": {
                    "durable_sms_per_s": [r["sms_per_s"] for r in durables],
                    "in_memory_sms_per_s": [r["sms_per_s"] for r in memory],
                    "bare_sms_per_s": [r["sms_per_s"] for r in bares],
                },
                "durable_vs_bare": round(best_durable["sms_per_s"] / best_bare["sms_per_s"], 3),
                "durable_vs_in_memory": round(
                    best_durable["sms_per_s"] / best_memory["sms_per_s"], 3
                ),
                "targets": {"sms_per_s": 500, "durable_vs_bare": 0.8},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
