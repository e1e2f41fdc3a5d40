"""The deployment files in deploy/: the systemd units and the two-node example configuration.

Each node configuration loads as the node would load it (every key validated); the two nodes
are one application server (same routing context, point code, global title, traffic mode)
with distinct names and worker IDs, on the same database (one EnvironmentFile DSN). The units
pass ``systemd-analyze verify`` where systemd is installed (ExecStart pointed at this
installation's ``mcn-scp``, which verify requires to exist), else a parse of their keys; and
they carry what operations rely on: the stop signal the node handles, a stop timeout, restart
on failure but not on a bad configuration, an EnvironmentFile, and the hardening options.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scp.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MCN_SCP = Path(sys.executable).parent / "mcn-scp"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def _unit(path: Path) -> configparser.ConfigParser:
    # systemd repeats keys (SystemCallFilter=): keep the last, as an override would
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(path.read_text())
    return p


def test_two_nodes_are_one_application_server_on_one_database() -> None:
    one, two = (load_config(DEPLOY / "two-node" / f"scp-{n}.toml") for n in (1, 2))
    assert one.node.name != two.node.name
    assert one.node.worker_id != two.node.worker_id
    assert one.m3ua.routing_context == two.m3ua.routing_context
    assert one.m3ua.local_pc == two.m3ua.local_pc
    assert one.sccp.global_title == two.sccp.global_title
    assert one.m3ua.traffic_mode == two.m3ua.traffic_mode == "loadshare"
    assert one.m3ua.peers == two.m3ua.peers and one.m3ua.role == "client"
    assert one.m3ua.asp_identifier != two.m3ua.asp_identifier
    assert (one.smpp.host, one.smpp.system_id) == (two.smpp.host, two.smpp.system_id)
    assert one.database == two.database
    assert one.web.listen != two.web.listen
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "two-node" / "mcn-scp.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["MCN_CONFIG"].endswith("scp-1.toml")
    dsn = urlsplit(env["MCN_DATABASE_URL"])
    assert dsn.netloc.count(",") == 1 and "target_session_attrs=read-write" in dsn.query


@pytest.mark.parametrize("path", UNITS, ids=[u.name for u in UNITS])
def test_unit_carries_what_operations_rely_on(path: Path) -> None:
    svc = _unit(path)["Service"]
    assert svc["KillSignal"] == "SIGTERM"  # the node's clean stop (README "Running the node")
    assert svc["Restart"] == "on-failure" and svc["RestartPreventExitStatus"] == "2"
    assert float(svc["TimeoutStopSec"]) > 5  # beyond the node's own grace periods
    assert svc["EnvironmentFile"].startswith("/etc/mcn-scp/")
    assert svc["ExecStart"].split()[:2] == [
        "/opt/mcn-scp/bin/mcn-scp",
        "run" if path.name == "mcn-scp.service" else "web",
    ]
    assert svc["User"] and svc["User"] != "root"
    for key, value in HARDENING.items():
        assert svc[key] == value, key


@pytest.mark.parametrize("path", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(path: Path, tmp_path: Path) -> None:
    unit = tmp_path / path.name
    unit.write_text(path.read_text().replace("/opt/mcn-scp/bin/mcn-scp", str(MCN_SCP)))
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # no systemd here: every line is a section, a comment or a key = value
        _unit(unit)
        return
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too, but says so: nothing may be said
    out = [line for line in (r.stdout + r.stderr).splitlines() if path.name in line]
    assert r.returncode == 0 and out == [], r.stdout + r.stderr
