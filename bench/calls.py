"""Benchmark: busy-to-IVR call flows through M3UA/TCP against a separate SCP process.

One flow = the switch opens a CAP v2 dialogue with InitialDP (TAA) for a subscriber, the SCP
loads the subscriber from PostgreSQL and answers RRBE + Continue in a TC-CONTINUE; the switch
reports EventReportBCSM tBusy (busyCause 17); the SCP writes the missed call (one transaction,
notifications hook included when installed) and answers Connect to the IVR in a TC-END.

The SCP runs in its own process (``--serve``: ``scp.app.run_node``, which is ``mcn-scp run``:
migrated pool, call control and MAP users, console SMS sink, outbox sender) on an embedded
PostgreSQL (pgserver); this process is the switch (the same cores as the peer of the
integration tests) over loopback TCP.

Phases: saturation (closed loop, ``--concurrency`` flows in flight) gives flows/s, in turns
with the same driver saturating a floor server (``--floor``: its own process too) that answers
each message with fixed bytes, no decoding and no database: the transaction ID the answer must
carry is copied from a fixed place, the ASP handshake alone goes through a real M3UA layer.
``scp_vs_floor`` is SCP flows/s divided by floor flows/s: how close the SCP comes to what the
driver, loopback TCP and the event loop allow; ``--rounds`` pairs of phases, the median pair
reported with all of them listed (``rounds``). Then an open loop at half the SCP's rate gives
p50 / p99 of InitialDP -> answer and EventReportBCSM -> answer, and one at 500/s, with the
SCP's peak RSS after them (``scp_peak_rss_mb``) and the TC indications the switch got that no
flow waited for (``stray_indications``: late answers, rejects, aborts; 0 when every answer is
well-formed and in time); then the SCP is restarted under cProfile for a CPU profile of the
same flows. Last, ``mcn-scp run --workers 2`` on the same address: flows/s and SCP CPU per flow
of both workers together (``workers_2``), beside one worker's. Prints one JSON object.
Targets: >= 1,000 flows/s, p99 < 20 ms at 500/s, scp_vs_floor >= 0.4.

A flow counts only when the SCP did its work: the first answer a TC-CONTINUE with
RequestReportBCSMEvent, the second a TC-END with Connect (anything else is ``failed``, and
``not_connect`` says how many of those were well-formed answers of another kind). Past
``[database] budget`` the SCP still routes the call without writing it, so each SCP phase is
also checked against what the node recorded (``check``): the missed-call rows written in the
phase beside the flows counted, and the node's own counters of records lost or in doubt and of
InitialDPs continued without the database, read from its ``/metrics``. ``loss`` sums them over
every SCP phase: all zero when every counted flow left its missed call in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import free_port  # noqa: E402

from scp.app import freeze_loaded  # noqa: E402
from scp.codecs import cap, ops  # noqa: E402
from scp.codecs.numbers import CalledPartyNumber, CallingPartyNumber, Cause  # noqa: E402
from scp.codecs.opcodes import CapOpcode  # noqa: E402
from scp.config import NodeConfig  # noqa: E402
from scp.primitives import (  # noqa: E402
    GlobalTitle,
    Invoke,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcContinue,
    TcEnd,
    TcPAbort,
    TcPrimitive,
    TcUAbort,
)
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF as AC  # noqa: E402

SCP = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
MSC = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613900000"))
N_SUBSCRIBERS = 10_000
ASYNC_COMMIT = "--async-commit" in sys.argv
SUB_BASE = 8613900000000
ASSOCIATIONS = 8  # the switch's associations toward `--workers 2`: all on one worker is 2**-7
CONFIG_PORT = re.compile(r'listen = "127\.0\.0\.1:(\d+)"')
CONNECT, RRBE = CapOpcode.CONNECT, CapOpcode.REQUEST_REPORT_BCSM_EVENT

CONFIG = """
[node]
event_loop = "{event_loop}"
[m3ua]
listen = "127.0.0.1:{port}"
beat_interval = 0
[web]
listen = "127.0.0.1:{web_port}"
[tcap]
idle_timeout = 30.0
[ivr]
mode = "connect"
[smpp]
backend = "console"
[log]
level = "warning"
format = "json"
"""


# --------------------------------------------------------------------------------------------
# SCP side (separate process)
# --------------------------------------------------------------------------------------------


async def _serve(config: str, profile: str | None) -> None:
    """Exactly ``mcn-scp run`` (``scp.app.run_node``), optionally under cProfile once up."""
    from scp.app import run_node
    from scp.cli.logs import configure_logging
    from scp.config import load_config

    cfg = load_config(config)
    configure_logging(cfg.log.level, cfg.log.format)
    if "--no-notify" in sys.argv:  # experiment: the call path alone, without notifications
        from scp import app
        from scp.flows import calls

        def call_user_alone(node: Any, pool: Any, cfg: Any) -> calls.CallUser:
            return calls.CallUser(node, pool, cfg, notify=None)

        app.build_call_user = call_user_alone  # type: ignore[assignment]
    prof = cProfile.Profile() if profile else None

    def started(_services: object) -> None:
        print("READY", flush=True)
        if prof:
            prof.enable()

    try:
        await run_node(cfg, on_started=started)
    finally:
        if prof:
            prof.disable()
            prof.dump_stats(profile)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Floor side (separate process): fixed answers
# --------------------------------------------------------------------------------------------

_TID = b"\xde\xad\xbe\xef"  # where the switch's transaction ID goes in a template


def _floor_templates(switch_pc: int) -> tuple[bytes, bytes, bytes, bytes]:
    """M3UA DATA carrying a TC-CONTINUE (AARE accepted, an RRBE invoke) and a TC-END (a
    Connect invoke), the operations the driver checks for, without arguments (the switch
    decodes none), toward the switch at ``switch_pc``, each cut where the switch's transaction
    ID goes: (CONTINUE before it, after it, END before it, after it)."""
    from scp.codecs import m3ua, sccp, tcap
    from scp.primitives import MtpTransfer

    def data(msg: tcap.TcapMessage) -> bytes:
        udt = sccp.encode(sccp.Udt(MSC, SCP, tcap.encode(msg)))
        return m3ua.encode_data(MtpTransfer(100, switch_pc, 3, 2, 0, 0, udt), 1)

    # Each invoke has its invoke ID: the switch's TCAP rejects an invoke ID the dialogue's
    # peer still holds (Q.774 §3.2.2.2), which would be work of its own on every flow.
    cont = data(
        tcap.TcapMessage(
            tcap.MessageType.CONTINUE,
            b"\x00\x00\x00\x01",
            _TID,
            tcap.Aare(AC),
            (Invoke(1, RRBE, None, op_class=2),),
        )
    )
    end = data(
        tcap.TcapMessage(
            tcap.MessageType.END, None, _TID, None, (Invoke(2, CONNECT, None, op_class=2),)
        )
    )
    c_at, e_at = cont.index(_TID), end.index(_TID)
    return cont[:c_at], cont[c_at + 4 :], end[:e_at], end[e_at + 4 :]


async def _floor(port: int) -> None:
    """Answer the driver with fixed bytes: a BEGIN gets the CONTINUE template, anything else
    in DATA the END template, the switch's otid copied in (found after its tag, 48 04). Each
    connection is one switch (its own point code): its templates are addressed to the OPC
    of its first DATA, decoded once."""
    from scp.codecs import m3ua
    from scp.core.m3ua_asp import M3uaLayer, Transmit

    templates: dict[int, tuple[bytes, bytes, bytes, bytes]] = {}

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: asyncio.Transport = transport  # type: ignore[assignment]
            self.buf = b""
            self.asp = M3uaLayer(role="server", local_pc=100, routing_context=1, beat_interval=0)
            self.asp.association_up(1, 0.0)
            self.tpl: tuple[bytes, bytes, bytes, bytes] | None = None

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data
            out = []
            while len(buf) >= 8:
                n = int.from_bytes(buf[4:8], "big")
                if len(buf) < n:
                    break
                m, buf = buf[:n], buf[n:]
                if m[2:4] != b"\x01\x01":  # the handshake: a real M3UA layer answers
                    out += [o.data for o in self.asp.receive(1, m, 0.0) if type(o) is Transmit]
                    continue
                if self.tpl is None:
                    opc = m3ua.decode_data(m).xfer.opc
                    if opc not in templates:
                        templates[opc] = _floor_templates(opc)
                    self.tpl = templates[opc]
                c_pre, c_post, e_pre, e_post = self.tpl
                i = m.find(b"\x48\x04")
                tid = m[i + 2 : i + 6]
                if m[i + 6 : i + 8] == b"\x49\x04":  # otid then dtid: a CONTINUE
                    out.append(e_pre + tid + e_post)
                else:
                    out.append(c_pre + tid + c_post)
            self.buf = buf
            self.t.write(b"".join(out))

    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", port)
    freeze_loaded()
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------------------------
# Switch side (this process)
# --------------------------------------------------------------------------------------------


def _params() -> tuple[list[bytes], bytes]:
    idps = []
    for i in range(N_SUBSCRIBERS):
        o = ops.InitialDP(
            100,
            CalledPartyNumber(str(SUB_BASE + i)),
            CallingPartyNumber("8613700001111"),
            event_type_bcsm=12,
        )
        idps.append(cap.CODEC.encode_arg(o, ac=AC)[1] or b"")
    erb = ops.EventReportBCSM(
        13, ops.EventSpecificInfo("tBusySpecificInfo", Cause(17)), ops.LegID(2), message_type=0
    )
    return idps, cap.CODEC.encode_arg(erb, ac=AC)[1] or b""


class Driver:
    """The switch: a client-role stack over TCP; one future per dialogue answer."""

    def __init__(self, port: int, pc: int = 200) -> None:
        from scp.app import build_stack
        from scp.config import parse_config
        from tests.integration.peer import PEER_CONFIG, PeerAsp

        self.port = port
        self.waiting: dict[int, asyncio.Future[object]] = {}
        # TC indications no flow waits for (a late answer, a reject, an abort), counted: the
        # peer of the tests keeps them all, which over a bench's flows would be a heap for the
        # collector to walk and its pauses in the latencies measured here
        self.stray = 0
        # answers of the right TC kind without the operation the flow expects (RRBE, Connect)
        self.not_connect = 0
        driver = self

        class _Peer(PeerAsp):
            def _output(self, o: Any) -> None:
                match o:
                    case TcContinue() | TcEnd() | TcUAbort() | TcPAbort():
                        f = driver.waiting.pop(o.dialogue_id, None)
                        if f is not None and not f.done():
                            f.set_result(o)
                        else:
                            driver.stray += 1
                    case _ if isinstance(o, TcPrimitive):
                        driver.stray += 1
                    case _:
                        super()._output(o)

        def make_peer() -> _Peer:
            # A switch of its own point code: each association is another switch (the SCP
            # answers a point code over the association it is bound to, README "Hostile peers").
            peer = _Peer(None)
            text = PEER_CONFIG.format(beat=0.0).replace("local_pc = 200", f"local_pc = {pc}")
            peer.cfg = parse_config(text)
            peer.stack = build_stack(peer.cfg)
            return peer

        self.peer_cls = make_peer
        self.idps, self.erb = _params()
        # each association calls its own stretch of the subscribers, as separate switches
        # would: in step, two workers would write the same callees' rows at the same moment
        self.i = (pc - 200) * N_SUBSCRIBERS // ASSOCIATIONS % N_SUBSCRIBERS

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.peer = await loop.create_connection(self.peer_cls, "127.0.0.1", self.port)
        await self.peer.wait(lambda: self.peer.active, timeout=10)

    def _wait(self, did: int) -> asyncio.Future[object]:
        f: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.waiting[did] = f
        return f

    async def flow(self) -> tuple[float, float] | None:
        """One busy-to-IVR flow; (IDP->answer, ERB->answer) seconds, None if it went wrong."""
        p = self.peer
        did = p.stack.tcap.new_dialogue_id()
        self.i = (self.i + 1) % N_SUBSCRIBERS
        f = self._wait(did)
        t0 = time.perf_counter()
        p.request(TcBegin(did, SCP, MSC, AC, components=(Invoke(1, 0, self.idps[self.i]),)))
        a = await asyncio.wait_for(f, 10)
        t1 = time.perf_counter()
        if type(a) is not TcContinue:
            return None
        if not _invokes(a, RRBE):
            self.not_connect += 1
            return None
        f = self._wait(did)
        t2 = time.perf_counter()
        p.request(TcContinue(did, components=(Invoke(2, 24, self.erb, op_class=4),)))
        b = await asyncio.wait_for(f, 10)
        t3 = time.perf_counter()
        if type(b) is not TcEnd:
            return None
        if not _invokes(b, CONNECT):
            self.not_connect += 1
            return None
        return t1 - t0, t3 - t2


def _invokes(p: TcContinue | TcEnd, opcode: int) -> bool:
    """``p`` carries an invoke of ``opcode`` (the opcode alone: no decoding on the driver)."""
    return any(type(c) is Invoke and c.opcode == opcode for c in p.components)


class Ledger:
    """What the SCP recorded, read around each of its phases: the missed-call rows in
    PostgreSQL, and its counters of call records lost or in doubt and of InitialDPs continued
    without the database, from its ``/metrics`` (every worker's, under ``--workers``)."""

    LOSS = {
        "records_lost": "mcn_scp_call_records_lost_total",
        "records_in_doubt": "mcn_scp_call_records_in_doubt_total",
        "continued_without_database": "mcn_scp_calls_continued_without_database_total",
    }

    def __init__(self, dsn: str, web_port: int) -> None:
        self.dsn = dsn
        self.url = f"http://127.0.0.1:{web_port}/metrics"
        self.loss: dict[str, int] = dict.fromkeys(["flows_without_missed_call", *self.LOSS], 0)

    async def _read(self) -> dict[str, int]:
        import asyncpg
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        conn = await asyncpg.connect(self.dsn)
        try:
            got = {"missed_calls": await conn.fetchval("SELECT count(*) FROM missed_call")}
        finally:
            await conn.close()
        async with httpx.AsyncClient() as c:
            r = await c.get(self.url)
            r.raise_for_status()
        samples = [s for f in text_string_to_metric_families(r.text) for s in f.samples]
        for key, name in self.LOSS.items():
            got[key] = round(sum(s.value for s in samples if s.name == name))
        return got

    async def checked(self, phase: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """``phase``'s result with its ``check``: the rows and counters it moved."""
        before = await self._read()
        r = await phase()
        after = await self._read()
        moved = {k: after[k] - before[k] for k in after}
        written = moved.pop("missed_calls")
        check = {
            "missed_calls_written": written,
            "flows_without_missed_call": max(0, r["flows"] - written),
            **moved,
        }
        for k in self.loss:
            self.loss[k] += check[k]
        r["check"] = check
        return r


async def saturate(d: Driver, seconds: float, concurrency: int) -> dict[str, Any]:
    done = 0
    bad = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, bad
        while time.perf_counter() < stop_at:
            try:
                r = await d.flow()
            except TimeoutError:
                r = None
            if r is None:
                bad += 1
            else:
                done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    el = time.perf_counter() - t0
    return {
        "flows": done,
        "failed": bad,
        "seconds": round(el, 2),
        "flows_per_s": round(done / el, 1),
    }


async def open_loop(d: Driver, rate: float, seconds: float) -> dict[str, Any]:
    lat_idp: list[float] = []
    lat_erb: list[float] = []
    bad = 0

    async def one() -> None:
        nonlocal bad
        try:
            r = await d.flow()
        except TimeoutError:
            r = None
        if r is None:
            bad += 1
        else:
            lat_idp.append(r[0])
            lat_erb.append(r[1])

    n = int(rate * seconds)
    t0 = time.perf_counter()
    # A task group holds the flows in flight only (a phase's every task, kept to its end, was a
    # full collection of the driver's own in the phase), and a flow failing otherwise than by a
    # timeout stops the bench.
    async with asyncio.TaskGroup() as flows:
        for k in range(n):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            flows.create_task(one())

    def pct(v: list[float], q: float) -> float:
        v = sorted(v)
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 2) if v else float("nan")

    return {
        "rate_per_s": rate,
        "flows": len(lat_idp),
        "failed": bad,
        "idp_to_answer_ms": {"p50": pct(lat_idp, 0.5), "p99": pct(lat_idp, 0.99)},
        "erb_to_answer_ms": {"p50": pct(lat_erb, 0.5), "p99": pct(lat_erb, 0.99)},
    }


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


async def _provision(dsn: str) -> None:
    import asyncpg

    from scp.state.migrate import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        if ASYNC_COMMIT:
            await conn.execute("SELECT set_config('synchronous_commit', 'off', false)")
            db = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'ALTER DATABASE "{db}" SET synchronous_commit = off')
        await conn.execute("TRUNCATE subscriber, missed_call, cdr RESTART IDENTITY CASCADE")
        subs = [(str(SUB_BASE + i),) for i in range(N_SUBSCRIBERS)]
        await conn.copy_records_to_table("subscriber", records=subs, columns=["msisdn"])
        # in force since long before any run of the bench (the date is the caller's to give);
        # "busy" (遇忙提示) is the product that serves a busy call: with "missed-call" alone
        # the SCP answers tBusy with Continue and records nothing (PRODUCT_OF_REASON)
        since = dt.date(2020, 1, 1)
        await conn.copy_records_to_table(
            "subscription",
            records=[(s[0], svc, since) for s in subs for svc in ("missed-call", "busy")],
            columns=["msisdn", "service", "start_date"],
        )
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return round(kib / 1024, 1)


