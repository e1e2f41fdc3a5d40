"""The callback fee through the real SMSC (npm ``smpp``, tests/smppd) and PostgreSQL.

The caller who pressed 1 pays ``[call] callback_fee`` once per callback request, and only when
the request's SMS is submitted (``[billing] callback_fee_on = "submitted"``) or delivered
(``"delivered"``): the fee CDR is written by the outbox's charge hook in the transaction that
records the submit_sm_resp or the receipt (scp.flows.billing.charge_callbacks). Pressing 1
twice before the callee is reachable is one request, one SMS, one fee; a request that expires,
or whose SMS expires unsent, costs nothing.

The last test runs the project's own simulator (scp.tools.simulate: the switch and the HLR)
against a whole node (scp.app.Services: call control, MAP presence, the outbox sender, the SMPP
gateway to the real SMSC): the caller presses 1 in two calls, the HLR's AlertServiceCentre
comes on the wire, and the node's own sender submits the SMS: one fee.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.app import Services
from scp.codecs import ops
from scp.config import Config, parse_config
from scp.flows import provisioning as prov
from scp.flows.presence import PresenceEvent, database_sink
from scp.service.calls import RecordCallback
from scp.state import calls_store
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.dates import today
from tests.helpers import eventually
from tests.integration import test_calls_e2e as e2e
from tests.integration.smppd import Smppd, smppd_fixture
from tests.integration.sms import send_outbox

# The sender, the gateway and these rows run on the process's wall clock: on any day.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

CALLEE, CALLER = "8613912340000", "8613700000042"


def conf(fee_on: str) -> Config:
    return parse_config(f'[billing]\ncallback_fee_on = "{fee_on}"\n[call]\ncallback_fee = "0.10"\n')


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-callback-fee")


async def press_1(pool: asyncpg.Pool, at: dt.datetime, *, valid: dt.timedelta) -> None:
    """The caller's menu choice 1, as the call flow records it (scp.state.calls_store)."""
    async with pool.acquire() as conn:
        await calls_store.write_other(conn, RecordCallback(CALLER, CALLEE, at, at + valid), None)


async def reachable(pool: asyncpg.Pool, cfg: Config) -> None:
    """The callee is reachable again (MAP AlertServiceCentre): the callback SMS is queued."""
    await database_sink(pool, cfg, utcnow)((PresenceEvent(True, "alert-sc", msisdn=CALLEE),))


async def send_all(pool: asyncpg.Pool, cfg: Config, smppd: Smppd, *, receipts: bool) -> None:
    """Send what is due through the real SMSC; with ``receipts`` wait for them all too."""
    await send_outbox(
        pool,
        cfg,
        smppd,
        pending=(
            lambda: pool.fetchval(
                "SELECT count(*) FROM sms_outbox"
                " WHERE status NOT IN ('delivered', 'failed', 'expired')"
            )
        )
        if receipts
        else None,
    )


async def fees(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT msisdn, callee, charge, call_ref, started_at FROM cdr"
        " WHERE record_type = 'fee' AND service = 'callback' ORDER BY id"
    )


async def test_once_per_request_when_submitted(clean_pool: asyncpg.Pool, smppd: Smppd) -> None:
    pool, cfg = clean_pool, conf("submitted")
    await prov.add_subscriber(
        pool, prov.Actor("cli", "t"), CALLEE, today=today(cfg), services=["missed-call"]
    )
    now = utcnow()
    await press_1(pool, now, valid=dt.timedelta(hours=24))
    await press_1(pool, now + dt.timedelta(seconds=5), valid=dt.timedelta(hours=24))  # joins it
    req = await pool.fetch("SELECT id FROM callback_request")
    assert len(req) == 1
    assert await fees(pool) == []  # pressing 1 costs nothing yet
    await reachable(pool, cfg)
    sms = await pool.fetch(
        "SELECT id, idempotency_key FROM sms_outbox WHERE destination = $1", CALLER
    )
    assert [r["idempotency_key"] for r in sms] == [f"callback:{req[0]['id']}"]
    assert await fees(pool) == []  # queued is not submitted
    await send_all(pool, cfg, smppd, receipts=True)
    got = await fees(pool)
    assert [(r["msisdn"], r["callee"], r["charge"], r["call_ref"]) for r in got] == [
        (CALLER, CALLEE, Decimal("0.1000"), f"callback:{req[0]['id']}")
    ]
    # dated by the submission: not before the request, not after the receipt (whose done
    # date has minutes only, SMPP 3.4 Appendix B)
    delivered_at = await pool.fetchval(
        "SELECT delivered_at FROM sms_outbox WHERE id = $1", sms[0]["id"]
    )
    assert now <= got[0]["started_at"] <= delivered_at + dt.timedelta(minutes=1)
    # the callee reachable again: no second SMS for the notified request, no second fee
    await reachable(pool, cfg)
    await send_all(pool, cfg, smppd, receipts=True)
    assert len(await fees(pool)) == 1


