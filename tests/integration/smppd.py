"""The test SMSC (tests/smppd/server.js, npm ``smpp`` 0.5) as a Python handle and pytest fixture.

:class:`Smppd` runs ``npm ci`` once if node_modules is missing, starts the server on free
loopback ports, and offers its control channel (throttle, hold, MO, crash) and the JSON-lines
log of every submit_sm it received. ``restart()`` crashes it and starts it again on the same
port, as an SMSC restart looks to the ESME. Also :func:`write_smpp_pcap`, which frames SMPP PDUs
as one TCP stream to port 2775 so tshark's SMPP dissector can check them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port

SMPPD_DIR = Path(__file__).resolve().parent.parent / "smppd"


def ensure_node_modules() -> None:
    if (SMPPD_DIR / "node_modules" / "smpp").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed: the test SMSC needs them")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=SMPPD_DIR,
        check=True,
        timeout=300,
    )


class Smppd:
    """One test SMSC process; ``port`` stays the same across restarts."""

    def __init__(
        self,
        log_path: Path,
        *,
        system_id: str = "mcn",
        password: str = "secret",
        receipts: bool = True,
    ) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.control_port = free_port()
        self.system_id = system_id
        self.password = password
        self.receipts = receipts
        self.clock_offset = 0.0  # s the SMSC's clock runs off the machine's (kept on restart)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        ensure_node_modules()
        args = [
            "node",
            str(SMPPD_DIR / "server.js"),
            "--port",
            str(self.port),
            "--control-port",
            str(self.control_port),
            "--log",
            str(self.log_path),
            "--system-id",
            self.system_id,
            "--password",
            self.password,
            "--clock-offset-ms",
            str(round(self.clock_offset * 1000)),
        ]
        if not self.receipts:
            args.append("--no-receipts")
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("{") and json.loads(line).get("ready"):
                return
            self.proc.wait(5)
            # the port may still be held by the previous process for a moment
            if time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"test SMSC did not start: {line!r} {err}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
        self.proc = None

    def crash(self) -> None:
        """The SMSC dies between two PDUs (its event loop exits): connections drop."""
        try:
            self.control("POST", "/crash")
        except OSError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stop()

    def restart(self, down_for: float = 0.0) -> None:
        self.crash()
        if down_for:
            time.sleep(down_for)
        self.start()

    # control channel -----------------------------------------------------------------------

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def set_clock_offset(self, seconds: float) -> None:
        """Run the SMSC's clock ``seconds`` off the machine's: its receipts and log times then
        fall on the day the test process lives in (tests/dates.py)."""
        self.clock_offset = seconds
        if self.proc is not None:
            self.control("POST", "/clock", {"offset_ms": round(seconds * 1000)})

    def throttle(self, count: int, status: int = 0x58) -> None:
        self.control("POST", "/throttle", {"count": count, "status": status})

    def hold(self, on: bool) -> None:
        self.control("POST", "/hold", {"on": on})

    def send_mo(
        self, source: str, destination: str, text: str, data_coding: int | None = None
    ) -> int:
        body: dict[str, Any] = {"source": source, "destination": destination, "text": text}
        if data_coding is not None:
            body["data_coding"] = data_coding
        return int(self.control("POST", "/mo", body)["sent"])

    def send_mo_parts(
        self, source: str, destination: str, parts: list[bytes], data_coding: int
    ) -> int:
        """A concatenated MO: one deliver_sm (esm_class 0x40) per part, UDH included."""
        body = {
            "source": source,
            "destination": destination,
            "data_coding": data_coding,
            "parts": [p.hex() for p in parts],
        }
        return int(self.control("POST", "/mo", body)["sent"])

    def forward_receipt(self, message_id: str, owner: str, destination: str) -> int:
        """Make the SMSC forward the receipt of ``owner``'s own SMS to ``destination``."""
        body = {"id": message_id, "owner": owner, "destination": destination}
        return int(self.control("POST", "/forward-receipt", body)["sent"])

    def set_receipt_stat(self, stat: str) -> None:
        self.control("POST", "/receipt", {"stat": stat})

    def delivers(self) -> list[dict[str, Any]]:
        """Every deliver_sm_resp the SMSC got: kind, attempt, seq, sent_at, resp_at, status."""
        return list(self.control("GET", "/delivers"))

    def set_redeliver(self, max_attempts: int = 5, delay_ms: int = 200) -> None:
        self.control("POST", "/redeliver", {"max": max_attempts, "delay_ms": delay_ms})

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "/stats"))

    def submits(self) -> list[dict[str, Any]]:
        """Every submit_sm the server logged (all runs), oldest first."""
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def accepted(self) -> list[dict[str, Any]]:
        return [s for s in self.submits() if s["status"] == 0]


def smppd_fixture(tmp_path_factory: pytest.TempPathFactory, name: str = "smppd") -> Iterator[Smppd]:
    d = tmp_path_factory.mktemp(name)
    server = Smppd(d / "submits.jsonl")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_smpp_pcap(pdus: Sequence[tuple[str, bytes]], path: Path) -> Path:
    """Frame PDUs ("out" ESME->SMSC, "in" back) as one TCP connection to port 2775 in a pcap."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    esme, smsc = ("127.0.0.1", 40000), ("127.0.0.2", 2775)
    seq = {"out": 1000, "in": 5000}
    frames = []
    t = time.time()
    for i, (direction, pdu) in enumerate(pdus):
        src, dst = (esme, smsc) if direction == "out" else (smsc, esme)
        other = "in" if direction == "out" else "out"
        p = (
            Ether()
            / IP(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], flags="PA", seq=seq[direction], ack=seq[other])
            / pdu
        )
        p.time = t + i * 0.0001
        seq[direction] += len(pdu)
        frames.append(p)
    wrpcap(str(path), frames)
    return path
