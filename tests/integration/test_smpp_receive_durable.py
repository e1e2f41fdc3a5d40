"""Nothing lost on the SMPP receive side ("SMSC or database outages delay, never drop").

Against the real third-party test SMSC (npm ``smpp``, tests/smppd), which logs every
deliver_sm_resp it gets (status, time) and delivers again what was answered with an error:

* an MO SMS is answered (deliver_sm_resp ESME_ROK) only after its ``sms_mo`` row committed;
  its command failing leaves the row unhandled, and the MO re-scan answers it later with
  exactly one reply SMS and one CDR;
* a receipt whose recording fails is answered ESME_RX_T_APPN (0x64, SMPP 3.4 §5.1.3); the
  SMSC's redelivery is recorded and answered ESME_ROK only after that commit.

Every PDU the gateway emitted is checked by tshark's SMPP dissector.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.adapters.smpp import SmppGateway, SmppGatewayConfig
from scp.codecs.smpp_pdu import ESME_ROK, ESME_RX_T_APPN
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.flows.outbox import OutboxSender, build_outbox
from tests import tshark
from tests.dates import today
from tests.helpers import eventually
from tests.integration.smppd import Smppd, smppd_fixture, write_smpp_pcap

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

CFG = parse_config("[notify]\nlease = 5.0\n")
SUBSCRIBER = "8613912345077"


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-durable")


class Tap:
    """Every PDU the gateway sent or received, for the tshark check."""

    def __init__(self) -> None:
        self.pdus: list[tuple[str, bytes]] = []

    def __call__(self, direction: str, pdu: bytes) -> None:
        self.pdus.append((direction, pdu))


def check_pcap(tap: Tap, path: Path) -> None:
    pcap = write_smpp_pcap(tap.pdus, path)
    tshark.assert_clean(pcap, prefs=())


async def test_mo_answered_after_commit_and_failed_command_rescanned(
    clean_pool: asyncpg.Pool, smppd: Smppd, tmp_path: Path
) -> None:
    pool = clean_pool
    await prov.add_subscriber(
        pool, prov.Actor("cli", "t"), SUBSCRIBER, today=today(CFG), services=[]
    )
    ob = build_outbox(pool, CFG)
    ob.mo_retry_base = 0.2  # s: the re-scan test should not wait the production 5 s
    real_hook = ob.on_mo
    assert real_hook is not None
    hook_calls: list[float] = []

    async def flaky(conn: asyncpg.Connection, *args: Any) -> None:
        # runs after the MO row committed (its own transaction): the first attempt fails
        hook_calls.append(time.time())
        if len(hook_calls) == 1:
            raise RuntimeError("database trouble in the command")
        await real_hook(conn, *args)

    ob.on_mo = flaky
    tap = Tap()
    gw = SmppGateway(
        SmppGatewayConfig(host="127.0.0.1", port=smppd.port), on_mo=ob.record_mo, tap=tap
    )
    gw.start()
    await gw.wait_ready()
    before = len(smppd.delivers())
    try:
        assert smppd.send_mo(SUBSCRIBER, CFG.smpp.source_addr, "KT") == 1

        async def answered() -> bool:
            return len(smppd.delivers()) > before

        await eventually(answered, what="deliver_sm_resp for the MO", timeout=20)
        [resp] = smppd.delivers()[before:]
        assert (resp["kind"], resp["attempt"], resp["status"]) == ("mo", 1, ESME_ROK)
        # answered after the row committed: the hook (which runs after that commit) came first
        assert hook_calls and resp["resp_at"] >= hook_calls[0] - 0.005
        row = await pool.fetchrow("SELECT id, handled_at, attempts, last_error FROM sms_mo")
        assert row["handled_at"] is None and row["attempts"] == 1
        assert "database trouble" in row["last_error"]
        assert await pool.fetchval("SELECT count(*) FROM sms_outbox") == 0

        stop = asyncio.Event()
        rescan = asyncio.create_task(ob.run_mo_retry(stop, utcnow, interval=0.05))

        async def handled() -> bool:
            return bool(await pool.fetchval("SELECT handled_at IS NOT NULL FROM sms_mo"))

        try:
            await eventually(handled, what="the re-scan did not handle the MO", timeout=20)
            await asyncio.sleep(0.3)  # more re-scans: they must find nothing to do
        finally:
            stop.set()
            await rescan
        assert await ob.retry_mo(utcnow() + dt.timedelta(days=1)) == 0
    finally:
        await gw.stop()
    replies = await pool.fetch("SELECT idempotency_key, destination FROM sms_outbox")
    assert [(r["idempotency_key"], r["destination"]) for r in replies] == [
        (f"mo-reply:{row['id']}", SUBSCRIBER)
    ]
    assert (
        await pool.fetchval("SELECT count(*) FROM cdr WHERE call_ref = $1", f"mo:{row['id']}") == 1
    )
    assert len(hook_calls) == 2
    assert len(smppd.delivers()) == before + 1  # never answered with an error: no redelivery
    check_pcap(tap, tmp_path / "mo.pcap")


async def test_failed_receipt_answered_rx_t_appn_and_redelivery_recorded(
    clean_pool: asyncpg.Pool, smppd: Smppd, tmp_path: Path
) -> None:
    pool = clean_pool
    ob = build_outbox(pool, CFG)
    attempts: list[str] = []
    committed: list[float] = []

    def record(mid: str, stat: str, at: dt.datetime) -> Any:
        attempts.append(mid)
        if len(attempts) == 1:

            async def boom() -> None:
                raise RuntimeError("receipt commit failed")

            return boom()
        pending = ob.record_receipt(mid, stat, at)  # queued now: joins the group commit

        async def done() -> None:
            await pending
            committed.append(time.time())

        return done()

    tap = Tap()
    gw = SmppGateway(
        SmppGatewayConfig(host="127.0.0.1", port=smppd.port), on_receipt=record, tap=tap
    )
    gw.start()
    await gw.wait_ready()
    smppd.set_redeliver(max_attempts=5, delay_ms=100)
    before = len(smppd.delivers())
    sms_id = await ob.enqueue(
        "8613700000077", "receipt test", idempotency_key="rcpt-1", now=utcnow()
    )
    sender = OutboxSender(outbox=ob, gateway=gw, clock=utcnow, window=10, poll_interval=0.05)
    try:
        await sender.run_until_idle(idle_for=0.2, timeout=20)

        async def delivered() -> bool:
            return (
                await pool.fetchval("SELECT status FROM sms_outbox WHERE id = $1", sms_id)
                == "delivered"
            )

        await eventually(delivered, what="the redelivered receipt was not recorded", timeout=20)

        async def two_answers() -> bool:
            return len(smppd.delivers()) >= before + 2

        await eventually(two_answers, what="the SMSC did not see both deliver_sm_resp", timeout=20)
    finally:
        await gw.stop()
    got = [(d["kind"], d["attempt"], d["status"]) for d in smppd.delivers()[before:]]
    assert got == [("receipt", 1, ESME_RX_T_APPN), ("receipt", 2, ESME_ROK)]
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    # the ESME_ROK went out only after the receipt's commit
    assert committed and smppd.delivers()[before + 1]["resp_at"] >= committed[0] - 0.005
    assert gw.stats["deliver_sm_temp_error"] == 1 and gw.stats["deliver_sm_ok"] == 1
    check_pcap(tap, tmp_path / "receipt.pcap")


async def test_concatenated_mo_parts_answered_after_the_whole_is_stored(
    clean_pool: asyncpg.Pool, smppd: Smppd, tmp_path: Path
) -> None:
    """Both parts of a UCS-2 MO (UDH 050003 rr 02 0n) are answered only after the reassembled
    message committed; it is stored once and answered (help text) once."""
    from scp.codecs.sms import encode_sms

    pool = clean_pool
    ob = build_outbox(pool, CFG)
    stored: list[float] = []
    record_mo = ob.record_mo

    async def on_mo(*args: Any) -> None:
        await record_mo(*args)
        stored.append(time.time())

    tap = Tap()
    gw = SmppGateway(SmppGatewayConfig(host="127.0.0.1", port=smppd.port), on_mo=on_mo, tap=tap)
    gw.start()
    await gw.wait_ready()
    text = "你好" * 40  # 80 UCS-2 characters: 2 parts
    segs = encode_sms(text, concat_ref=7).segments
    assert len(segs) == 2
    before = len(smppd.delivers())
    try:
        assert (
            smppd.send_mo_parts(
                SUBSCRIBER, CFG.smpp.source_addr, [s.short_message for s in segs], 0x08
            )
            == 1
        )

        async def answered() -> bool:
            return len(smppd.delivers()) >= before + 2

        await eventually(answered, what="deliver_sm_resp for both parts", timeout=20)
    finally:
        await gw.stop()
    got = smppd.delivers()[before:]
    assert [(d["kind"], d["status"]) for d in got] == [("mo", ESME_ROK), ("mo", ESME_ROK)]
    assert stored and all(d["resp_at"] >= stored[0] - 0.005 for d in got)
    rows = await pool.fetch("SELECT text, handled_at FROM sms_mo")
    assert [r["text"] for r in rows] == [text] and rows[0]["handled_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox") == 1
    check_pcap(tap, tmp_path / "mo-concat.pcap")
