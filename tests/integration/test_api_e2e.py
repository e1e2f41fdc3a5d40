"""The media server's side of a call, end to end: the simulator plays the switch and the HLR
against the in-process SCP in ``[ivr] mode = "connect"``; the media server's reports go to the
API over real HTTP; the SMS go out to the real third-party SMSC (npm ``smpp``, tests/smppd).

* a call the subscriber cannot take is connected to the IVR; the IVR reports the caller's
  callback choice (``POST /callbacks``); the HLR's AlertServiceCentre then brings the callee's
  missed-call SMS and the caller's "reachable now" SMS to the SMSC;
* a second caller chooses to leave a message; the recording is deposited through the API, the
  callee's SMS names the caller and reaches the SMSC, the recording comes back byte for byte,
  then it is deleted.

Every frame both sides sent is read back by tshark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import utcnow
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_in_process
from tests import tshark
from tests.dates import today
from tests.integration.api_rig import serve_api, wav
from tests.integration.smppd import Smppd, smppd_fixture
from tests.integration.sms import send_outbox

pytestmark = [pytest.mark.integration, pytest.mark.tshark, pytest.mark.usefixtures("any_day")]

N = Numbers()
SECOND_CALLER = "8613900139001"
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")
CFG = parse_config('[ivr]\nmode = "connect"\n[call]\ncallback_fee = "0.10"\n')


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-api")


def texts_to(smppd: Smppd, destination: str, since: int) -> list[str]:
    """What the SMSC accepted for ``destination`` from its ``since``-th submit on (the SMSC
    serves the module, this test runs once per day of the date guard), decoded (UCS-2 or GSM
    default)."""
    out = []
    for s in smppd.accepted()[since:]:
        if s["destination"] == destination:
            raw = bytes.fromhex(s["raw"])
            out.append(raw.decode("utf-16-be") if s["data_coding"] == 8 else raw.decode())
    return out


async def deliver_outbox(pool: asyncpg.Pool, smppd: Smppd) -> None:
    """Send every queued SMS to the SMSC and wait for its receipts (as the node's sender); an
    SMS the SMSC found busy waits its turn."""
    await send_outbox(
        pool,
        CFG,
        smppd,
        pending=lambda: pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status <> 'delivered' AND next_attempt_at <= $1",
            utcnow(),
        ),
    )


async def test_connect_mode_callback_and_voice_message_end_to_end(
    clean_pool: asyncpg.Pool, smppd: Smppd, tmp_path: Path
) -> None:
    await prov.add_subscriber(
        clean_pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        today=today(CFG),
        services=("missed-call", "busy", "voicemail"),  # busy: a product of its own
        language="en",
    )
    before = len(smppd.accepted())
    pcap = tmp_path / "e2e.pcap"
    w = SctpPcapWriter.open(str(pcap))
    conn, _scp = await connect_in_process(CFG, pool=clean_pool, capture=w)
    try:
        sim = Simulator(conn.peer, CFG, numbers=N, timeout=3.0)
        async with serve_api(clean_pool, CFG) as api:
            ivr = await api.token("media-server", "media")
            async with api.client(ivr) as c:
                # 1. the subscriber is absent: the switch hands the caller to the IVR
                call = await sim.call("not-reachable-then-present")
                assert call.outcome == f"connect {CFG.ivr.number}", call
                # a media server cannot invent a caller
                r = await c.post(
                    "/callbacks", json={"caller": SECOND_CALLER, "callee": N.subscriber}
                )
                assert r.status_code == 422 and r.json()["field"] == "caller", r.text
                r = await c.post("/callbacks", json={"caller": N.caller, "callee": N.subscriber})
                assert r.status_code == 201, r.text
                assert r.json()["fee"] == "0.10"
                # 2. the HLR says the subscriber is back
                outcome = await sim.alert_service_centre(N.subscriber)
                assert "acknowledged" in outcome, outcome
                await deliver_outbox(clean_pool, smppd)
                assert texts_to(smppd, N.caller, before) == [
                    "您好,用户13800138000已可达,请及时联系。"  # the caller is no subscriber: zh
                ]
                (missed,) = texts_to(smppd, N.subscriber, before)
                assert missed.startswith("13900139000 ")
                # 3. another caller, busy this time, leaves a voice message
                call = await sim.call("menu-voicemail", caller=SECOND_CALLER, digits=[])
                assert call.outcome == f"connect {CFG.ivr.number}", call
                pair = {"caller": SECOND_CALLER, "callee": N.subscriber}
                r = await c.post("/voicemail-requests", json=pair)
                assert r.status_code == 201 and r.json()["route"] == CFG.ivr.voicemail_deposit
                rec = wav(2.5, seed=7)
                at = utcnow().replace(microsecond=0)
                r = await c.post(
                    "/voicemail",
                    data=pair | {"deposited_at": at.isoformat(), "duration": "3"},
                    files={"audio": ("msg.wav", rec, "audio/wav")},
                )
                assert r.status_code == 201, r.text
                msg = r.json()
                assert msg["sms_queued"] is True
                await deliver_outbox(clean_pool, smppd)
                vm_sms = [t for t in texts_to(smppd, N.subscriber, before) if "voice message" in t]
                assert len(vm_sms) == 1 and vm_sms[0].startswith("13900139001 left you a 3 s")
                # 4. the media server plays it back, byte for byte, then deletes it
                back = await c.get(msg["audio"].removeprefix("/api/v1"))
                assert back.status_code == 200 and back.content == rec
                assert (await c.post(f"/voicemail/{msg['id']}/heard")).status_code == 200
                assert (await c.delete(f"/voicemail/{msg['id']}")).status_code == 204
                assert (await c.get(msg["audio"].removeprefix("/api/v1"))).status_code == 404
    finally:
        await conn.close()
        w.close()
    tshark.assert_clean(pcap, prefs=PREFS)
    cdr = await clean_pool.fetchrow(
        "SELECT msisdn, service, charge FROM cdr WHERE record_type = 'fee'"
    )
    assert (cdr["msisdn"], cdr["service"], str(cdr["charge"])) == (N.caller, "callback", "0.1000")
    # deleted: the row stays for the record (who called when), the recording is gone
    gone = await clean_pool.fetchrow("SELECT audio, deleted_at FROM voicemail")
    assert gone["audio"] is None and gone["deleted_at"] is not None
