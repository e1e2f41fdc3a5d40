"""Replay decoding rate: ``mcn-scp replay --json`` vs tshark on the same generated capture.

Prints one JSON object. The capture (100,000 M3UA DATA messages by default, SCTP-framed, written
once into a temp dir) repeats the dialogues of ``pcaps/demo-missed-call.pcap`` - InitialDP,
RequestReportBCSMEvent + Continue, EventReportBCSM, Connect, AlertServiceCentre and its result -
each with its own transaction IDs and calling number, so no decode is a cache hit.

Both tools run as subprocesses in the same run, writing to /dev/null, ``--rounds`` times each,
interleaved; the best round of each is kept. Rates are per CPU second of the child process (the
steadier number on a shared machine); wall times are printed too:

* ``mcn-scp replay FILE --decode-only --json``: the ladder down to CAP/MAP operations with their
  key fields, one JSON line per message (decode-only: no SCP is fed, this measures decoding);
* ``tshark -r FILE -T fields`` with the frame number, TCAP type and IDs and the CAP/MAP opcodes,
  the same information, with the SSN preferences of tests/tshark.py.

Target: replay at least half tshark's rate (``ratio`` >= 0.5).

    python bench/replay.py [--messages 100000] [--rounds 3] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scp.adapters.capture import SctpPcapWriter  # noqa: E402
from scp.codecs import m3ua  # noqa: E402
from scp.primitives import MtpTransfer  # noqa: E402
from scp.tools.pcapread import read_capture  # noqa: E402
from scp.tools.replay.feed import NumberRewriter, rewrite_tids  # noqa: E402
from scp.tools.replay.ladder import LadderDecoder  # noqa: E402

DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"
PREFS = [
    "-o",
    "camel.tcap.ssn:146",
    "-o",
    "gsm_map.tcap.ssn:6-9,145,147-150",
    "-o",
    "inap.ssn:106,241",
]
TSHARK_FIELDS = [
    "frame.number",
    "tcap.otid",
    "tcap.dtid",
    "camel.local",
    "gsm_old.localValue",
    "e164.called_party_number.digits",
]
CALLER = "8613900139000"


def _templates() -> list[tuple[MtpTransfer, bool]]:
    """The demo capture's SCCP messages (MSU, whether it is sent by the SCP)."""
    out = []
    for m in read_capture(str(DEMO)):
        x = getattr(m, "mtp3", None)
        if x is not None and x.si == 3:
            out.append((x, x.opc == 100))
    return out


def write_capture(path: Path, n: int) -> int:
    """``n`` (or slightly fewer, whole dialogues) DATA messages into ``path``; returns the count."""
    from scp.codecs import sccp as sccp_codec

    templates = _templates()
    dec = LadderDecoder()
    parsed = []
    for x, from_scp in templates:
        e = dec.decode_transfer(x)
        parsed.append((x, from_scp, sccp_codec.decode(x.data), e))
    w = SctpPcapWriter.open(str(path))
    t = 1_764_000_000.0
    written = 0
    i = 0
    msc, scp = ("10.0.0.2", 2906), ("10.0.0.1", 2905)
    while written + len(parsed) <= n:
        # Per dialogue: fresh transaction IDs (network and SCP side) and a new calling number.
        net_tid = (0x10000000 + 2 * i).to_bytes(4, "big")
        scp_tid = (0x20000000 + 2 * i).to_bytes(4, "big")
        net_tid2 = (0x10000001 + 2 * i).to_bytes(4, "big")
        caller = f"{int(CALLER) + i % 900_000:013d}"
        numbers = NumberRewriter([f"{CALLER}={caller}"])
        for x, from_scp, m, e in parsed:
            tdata = e.tcap_data
            second = any(o.name == "alertServiceCentre" for o in e.ops)
            n_tid = net_tid2 if second else net_tid
            kw = {}
            if e.otid:
                kw["otid"] = scp_tid if from_scp else n_tid
            if e.dtid:
                kw["dtid"] = n_tid if from_scp else scp_tid
            tdata = numbers.apply(rewrite_tids(tdata, **kw))
            data = sccp_codec.encode(type(m)(called=m.called, calling=m.calling, data=tdata))
            msg = m3ua.encode_data(MtpTransfer(x.opc, x.dpc, x.si, x.ni, x.mp, x.sls, data), 1)
            w.write(msg, ts=t, src=scp if from_scp else msc, dst=msc if from_scp else scp)
            t += 0.0005
            written += 1
        i += 1
    w.close()
    return written


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child): CPU time is the steadier number on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the capture here and keep it")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mcn-bench-replay-"))
    try:
        path = a.keep or tmp / "replay-bench.pcap"
        t0 = time.perf_counter()
        n = write_capture(path, a.messages)
        gen_s = time.perf_counter() - t0
        ours_cmd = [
            sys.executable,
            "-m",
            "scp",
            "--log-level",
            "warning",
            "replay",
            str(path),
            "--decode-only",
            "--json",
        ]
        tshark = shutil.which("tshark")
        theirs_cmd = None
        if tshark:
            theirs_cmd = [tshark, "-n", "-r", str(path), *PREFS, "-T", "fields"]
            for f in TSHARK_FIELDS:
                theirs_cmd += ["-e", f]
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for _ in range(a.rounds):  # interleaved, so load changes hit both alike
            ours.append(_timed(ours_cmd))
            if theirs_cmd:
                theirs.append(_timed(theirs_cmd))
        o_wall, o_cpu = min(w for w, _ in ours), min(c for _, c in ours)
        result: dict[str, object] = {
            "bench": "replay",
            "messages": n,
            "capture_bytes": path.stat().st_size,
            "generate_s": round(gen_s, 2),
            "replay_json_wall_s": round(o_wall, 3),
            "replay_json_cpu_s": round(o_cpu, 3),
            "replay_json_msgs_per_s": round(n / o_cpu),
        }
        if theirs:
            t_wall, t_cpu = min(w for w, _ in theirs), min(c for _, c in theirs)
            result.update(
                {
                    "tshark_fields_wall_s": round(t_wall, 3),
                    "tshark_fields_cpu_s": round(t_cpu, 3),
                    "tshark_msgs_per_s": round(n / t_cpu),
                    "ratio": round(t_cpu / o_cpu, 2),
                    "ratio_wall": round(t_wall / o_wall, 2),
                    "target_ratio": 0.5,
                    "meets_target": t_cpu / o_cpu >= 0.5,
                }
            )
        else:
            result["tshark"] = "not installed"
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