async def test_expired_costs_nothing(clean_pool: asyncpg.Pool, smppd: Smppd) -> None:
    pool, cfg = clean_pool, conf("submitted")
    await prov.add_subscriber(
        pool, prov.Actor("cli", "t"), CALLEE, today=today(cfg), services=["missed-call"]
    )
    now = utcnow()
    # a request that expired before the callee came back: no SMS at all
    await press_1(pool, now - dt.timedelta(hours=2), valid=dt.timedelta(hours=1))
    await reachable(pool, cfg)
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox") == 0
    # a request whose SMS expires unsent (its window passed while the SMSC was away)
    await pool.execute("DELETE FROM callback_request")
    await press_1(pool, now, valid=dt.timedelta(hours=24))
    await reachable(pool, cfg)
    assert (
        await pool.execute(
            "UPDATE sms_outbox SET expires_at = $1 WHERE destination = $2 AND status = 'queued'",
            now - dt.timedelta(seconds=1),
            CALLER,
        )
        == "UPDATE 1"
    )
    await send_all(pool, cfg, smppd, receipts=False)
    assert await pool.fetchval("SELECT status FROM sms_outbox WHERE destination = $1", CALLER) == (
        "expired"
    )
    assert await fees(pool) == []


async def test_on_delivery_only_a_delivered_sms_costs(
    clean_pool: asyncpg.Pool, smppd: Smppd
) -> None:
    pool, cfg = clean_pool, conf("delivered")
    await prov.add_subscriber(
        pool, prov.Actor("cli", "t"), CALLEE, today=today(cfg), services=["missed-call"]
    )
    smppd.set_receipt_stat("UNDELIV")
    try:
        now = utcnow()
        await press_1(pool, now, valid=dt.timedelta(hours=24))
        await reachable(pool, cfg)
        await send_all(pool, cfg, smppd, receipts=True)
        assert (
            await pool.fetchval("SELECT status FROM sms_outbox WHERE destination = $1", CALLER)
            == "failed"
        )
        assert await fees(pool) == []  # submitted, never delivered: nothing due
        smppd.set_receipt_stat("DELIVRD")
        await press_1(pool, utcnow(), valid=dt.timedelta(hours=24))  # a new request
        await reachable(pool, cfg)
        await send_all(pool, cfg, smppd, receipts=True)
    finally:
        smppd.set_receipt_stat("DELIVRD")
    second = await pool.fetchval("SELECT max(id) FROM callback_request")
    got = await fees(pool)
    assert [r["call_ref"] for r in got] == [f"callback:{second}"]
    delivered_at = await pool.fetchval(
        "SELECT delivered_at FROM sms_outbox WHERE idempotency_key = $1", f"callback:{second}"
    )
    assert got[0]["started_at"] == delivered_at  # dated by the receipt


