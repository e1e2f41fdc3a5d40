"""SmppGateway and OutboxSender against a real third-party SMPP server (npm smpp, server.js).

What the SMSC saw is read from its own log (decoded by node-smpp, not by us): data_coding,
esm_class, UDH and the reassembled text; every PDU we emitted is also checked by tshark's
SMPP dissector.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from scp.adapters.clock import utcnow
from scp.adapters.smpp import SmppGateway, SmppGatewayConfig
from scp.flows.outbox import OutboxSender
from scp.service.outbox import (
    InMemoryOutbox,
    OutboundSms,
    RetryPolicy,
    SmppLinkError,
    SmppPermanentError,
    SmppTemporaryError,
)
from tests import tshark
from tests.helpers import eventually
from tests.integration.smppd import Smppd, smppd_fixture, write_smpp_pcap

pytestmark = pytest.mark.integration

CHINESE = "您好,用户13800138000于11月25日18时呼叫您2次,请回电!"
_ids = itertools.count(1)
_dest = itertools.count(8613900000100)


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory)


def config(server: Smppd, **kw: object) -> SmppGatewayConfig:
    base: dict[str, object] = dict(
        host="127.0.0.1",
        port=server.port,
        system_id="mcn",
        password="secret",
        source_addr="12599",
        window=10,
        reconnect_min=0.05,
        reconnect_max=0.5,
        throttle_min=0.05,
        throttle_max=0.4,
    )
    base.update(kw)
    return SmppGatewayConfig(**base)  # type: ignore[arg-type]


def sms(text: str, destination: str | None = None) -> OutboundSms:
    return OutboundSms(next(_ids), f"k{next(_ids)}", destination or str(next(_dest)), text, 1)


class Recorder:
    def __init__(self) -> None:
        self.receipts: list[tuple[str, str, datetime]] = []
        self.mo: list[tuple[str, str, str, datetime]] = []
        self.pdus: list[tuple[str, bytes]] = []

    def on_receipt(self, mid: str, stat: str, at: datetime) -> None:
        self.receipts.append((mid, stat, at))

    async def on_mo(self, source: str, dest: str, text: str, at: datetime) -> None:
        self.mo.append((source, dest, text, at))

    def tap(self, direction: str, pdu: bytes) -> None:
        self.pdus.append((direction, pdu))


async def started(server: Smppd, rec: Recorder, **kw: object) -> SmppGateway:
    gw = SmppGateway(config(server, **kw), on_receipt=rec.on_receipt, on_mo=rec.on_mo, tap=rec.tap)
    gw.start()
    await gw.wait_ready()
    return gw


def check_pcap(rec: Recorder, tmp_path: Path, min_frames: int) -> None:
    pcap = write_smpp_pcap(rec.pdus, tmp_path / "smpp.pcap")
    tshark.assert_clean(pcap, prefs=())
    cmds = tshark.fields(pcap, ["smpp.command_id"], prefs=())
    assert len([c for c in cmds if c != [""]]) >= min_frames


async def test_gsm7_single_and_receipt(smppd: Smppd, tmp_path: Path) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        m = sms("Missed call from 8613800138000 at 18:05 [2x] {cost 0€}")
        mid = await gw.submit(m)
        await eventually(lambda: rec.receipts)
    finally:
        await gw.stop()
    seen = [s for s in smppd.accepted() if s["destination"] == m.destination]
    assert len(seen) == 1
    assert seen[0]["message_id"] == mid
    assert seen[0]["data_coding"] == 0 and seen[0]["esm_class"] == 0
    assert seen[0]["registered_delivery"] == 1
    assert seen[0]["text"] == m.text  # node-smpp's GSM 03.38 decoder, extension table included
    assert rec.receipts[0][:2] == (mid, "DELIVRD")
    check_pcap(rec, tmp_path, 6)  # bind, resp, submit, resp, deliver_sm, resp (+unbind)


async def test_long_ucs2_concatenated(smppd: Smppd, tmp_path: Path) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    text = CHINESE * 4  # 152 characters: 3 segments of at most 67
    m = sms(text)
    try:
        mid = await gw.submit(m)
        await eventually(lambda: rec.receipts)
    finally:
        await gw.stop()
    seen = [s for s in smppd.accepted() if s["destination"] == m.destination]
    assert len(seen) == 3
    assert seen[0]["message_id"] == mid
    ref = m.id & 0xFF
    for i, s in enumerate(seen, start=1):
        assert s["data_coding"] == 8
        assert s["esm_class"] & 0x40
        assert s["udh"] == f"050003{ref:02x}03{i:02x}"
        assert s["concat"] == {"ref": ref, "total": 3, "seq": i}
        assert len(s["text"]) <= 67
    assert "".join(s["text"] for s in seen) == text
    # one receipt for the SMS, under the first segment's id, once all three are in
    assert [r[:2] for r in rec.receipts] == [(mid, "DELIVRD")]
    check_pcap(rec, tmp_path, 10)


async def test_long_gsm7_segments_153(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    text = ("0123456789" * 40)[:400]
    m = sms(text)
    try:
        await gw.submit(m)
    finally:
        await gw.stop()
    seen = [s for s in smppd.accepted() if s["destination"] == m.destination]
    assert [len(s["text"]) for s in seen] == [153, 153, 94]
    assert all(s["data_coding"] == 0 and s["esm_class"] == 0x40 for s in seen)
    assert "".join(s["text"] for s in seen) == text


async def test_throttled_backs_off_then_delivers(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        smppd.throttle(5)
        msgs = [sms(f"throttle test {i}") for i in range(8)]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ids = await asyncio.gather(*(gw.submit(m) for m in msgs))
        elapsed = loop.time() - t0
        assert gw.stats["throttled"] == 5
    finally:
        await gw.stop()
    assert len(set(ids)) == 8
    # the gateway paused rather than hammering: 5 consecutive refusals, pauses doubling
    assert elapsed >= 0.05
    dests = {m.destination for m in msgs}
    logged = [s for s in smppd.submits() if s["destination"] in dests]
    assert sum(1 for s in logged if s["status"] == 0x58) == 5
    assert sorted(s["destination"] for s in logged if s["status"] == 0) == sorted(dests)


async def test_queue_full_also_throttles(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        smppd.throttle(2, status=0x14)
        mid = await gw.submit(sms("queue full"))
        assert mid and gw.stats["throttled"] == 2
    finally:
        await gw.stop()


async def test_error_classes(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        smppd.throttle(1, status=0x0B)  # ESME_RINVDSTADR: the message is wrong
        with pytest.raises(SmppPermanentError) as e1:
            await gw.submit(sms("bad destination"))
        assert e1.value.status == 0x0B
        smppd.throttle(1, status=0x08)  # ESME_RSYSERR: try again later
        with pytest.raises(SmppTemporaryError) as e2:
            await gw.submit(sms("system error"))
        assert e2.value.status == 0x08 and not isinstance(e2.value, SmppLinkError)
    finally:
        await gw.stop()


async def test_window_respected(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec, window=4)
    try:
        before = smppd.stats()["submits"]
        smppd.hold(True)
        tasks = [asyncio.create_task(gw.submit(sms(f"window {i}"))) for i in range(11)]
        await eventually(lambda: smppd.stats()["submits"] - before >= 4)
        await asyncio.sleep(0.3)
        assert smppd.stats()["submits"] - before == 4  # never more than the window
        smppd.hold(False)
        ids = await asyncio.gather(*tasks)
        assert len(set(ids)) == 11
        assert gw.max_inflight == 4
    finally:
        smppd.hold(False)
        await gw.stop()


async def test_mo_received_and_decoded(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        assert smppd.send_mo("8613800138000", "12599", "STOP") >= 1
        assert smppd.send_mo("8613800138001", "12599", "退订 谢谢") >= 1
        await eventually(lambda: len(rec.mo) == 2)
    finally:
        await gw.stop()
    assert [(s, d, t) for s, d, t, _ in rec.mo] == [
        ("8613800138000", "12599", "STOP"),
        ("8613800138001", "12599", "退订 谢谢"),
    ]


async def test_undelivered_receipt_status(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        smppd.set_receipt_stat("UNDELIV")
        mid = await gw.submit(sms("to an absent phone"))
        await eventually(lambda: rec.receipts)
    finally:
        smppd.set_receipt_stat("DELIVRD")
        await gw.stop()
    assert rec.receipts[0][:2] == (mid, "UNDELIV")


async def test_bind_refused_is_link_error(smppd: Smppd) -> None:
    gw = SmppGateway(config(smppd, password="wrong", submit_timeout=0.3))
    gw.start()
    try:
        await asyncio.sleep(0.2)
        assert not gw.ready
        with pytest.raises(SmppLinkError):
            await gw.submit(sms("never sent"))
        assert gw.stats["connect_failures"] >= 1
    finally:
        await gw.stop()


async def test_outbox_sender_end_to_end(smppd: Smppd) -> None:
    outbox = InMemoryOutbox()
    gw = SmppGateway(config(smppd), on_receipt=outbox.record_receipt, on_mo=outbox.record_mo)
    gw.start()
    await gw.wait_ready()
    sender = OutboxSender(outbox=outbox, gateway=gw, clock=utcnow, window=10, poll_interval=0.05)
    dests = [str(next(_dest)) for _ in range(30)]
    for i, d in enumerate(dests):
        outbox.enqueue(
            d,
            CHINESE if i % 3 == 0 else f"missed call {i}",
            idempotency_key=f"e2e-{i}",
            now=utcnow(),
        )
    try:
        await sender.run_until_idle()
        await eventually(lambda: sum(1 for r in outbox.rows.values() if r.delivery_status) == 30)
    finally:
        await gw.stop()
    assert outbox.count("submitted") == 30
    assert all(r.delivery_status == "DELIVRD" for r in outbox.rows.values())
    logged = [s for s in smppd.accepted() if s["destination"] in set(dests)]
    assert len(logged) == 30


async def test_smsc_crash_and_restart_exactly_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """1,000 SMS; the SMSC crashes twice mid-run and comes back: every SMS lands exactly once.
    (Enough SMS that the second crash still finds most of them unsent: the gateway sends
    several thousand a second.)"""
    gen = smppd_fixture(tmp_path_factory, "smppd-crash")
    server = next(gen)
    try:
        outbox = InMemoryOutbox()
        gw = SmppGateway(config(server), on_receipt=outbox.record_receipt)
        gw.start()
        await gw.wait_ready()
        sender = OutboxSender(
            outbox=outbox,
            gateway=gw,
            clock=utcnow,
            window=10,
            poll_interval=0.02,
            policy=RetryPolicy(link_delay=0.05, base=0.05),
        )
        n = 1000
        for i in range(n):
            text = f"crash-run {i:03d}" + (" " + CHINESE if i % 10 == 0 else "")
            outbox.enqueue(f"86139{i:08d}", text, idempotency_key=f"crash-{i}", now=utcnow())
        task = asyncio.create_task(sender.run())
        loop = asyncio.get_running_loop()
        at_crash = []
        for threshold in (100, 500):
            await eventually(lambda t=threshold: outbox.count("submitted") >= t, timeout=30)
            at_crash.append(outbox.count("submitted"))
            await loop.run_in_executor(None, server.restart, 0.3)
        await eventually(lambda: outbox.count("submitted") == n, timeout=60)
        assert max(at_crash) < n, at_crash  # both crashes came in the middle of the run
        sender.stop()
        await task
        await gw.stop()
        assert gw.stats["link_lost"] >= 2 and gw.stats["binds"] >= 3
        assert sender.retried >= 1  # submits were in flight when the SMSC died
        accepted = server.accepted()
        # count whole SMS by text: multipart ones by their first segment
        firsts = [s for s in accepted if not s["concat"] or s["concat"]["seq"] == 1]
        by_text: dict[str, int] = {}
        for s in firsts:
            key = s["text"].split(" ", 2)[1] if s["text"].startswith("crash-run") else s["text"]
            by_text[key] = by_text.get(key, 0) + 1
        assert sorted(by_text) == [f"{i:03d}" for i in range(n)]
        assert set(by_text.values()) == {1}, {k: v for k, v in by_text.items() if v != 1}
        assert outbox.count("failed") == 0
    finally:
        for _ in gen:
            pass


async def test_enquire_link_and_unbind_on_stop(smppd: Smppd, tmp_path: Path) -> None:
    rec = Recorder()
    gw = await started(smppd, rec, enquire_link_interval=0.1)
    try:
        await asyncio.sleep(0.45)
    finally:
        await gw.stop()
    ids = [(d, int.from_bytes(p[4:8], "big")) for d, p in rec.pdus]
    # §4.11: enquire_link out on a silent link, each answered by enquire_link_resp
    assert ids.count(("out", 0x00000015)) >= 2
    assert ids.count(("in", 0x80000015)) == ids.count(("out", 0x00000015))
    # §4.2: stop() unbinds and waits for unbind_resp before closing
    assert ids[-2:] == [("out", 0x00000006), ("in", 0x80000006)]
    assert not gw.ready
    check_pcap(rec, tmp_path, 6)


async def test_unbuildable_submit_is_permanent(smppd: Smppd) -> None:
    rec = Recorder()
    gw = await started(smppd, rec)
    try:
        with pytest.raises(SmppPermanentError):
            await gw.submit(sms("x", destination="1" * 30))  # destination_addr max 21 octets
        assert await gw.submit(sms("still fine"))  # the gateway thread lives on
    finally:
        await gw.stop()
