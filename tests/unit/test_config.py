"""The config contract (ARCHITECTURE §3): the example parses; every bad key or value is named."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from scp.app import run_in_loop
from scp.config import (
    DEFAULT_CONFIG,
    ConfigError,
    config_from_data,
    config_to_data,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]


def test_example_is_the_contract() -> None:
    cfg = load_config(REPO / "conf" / "example.toml")
    assert cfg.m3ua.role == "server"
    assert cfg.m3ua.transport == "tcp"
    assert cfg.m3ua.listen == "127.0.0.1:2905"
    assert cfg.m3ua.routing_context == 1
    assert cfg.m3ua.local_pc == 100
    assert cfg.m3ua.network_indicator == 2
    assert cfg.m3ua.traffic_mode == "loadshare"
    assert cfg.sccp.global_title == "8613800000"
    assert (cfg.sccp.ssn.cap, cfg.sccp.ssn.map, cfg.sccp.ssn.sc, cfg.sccp.ssn.inap) == (
        146,
        147,
        8,
        241,
    )
    assert cfg.smpp.window == 10 and cfg.smpp.source_addr == "12599"
    assert cfg.ivr.mode == "connect" and cfg.ivr.number == "8613800999"
    assert cfg.service.terminating_service_key == 100
    assert cfg.service.selfcare_service_key == 200
    assert cfg.service.window_hours == 24
    assert DEFAULT_CONFIG == REPO / "conf" / "example.toml"


def test_empty_file_gives_defaults() -> None:
    cfg = parse_config("")
    assert cfg.m3ua.local_pc == 100 and cfg.sccp.ssn.inap == 241


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[m3ua]\nrole = 'gateway'", "m3ua.role"),
        ("[m3ua]\ntransport = 'udp'", "m3ua.transport"),
        ("[m3ua]\nlisten = '127.0.0.1'", "m3ua.listen"),
        ("[m3ua]\nlisten = 'example:99999'", "m3ua.listen"),
        ("[m3ua]\nrole = 'client'", "m3ua.peers"),
        ("[m3ua]\nrole = 'client'\npeers = ['1.2.3.4']", "m3ua.peers[0]"),
        ("[m3ua]\nlocal_pc = 16384", "m3ua.local_pc"),
        ("[m3ua]\nlocal_pc = '100'", "m3ua.local_pc"),
        ("[m3ua]\nnetwork_indicator = 4", "m3ua.network_indicator"),
        ("[m3ua]\ntraffic_mode = 'roundrobin'", "m3ua.traffic_mode"),
        ("[m3ua]\nrouting_contxt = 1", "m3ua.routing_contxt"),
        ("[sccp]\nglobal_title = '86-138'", "sccp.global_title"),
        ("[sccp.ssn]\ncap = 0", "sccp.ssn.cap"),
        ("[sccp.ssn]\ninap = 146", "sccp.ssn.inap"),
        ("[sccp.ssn]\nussd = 9", "sccp.ssn.ussd"),
        ("[smpp]\nbackend = 'http'", "smpp.backend"),
        ("[smpp]\nwindow = 0", "smpp.window"),
        ("[smpp]\npassword = 'far-too-long'", "smpp.password"),
        ("[ivr]\nmode = 'sip'", "ivr.mode"),
        ("[ivr]\nnumber = '+86138'", "ivr.number"),
        ("[service]\nselfcare_service_key = 100", "service.selfcare_service_key"),
        ("[service]\nwindow_hours = 0", "service.window_hours"),
        ("[node]\nworker_id = 256", "node.worker_id"),
        ("[web]\nnice = 20", "web.nice"),
        ("[web]\nnice = -1", "web.nice"),
        ("[nodes]\nname = 'x'", "nodes"),
        ("[tcap]\nidle_timeout = true", "tcap.idle_timeout"),
        ("[m3ua]\nmax_connections_per_address = 0", "m3ua.max_connections_per_address"),
        # a share not below the whole table protects no one
        ("[tcap]\nmax_dialogues = 10000", "tcap.max_dialogues_per_peer"),
        (
            "[tcap]\nmax_dialogues = 10\nmax_dialogues_per_peer = 5\n"
            "max_dialogues_per_association = 10",
            "tcap.max_dialogues_per_association",
        ),
    ],
)
def test_bad_values_are_named(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert e.value.key == key, str(e.value)


BIND = "[m3ua]\n{pcf}[[m3ua.binding]]\naddress = {address}\npoint_codes = {pcs}\n"


@pytest.mark.parametrize(
    ("pcf", "address", "pcs", "key"),
    [
        ("", "'10.0.0.300'", "[200]", "m3ua.binding[0].address"),
        ("", "'10.0.0.1:2905'", "[200]", "m3ua.binding[0].address"),
        ("", "'switch-1'", "[200]", "m3ua.binding[0].address"),
        ("", "10", "[200]", "m3ua.binding[0].address"),
        ("", "'10.0.0.1'", "[]", "m3ua.binding[0].point_codes"),
        ("", "'10.0.0.1'", "[200, 'two hundred']", "m3ua.binding[0].point_codes[1]"),
        ("", "'10.0.0.1'", "['300-200']", "m3ua.binding[0].point_codes[0]"),
        ("", "'10.0.0.1'", "[200, true]", "m3ua.binding[0].point_codes[1]"),
        ("", "'10.0.0.1'", "['90-110']", "m3ua.binding[0].point_codes[0]"),  # local_pc 100
        # out of range for the network's point-code format: 14-bit ITU, 24-bit China
        ("", "'10.0.0.1'", "[16384]", "m3ua.binding[0].point_codes[0]"),
        ("", "'10.0.0.1'", "['16000-16384']", "m3ua.binding[0].point_codes[0]"),
        ("pc_format = 'china'\n", "'10.0.0.1'", "[16777216]", "m3ua.binding[0].point_codes[0]"),
    ],
)
def test_bad_bindings_are_named(pcf: str, address: str, pcs: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(BIND.format(pcf=pcf, address=address, pcs=pcs))
    assert e.value.key == key, str(e.value)


def test_bindings_parse_into_ranges_per_address() -> None:
    text = BIND.format(
        pcf="pc_format = 'china'\n", address="'10.0.0.1'", pcs="[200, '70000-70100']"
    )
    text += "[[m3ua.binding]]\naddress = '2001:db8::7'\npoint_codes = [200]\n"
    cfg = parse_config(text)
    assert cfg.m3ua.pc_bindings() == (
        ("10.0.0.1", ((200, 200), (70000, 70100))),
        ("2001:db8::7", ((200, 200),)),
    )
    assert parse_config("").m3ua.pc_bindings() == ()
    with pytest.raises(ConfigError) as e:
        parse_config("[m3ua]\n[[m3ua.binding]]\naddress = '10.0.0.1'\npoint_code = [200]\n")
    assert e.value.key == "m3ua.binding[0].point_code"


def test_the_config_handed_to_the_web_child_reads_back_equal() -> None:
    """``mcn-scp run`` hands its config to its web child as plain values (JSON): every section,
    arrays of tables, tuples, an unset optional key and the source come back equal."""
    text = (REPO / "conf" / "example.toml").read_text()
    text += BIND.format(pcf="", address="'10.0.0.1'", pcs="[200, '300-310']").replace(
        "[m3ua]\n", ""
    )
    for cfg in (parse_config(text, "node.toml"), parse_config("[m3ua]\nasp_identifier = 7\n")):
        data = json.loads(json.dumps(config_to_data(cfg)))
        assert config_from_data(data, cfg.source) == cfg
    with pytest.raises(ConfigError) as e:  # and is validated again on the way in
        config_from_data({"web": {"nice": 99}}, "x")
    assert e.value.key == "web.nice"


def test_not_toml_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[m3ua\nrole=", "x.toml")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[node]\nname = 'scp-9'\n")
    monkeypatch.setenv("MCN_CONFIG", str(f))
    assert load_config().node.name == "scp-9"


def test_event_loop_uvloop_runs_the_node_on_uvloop() -> None:
    """[node] event_loop: the loop run_in_loop (mcn-scp run, mcn-scp web) gives the node."""
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    for name in ("asyncio", "uvloop"):
        run_in_loop(parse_config(f'[node]\nevent_loop = "{name}"'), main())
    run_in_loop(parse_config(""), main())  # the default
    assert seen[0].startswith("asyncio") and seen[1].startswith("uvloop"), seen
    assert seen[2].startswith("uvloop"), seen
    with pytest.raises(ConfigError) as e:
        parse_config('[node]\nevent_loop = "tokio"')
    assert e.value.key == "node.event_loop"