@pytest.mark.tshark
async def test_fee_of_a_real_call(tmp_path: Path, clean_pool: asyncpg.Pool, smppd: Smppd) -> None:
    """The whole path: a CAP v4 call to an unreachable subscriber from the simulated switch
    (every frame checked by tshark), the caller presses 1 twice in two calls, the callee comes
    back (AlertServiceCentre), the callback SMS goes through the real SMSC: one fee."""
    pool, cfg = clean_pool, conf("submitted")
    await e2e.provision(pool)
    rig = await e2e.start(tmp_path, pool, "ctr")
    sw = rig.sw
    try:
        for _ in range(2):
            did = sw.begin(e2e.AC_CAP_V4_GSMSSF_SCF, e2e.idp())
            await sw.next(did)
            sw.cont(did, e2e.erb(13, 20))  # not reachable
            msgs = await sw.next(did, 2)
            assert e2e.names(sw, msgs[1])[-1] == "PromptAndCollectUserInformation"
            sw.result(did, sw.ops_of(msgs[1])[1][0], "1")
            msgs = await sw.next(did, 3)
            sw.cont(did, ops.SpecializedResourceReport())
            msgs = await sw.next(did, 4)
            assert e2e.names(sw, msgs[3]) == ["ReleaseCall"]
    finally:
        await e2e.stop(rig)
    (req,) = await pool.fetch("SELECT id, caller, callee FROM callback_request")
    assert (req["caller"], req["callee"]) == (e2e.CALLER, e2e.CALLEE)
    await database_sink(pool, cfg, utcnow)((PresenceEvent(True, "alert-sc", msisdn=e2e.CALLEE),))
    await send_all(pool, cfg, smppd, receipts=True)
    got = await fees(pool)
    assert [(r["msisdn"], r["charge"], r["call_ref"]) for r in got] == [
        (e2e.CALLER, Decimal("0.1000"), f"callback:{req['id']}")
    ]
    sent = {s["destination"] for s in smppd.accepted()}
    assert e2e.CALLER in sent  # the callback SMS really reached the SMSC


@pytest.mark.tshark
async def test_fee_through_the_simulator_and_the_node(
    tmp_path: Path, clean_pool: asyncpg.Pool, smppd: Smppd
) -> None:
    pool, n = clean_pool, Numbers()
    cfg = parse_config(
        '[m3ua]\nlisten = "127.0.0.1:0"\nbeat_interval = 0\n'
        f'[smpp]\nhost = "127.0.0.1"\nport = {smppd.port}\n'
        '[billing]\ncallback_fee_on = "submitted"\n[call]\ncallback_fee = "0.10"\n'
        '[notify]\nalert_via_hlr = false\n[ivr]\nmode = "ctr"\n'
    )
    await prov.add_subscriber(
        pool, prov.Actor("cli", "test"), n.subscriber, today=today(cfg), services=["missed-call"]
    )
    seen = len(smppd.accepted())  # the SMSC is the module's
    pcap = tmp_path / "node.pcap"
    services = Services(cfg, pool, capture=str(pcap))
    await services.start()
    try:
        conn = await connect_tcp("127.0.0.1", services.node.transport.listening[0][1])
        sim = Simulator(conn.peer, cfg, numbers=n, timeout=10.0)
        for _ in range(2):  # absent callee, the caller presses 1 (SMS me when reachable)
            res = await sim.call("not-reachable-then-present")
            assert res.ok, res.outcome
        (req,) = await pool.fetch("SELECT id, caller, callee FROM callback_request")
        assert (req["caller"], req["callee"]) == (n.caller, n.subscriber)
        assert await fees(pool) == []  # nothing at the key press
        outcome = await sim.alert_service_centre(n.subscriber)
        assert "acknowledged" in outcome, outcome

        async def submitted() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM sms_outbox WHERE idempotency_key = $1"
                    " AND status IN ('submitted', 'delivered')",
                    f"callback:{req['id']}",
                )
            )

        await eventually(submitted, what="the callback SMS was not submitted", timeout=30)
        # the callee reachable once more: no second SMS, no second fee
        outcome = await sim.alert_service_centre(n.subscriber)
        assert "acknowledged" in outcome, outcome
        await conn.close()
    finally:
        await services.stop()
    got = await fees(pool)
    assert [(r["msisdn"], r["charge"], r["call_ref"]) for r in got] == [
        (n.caller, Decimal("0.1000"), f"callback:{req['id']}")
    ]
    assert [s["destination"] for s in smppd.accepted()[seen:]].count(n.caller) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", n.caller) == 1
    )
    tshark.assert_clean(pcap)