def _postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL process on the machine so far (backends that end in
    between are not counted: the SCP's pool keeps its connections)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        if head.endswith("(postgres"):
            parts = tail.split()
            total += (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _start_scp(
    config: Path, dsn: str, profile: str | None = None, *, floor: int | None = None
) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--serve", str(config)]
    if floor is not None:
        # the floor on the SCP's loop (``config``'s [node] event_loop): the comparison is the
        # SCP's work, not the loops'
        cmd = [sys.executable, __file__, "--floor", str(floor), "--serve", str(config)]
    if "--no-notify" in sys.argv:
        cmd.append("--no-notify")
    if profile:
        cmd += ["--profile", profile]
    env = dict(os.environ, MCN_DATABASE_URL=dsn)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    while True:  # structlog may print to stdout before we are ready
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise RuntimeError("SCP did not start")
        if line.startswith("READY"):
            break
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return proc


def _stop_scp(proc: subprocess.Popen[Any]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _measured(
    d: Driver,
    server: tuple[str, subprocess.Popen[str]],
    idle: tuple[str, subprocess.Popen[str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One saturation phase through ``d``: flows/s, the driver's CPU, the CPU per flow of the
    ``server`` (name, process) it drives and what the ``idle`` one still used meanwhile (an
    SCP's outbox, say: taken from the phase, so it shows)."""
    (name, proc), (idle_name, other) = server, idle
    cpu0, other0, me0 = _cpu_seconds(proc.pid), _cpu_seconds(other.pid), time.process_time()
    pg0 = _postgres_cpu_seconds()
    r = await saturate(d, args.seconds, args.concurrency)
    secs = r["seconds"]
    cpu = _cpu_seconds(proc.pid) - cpu0
    r["driver_cpu_utilisation"] = round((time.process_time() - me0) / secs, 2)
    r[f"{name}_cpu_ms_per_flow"] = round(cpu * 1000 / max(1, r["flows"]), 3)
    r[f"{name}_cpu_utilisation"] = round(cpu / secs, 2)
    # the machine's two cores are shared by the driver, the server and PostgreSQL
    r["postgres_cpu_utilisation"] = round((_postgres_cpu_seconds() - pg0) / secs, 2)
    r[f"idle_{idle_name}_cpu_utilisation"] = round((_cpu_seconds(other.pid) - other0) / secs, 2)
    return r


async def _in_turns(
    scp: Callable[[], Awaitable[dict[str, Any]]],
    floor: Callable[[], Awaitable[dict[str, Any]]],
    rounds: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``rounds`` pairs of phases, the SCP's then the floor's, seconds apart (this machine's
    speed drifts by a quarter from one minute to the next, and the ratio of two close phases
    cancels most of that): the median pair's two phases, and ``scp_vs_floor`` (its ratio) with
    every pair listed under ``rounds``."""
    pairs = []
    for _ in range(rounds):
        s, f = await scp(), await floor()
        pairs.append((s["flows_per_s"] / max(f["flows_per_s"], 1e-9), s, f))
    pairs.sort(key=lambda r: r[0])
    ratio, s, f = pairs[len(pairs) // 2]
    listed = [
        {"scp": p[1]["flows_per_s"], "floor": p[2]["flows_per_s"], "ratio": round(p[0], 3)}
        for p in pairs
    ]
    return s, f, {"scp_vs_floor": round(ratio, 3), "rounds": listed}


async def _run(args: argparse.Namespace, dsn: str, tmp: Path) -> dict[str, Any]:
    await _provision(dsn)
    port, web_port = free_port(), free_port()
    config = tmp / "scp.toml"
    config.write_text(CONFIG.format(port=port, web_port=web_port, event_loop=args.event_loop))
    ledger = Ledger(dsn, web_port)
    out: dict[str, Any] = {
        "bench": "calls",
        "flow": "CAP v2 IDP -> RRBE+Continue; ERB tBusy -> missed call written -> Connect(IVR)",
        "notifications_hook": not args.no_notify,
        "event_loop": args.event_loop,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    # The SCP and the floor run side by side and are saturated in turns (_in_turns).
    proc = _start_scp(config, dsn)
    floor_port = free_port()
    fproc = _start_scp(config, dsn, floor=floor_port)
    try:
        d = Driver(port)
        await d.connect()
        f = Driver(floor_port)
        await f.connect()
        freeze_loaded()  # the driver's codecs and stack are loaded now
        await saturate(d, 1.0, args.concurrency)  # warm-up
        await saturate(f, 1.0, args.concurrency)
        sat, floor, paired = await _in_turns(
            lambda: ledger.checked(lambda: _measured(d, ("scp", proc), ("floor", fproc), args)),
            lambda: _measured(f, ("server", fproc), ("scp", proc), args),
            args.rounds,
        )
        out["saturation"] = sat
        out["floor"] = floor
        out.update(paired)
        f.peer.close()
        half = round(sat["flows_per_s"] / 2)
        out["half_load"] = await ledger.checked(lambda: open_loop(d, half, args.seconds))
        out["at_500_per_s"] = await ledger.checked(lambda: open_loop(d, 500, args.seconds))
        out["scp_peak_rss_mb"] = _peak_rss_mb(proc.pid)  # after every phase above
        out["stray_indications"] = d.stray + f.stray
        out["not_connect"] = d.not_connect
        d.peer.close()
    finally:
        _stop_scp(fproc)
        _stop_scp(proc)
    prof = str(tmp / "scp.prof")
    proc = _start_scp(config, dsn, prof)
    try:
        d = Driver(port)
        await d.connect()
        await saturate(d, min(3.0, args.seconds), args.concurrency)
        d.peer.close()
    finally:
        _stop_scp(proc)
    out["profile"] = _profile_summary(prof)
    out["workers_2"] = await _two_workers(args, config, dsn, ledger)
    out["loss"] = ledger.loss
    return out


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


async def _two_workers(
    args: argparse.Namespace, config: Path, dsn: str, ledger: Ledger
) -> dict[str, Any]:
    """`mcn-scp run --workers 2` on the same listen address (SO_REUSEPORT): the switch opens
    several associations, which the kernel spreads over the two workers; flows/s and the CPU
    per flow of both workers together, to set beside one worker's (``saturation``). The floor
    is driven the same way (as many associations, the same flows in flight), in turns with
    the workers, ``--rounds`` pairs, the median pair reported as for one worker."""
    port = int(CONFIG_PORT.search(config.read_text()).group(1))  # type: ignore[union-attr]
    env = dict(os.environ, MCN_DATABASE_URL=dsn)
    mcn = str(Path(sys.executable).parent / "mcn-scp")
    proc = subprocess.Popen(
        [mcn, "run", "--workers", "2", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    floor_port = free_port()
    fproc = _start_scp(config, dsn, floor=floor_port)
    drivers: list[Driver] = []
    floors: list[Driver] = []
    try:
        deadline = time.monotonic() + 60
        while len(drivers) < ASSOCIATIONS:
            d = Driver(port, pc=200 + len(drivers))
            try:
                await d.connect()
            except (OSError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mcn-scp run --workers 2 did not start") from None
                await asyncio.sleep(0.2)
                continue
            drivers.append(d)
        for i in range(ASSOCIATIONS):
            floors.append(Driver(floor_port, pc=200 + i))
            await floors[-1].connect()
        share = max(1, args.concurrency // len(drivers))
        workers = _children(proc.pid)
        await _saturate_all(drivers, 1.0, share, workers)  # warm-up
        await _saturate_all(floors, 1.0, share, [fproc.pid])
        scp, floor, paired = await _in_turns(
            lambda: ledger.checked(lambda: _saturate_all(drivers, args.seconds, share, workers)),
            lambda: _saturate_all(floors, args.seconds, share, [fproc.pid]),
            args.rounds,
        )
        return {
            "associations": len(drivers),
            "worker_processes": len(workers),
            **scp,
            "floor_flows_per_s": floor["flows_per_s"],
            "floor_failed": floor["failed"],
            "stray_indications": sum(x.stray for x in drivers + floors),
            "not_connect": sum(x.not_connect for x in drivers),
            **paired,
        }
    finally:
        for d in drivers + floors:
            d.peer.close()
        _stop_scp(fproc)
        _stop_scp(proc)


async def _saturate_all(
    drivers: list[Driver], seconds: float, share: int, servers: list[int]
) -> dict[str, Any]:
    """Saturate every association of ``drivers`` at once, ``share`` flows in flight on each:
    flows/s and the CPU per flow of the ``servers`` (process IDs) together."""
    cpu0 = sum(_cpu_seconds(w) for w in servers)
    parts = await asyncio.gather(*(saturate(d, seconds, share) for d in drivers))
    cpu = sum(_cpu_seconds(w) for w in servers) - cpu0
    flows = sum(p["flows"] for p in parts)
    secs = max(p["seconds"] for p in parts)
    return {
        "flows": flows,
        "failed": sum(p["failed"] for p in parts),
        "flows_per_s": round(flows / secs, 1),
        "scp_cpu_ms_per_flow": round(cpu * 1000 / max(1, flows), 3),
        "scp_cpu_utilisation": round(cpu / secs, 2),
    }


# Where self time goes, by layer (idle time in epoll excluded).
_BUCKETS = (
    ("pycrate (CAP/INAP ASN.1 BER)", ("pycrate",)),
    ("scp codecs (ops, numbers, tcap, sccp, m3ua)", ("/scp/codecs/",)),
    ("scp protocol cores (m3ua, sccp, tcap)", ("/scp/core/",)),
    ("call service + flows", ("/scp/service/", "/scp/flows/", "/scp/state/")),
    ("node + adapters", ("/scp/app.py", "/scp/adapters/")),
    ("asyncpg (PostgreSQL client)", ("asyncpg",)),
    ("logging", ("structlog", "logging")),
)


def _profile_summary(path: str) -> dict[str, Any]:
    st = pstats.Stats(path, stream=io.StringIO())
    stats = st.stats  # type: ignore[attr-defined]
    idle = sum(
        v[2] for k, v in stats.items() if k[2] == "<method 'poll' of 'select.epoll' objects>"
    )
    busy = sum(v[2] for v in stats.values()) - idle
    buckets: dict[str, float] = {}
    rows = []
    for (file, line, fn), (_cc, _nc, tt, _ct, _) in stats.items():
        if fn == "<method 'poll' of 'select.epoll' objects>":
            continue
        name = "asyncio, sockets, builtins"
        for label, needles in _BUCKETS:
            if any(n in file for n in needles):
                name = label
                break
        if file == "~" and ("send" in fn or "recv" in fn):
            name = "socket syscalls"
        buckets[name] = buckets.get(name, 0.0) + tt
        rows.append((tt, f"{Path(file).name}:{line}:{fn}"))
    rows.sort(reverse=True)
    return {
        "busy_cpu_s": round(busy, 3),
        "by_layer_pct": {
            k: round(100 * v / busy, 1) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])
        },
        "top_functions_self_pct": {r[1]: round(100 * r[0] / busy, 1) for r in rows[:12]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", help="run the SCP with this config (internal)")
    ap.add_argument("--floor", type=int, help="run the fixed-answer floor on this port (internal)")
    ap.add_argument("--profile", help="with --serve: write a cProfile here on exit")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        default=NodeConfig().event_loop,
        help="the loop of the SCP and the floor (default: [node] event_loop's)",
    )
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="SCP / floor saturation rounds")
    ap.add_argument(
        "--no-notify",
        action="store_true",
        help="experiment: leave out the notifications hook",
    )
    ap.add_argument(
        "--async-commit",
        action="store_true",
        help="experiment: synchronous_commit = off on the bench database",
    )
    args = ap.parse_args()
    if args.floor:
        from scp.app import run_in_loop
        from scp.config import load_config

        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            # on the loop the SCP runs on (its config's [node] event_loop)
            run_in_loop(load_config(args.serve), _floor(args.floor))
        return
    if args.serve:
        from scp.app import run_in_loop
        from scp.config import load_config

        # the loop [node] event_loop names, as `mcn-scp run` has it
        run_in_loop(load_config(args.serve), _serve(args.serve, args.profile))
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    tmp = Path(tempfile.mkdtemp(prefix="mcn-bench-"))
    dsn = os.environ.get("MCN_DATABASE_URL")
    server = None
    if not dsn:
        server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
        dsn = server.get_uri()
    try:
        print(json.dumps(asyncio.run(_run(args, dsn, tmp)), indent=2))
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
