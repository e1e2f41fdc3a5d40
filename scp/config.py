"""The configuration contract (ARCHITECTURE §3): TOML in, frozen dataclasses out, validated once.

Every section parses and is checked at start-up, so a typo in ``[ivr]`` stops the node before
it takes a call rather than when the first call needs the value. An unknown key or a bad value
raises :class:`ConfigError` naming the key as ``section.key``.

Environment overrides: ``MCN_CONFIG`` (the file when ``--config`` is not given), ``MCN_HOME``
and ``MCN_DATABASE_URL`` (read by ``scp.state``; not part of the file).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from scp.primitives import PointCodeFormat

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "example.toml"


class ConfigError(ValueError):
    """The configuration is invalid; ``key`` names the offending ``section.key``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


def _host_port(value: str, key: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(key, f"expected host:port, got {value!r}")
    host = host.strip("[]")
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(key, f"port is not a number in {value!r}") from None
    if not 0 <= p < 65536:  # 0: any free port (tests, ad-hoc labs)
        raise ConfigError(key, f"port out of range in {value!r}")
    return host, p


def _digits(value: str, key: str, *, min_len: int = 1, max_len: int = 20) -> str:
    if not value.isdigit() or not min_len <= len(value) <= max_len:
        raise ConfigError(key, f"expected {min_len}-{max_len} decimal digits, got {value!r}")
    return value


def _range(value: float, key: str, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(key, f"must be between {lo} and {hi}, got {value}")


@dataclass(frozen=True)
class NodeConfig:
    """[node]: identity of this SCP process."""

    name: str = "scp-1"
    worker_id: int = 0
    # `mcn-scp run` starts this many worker processes, with worker IDs worker_id,
    # worker_id + 1 ... (ARCHITECTURE §5); `--workers` overrides it
    workers: int = 1
    # the event loop `mcn-scp run` and `mcn-scp web` use: uvloop (libuv, a dependency; 12-15 %
    # less CPU per call in bench/calls.py) or asyncio's own, the fallback where uvloop cannot
    # be installed
    event_loop: Literal["asyncio", "uvloop"] = "uvloop"

    def validate(self) -> None:
        _range(self.worker_id, "node.worker_id", 0, 255)
        _range(self.workers, "node.workers", 1, 256 - self.worker_id)
        if not self.name:
            raise ConfigError("node.name", "must not be empty")
        if not self.name.isprintable() or set(self.name) & {"|", "\\"}:
            # it is a field of CDR / fee file headers (docs/cdr-format.md) and of call refs
            raise ConfigError(
                "node.name", f"{self.name!r}: no line breaks, control characters, | or \\"
            )
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError(
                "node.event_loop", 'uvloop is not installed: install it, or set "asyncio"'
            )


@dataclass(frozen=True)
class PeerBinding:
    """[[m3ua.binding]]: point codes (or ranges) whose DATA may come, and whose answers go, only
    over associations from ``address`` (the peer's IP address, no port). A point code may be
    bound to several addresses (a switch with more than one)."""

    address: str = ""
    point_codes: tuple[int | str, ...] = ()

    def validate_as(self, key: str, max_pc: int, local_pc: int) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise ConfigError(f"{key}.address", f"not an IP address: {self.address!r}") from None
        if not self.point_codes:
            raise ConfigError(f"{key}.point_codes", "must name at least one point code")
        for i, lo, hi in self._ranges(key, max_pc):
            if lo <= local_pc <= hi:
                raise ConfigError(f"{key}.point_codes[{i}]", f"contains m3ua.local_pc {local_pc}")

    def _ranges(self, key: str, max_pc: int) -> list[tuple[int, int, int]]:
        return [
            (i, *parse_pc_range(pc, f"{key}.point_codes[{i}]", max_pc))
            for i, pc in enumerate(self.point_codes)
        ]

    def ranges(self, max_pc: int) -> tuple[tuple[int, int], ...]:
        """The point codes as inclusive (low, high) ranges (validated already)."""
        return tuple((lo, hi) for _i, lo, hi in self._ranges("m3ua.binding", max_pc))


@dataclass(frozen=True)
class M3uaConfig:
    """[m3ua]: the SIGTRAN association(s) and our point code."""

    role: Literal["server", "client"] = "server"
    transport: Literal["tcp", "sctp"] = "tcp"
    listen: str = "127.0.0.1:2905"
    peers: tuple[str, ...] = ()
    routing_context: int = 1
    local_pc: int = 100
    # itu: 14-bit point codes (Q.704); china: 24-bit national point codes (GF 001-9001), also
    # three octets in SCCP addresses and SCMG (YDN 038-1997)
    pc_format: Literal["itu", "china"] = "itu"
    network_indicator: int = 2
    traffic_mode: Literal["override", "loadshare", "broadcast"] = "loadshare"
    beat_interval: float = 30.0
    beat_timeout: float = 10.0
    ack_timeout: float = 2.0
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    asp_identifier: int | None = None
    # server role: connections at once (beyond, a new one is closed at once), from one address
    # (the same number kept free for each [[m3ua.binding]] address), and s a new connection
    # has to reach ASP-ACTIVE before it is closed (0: no limit; bound addresses may stay
    # ASP-INACTIVE once up, as standbys)
    max_connections: int = 64
    max_connections_per_address: int = 8
    aspup_timeout: float = 10.0
    # point codes bound to peer addresses; none: a point code's answers follow the association
    # it was first seen on (README, "Hostile peers on the M3UA listener")
    binding: tuple[PeerBinding, ...] = ()

    def validate(self) -> None:
        if self.role == "server":
            host, _ = _host_port(self.listen, "m3ua.listen")
            try:
                ipaddress.ip_address(host)
            except ValueError:
                if host != "localhost":
                    raise ConfigError("m3ua.listen", f"not an IP address: {host!r}") from None
        for i, p in enumerate(self.peers):
            _host_port(p, f"m3ua.peers[{i}]")
        if self.role == "client" and not self.peers:
            raise ConfigError("m3ua.peers", "role = 'client' needs at least one peer")
        _range(self.routing_context, "m3ua.routing_context", 0, 0xFFFFFFFF)
        _range(self.local_pc, "m3ua.local_pc", 0, self.pcf.max_pc)
        _range(self.network_indicator, "m3ua.network_indicator", 0, 3)
        _range(self.beat_interval, "m3ua.beat_interval", 0, 3600)
        _range(self.beat_timeout, "m3ua.beat_timeout", 0.1, 3600)
        _range(self.ack_timeout, "m3ua.ack_timeout", 0.1, 60)
        _range(self.reconnect_min, "m3ua.reconnect_min", 0.01, 3600)
        _range(self.reconnect_max, "m3ua.reconnect_max", self.reconnect_min, 3600)
        _range(self.max_connections, "m3ua.max_connections", 1, 100_000)
        _range(self.max_connections_per_address, "m3ua.max_connections_per_address", 1, 100_000)
        _range(self.aspup_timeout, "m3ua.aspup_timeout", 0, 3600)
        if self.asp_identifier is not None:
            _range(self.asp_identifier, "m3ua.asp_identifier", 0, 0xFFFFFFFF)
        for i, b in enumerate(self.binding):
            b.validate_as(f"m3ua.binding[{i}]", self.pcf.max_pc, self.local_pc)

    def bound_addresses(self) -> frozenset[str]:
        """The peer addresses ``binding`` names (the listener keeps places for them)."""
        return frozenset(b.address for b in self.binding)

    def pc_bindings(self) -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
        """``binding`` as the M3UA layer takes it: (address, point-code ranges) pairs."""
        return tuple((b.address, b.ranges(self.pcf.max_pc)) for b in self.binding)

    @property
    def pcf(self) -> PointCodeFormat:
        """``pc_format`` as the codecs take it."""
        return PointCodeFormat(self.pc_format)


@dataclass(frozen=True)
class SsnConfig:
    """[sccp.ssn]: the local subsystems behind our one global title."""

    cap: int = 146
    map: int = 147
    sc: int = 8
    inap: int = 241

    def validate(self) -> None:
        seen: dict[int, str] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            _range(v, f"sccp.ssn.{f.name}", 2, 254)
            if v in seen and not {seen[v], f.name} <= {"map", "sc"}:
                raise ConfigError(f"sccp.ssn.{f.name}", f"SSN {v} already used by {seen[v]}")
            seen[v] = f.name


@dataclass(frozen=True)
class SccpConfig:
    """[sccp]: our global title, SSNs and the connectionless timers."""

    global_title: str = "8613800000"
    ssn: SsnConfig = field(default_factory=SsnConfig)
    default_dpc: int = 0
    reassembly_timeout: float = 10.0
    max_udt_data: int = 200

    def validate(self) -> None:
        _digits(self.global_title, "sccp.global_title", max_len=15)
        self.ssn.validate()
        # default_dpc is checked by Config.validate: its range is [m3ua] pc_format's
        _range(self.reassembly_timeout, "sccp.reassembly_timeout", 0.1, 60)
        _range(self.max_udt_data, "sccp.max_udt_data", 32, 247)


@dataclass(frozen=True)
class TcapConfig:
    """[tcap]: dialogue and operation timers."""

    idle_timeout: float = 60.0
    invoke_timeout: float = 10.0
    max_dialogues: int = 100_000
    # dialogues one peer (by OPC) may hold open at once: its share of max_dialogues, so that one
    # peer cannot lock out the others; beyond it a TC-BEGIN gets an ABORT, resourceLimitation
    max_dialogues_per_peer: int = 50_000
    # the same share for one association, whatever OPCs its peer writes (an unbound peer
    # cannot dodge its share by sending from several point codes)
    max_dialogues_per_association: int = 50_000

    def validate(self) -> None:
        _range(self.idle_timeout, "tcap.idle_timeout", 0.1, 3600)
        _range(self.invoke_timeout, "tcap.invoke_timeout", 0.1, 1800)
        _range(self.max_dialogues, "tcap.max_dialogues", 1, 10_000_000)
        for key in ("max_dialogues_per_peer", "max_dialogues_per_association"):
            share = getattr(self, key)
            _range(share, f"tcap.{key}", 1, 10_000_000)
            if share >= self.max_dialogues:
                # a share of everything protects no one: one peer could still fill the table
                raise ConfigError(
                    f"tcap.{key}",
                    f"{share} is not below tcap.max_dialogues ({self.max_dialogues})",
                )


@dataclass(frozen=True)
class SmppConfig:
    """[smpp]: the operator's SMSC, or the console sink."""

    backend: Literal["smpp", "console"] = "smpp"
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "mcn"
    password: str = "secret"
    source_addr: str = "12599"
    window: int = 10

    def validate(self) -> None:
        _range(self.port, "smpp.port", 1, 65535)
        if not 1 <= len(self.system_id) <= 15:
            raise ConfigError("smpp.system_id", "must be 1-15 characters (SMPP 3.4 §5.2.1)")
        if len(self.password) > 8:
            raise ConfigError("smpp.password", "must be at most 8 characters (SMPP 3.4 §5.2.2)")
        _digits(self.source_addr, "smpp.source_addr")
        _range(self.window, "smpp.window", 1, 1000)


@dataclass(frozen=True)
class IvrConfig:
    """[ivr]: how callers reach the media server, and where the menu sends them."""

    mode: Literal["connect", "ctr", "etc"] = "connect"
    number: str = "8613800999"
    operator: str = "8613800100"
    voicemail_deposit: str = "8613800200"
    # s: in connect mode the media server reports the caller's menu choice through the API; a
    # choice is accepted only for a missed call of that caller to that callee this recent
    choice_window: int = 600

    def validate(self) -> None:
        _digits(self.number, "ivr.number")
        _digits(self.operator, "ivr.operator")
        _digits(self.voicemail_deposit, "ivr.voicemail_deposit")
        _range(self.choice_window, "ivr.choice_window", 10, 86400)


@dataclass(frozen=True)
class ServiceConfig:
    """[service]: service keys and the notification window."""

    terminating_service_key: int = 100
    selfcare_service_key: int = 200
    window_hours: int = 24

    def validate(self) -> None:
        _range(self.terminating_service_key, "service.terminating_service_key", 0, 2**31 - 1)
        _range(self.selfcare_service_key, "service.selfcare_service_key", 0, 2**31 - 1)
        if self.selfcare_service_key == self.terminating_service_key:
            raise ConfigError(
                "service.selfcare_service_key", "must differ from terminating_service_key"
            )
        _range(self.window_hours, "service.window_hours", 1, 24 * 30)


@dataclass(frozen=True)
class AnnouncementConfig:
    """[call.announcements]: elementaryMessageIDs of the media server's recorded prompts."""

    menu: int = 1001  # "press 1 SMS when reachable, 2 voice message, 3 other number, 0 operator"
    invalid: int = 1002  # "your choice is not valid"
    goodbye: int = 1003
    enter_number: int = 1004  # "dial the number, then #"
    callback_ok: int = 1005  # "you will get an SMS when the subscriber can be reached"
    pin: int = 2001  # self-service: "enter your PIN, then #"
    pin_wrong: int = 2002
    pin_locked: int = 2003
    selfcare_menu: int = 2004
    missed_calls: int = 2005  # variable message: count, then the numbers
    done: int = 2006  # "your request is done"
    not_subscribed: int = 2007
    on_off: int = 2008  # "1 on, 2 off"
    add_remove: int = 2009  # "1 add, 2 remove, then the number"
    new_pin: int = 2010
    notify_mode: int = 2011  # "1 one SMS per call, 2 a summary, 3 none"
    voicemail_new: int = 2012  # variable message: how many voice messages are new
    service_choice: int = 2013  # "1 missed-call, 2 busy, 3 receipt, 4 voicemail, 5 forwarding"
    enter_msisdn: int = 2014  # "enter your mobile number, then #" (from another phone)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            _range(getattr(self, f.name), f"call.announcements.{f.name}", 0, 2**31 - 1)


@dataclass(frozen=True)
class CallConfig:
    """[call]: call handling: triggers, the caller's menu, forwarding and charging."""

    no_answer_timer: int = 20  # s, applicationTimer of the tNoAnswer DP (TS 29.078 §7.6)
    not_reachable_causes: tuple[int, ...] = (18, 19, 20, 27, 31)  # Q.850 busyCause values
    ivr_called_party: Literal["original-called", "redirecting", "prefix"] = "original-called"
    forwarding: bool = True  # forward busy / not-reachable calls of subscribers with forward_to
    forward_no_answer: bool = False
    charging_period: int = 300  # s, maxCallPeriodDuration of each ApplyCharging
    menu_retries: int = 3  # prompts before the goodbye announcement
    first_digit_timeout: int = 10
    inter_digit_timeout: int = 5
    digit_callback: str = "1"
    digit_voicemail: str = "2"
    digit_other_number: str = "3"
    digit_operator: str = "0"
    assist_timeout: float = 10.0  # s to wait for the media server's AssistRequestInstructions
    announcement_timeout: float = 60.0  # s to wait for SpecializedResourceReport
    release_cause: int = 31  # Q.850 cause of our ReleaseCall (normal, unspecified)
    callback_fee: str = "0.10"  # CNY per callback request, charged to the caller
    callback_hours: int = 24  # a callback request expires after this
    voicemail_retrieval: str = "8613800201"  # self-service: where mailbox owners are connected
    announcements: AnnouncementConfig = field(default_factory=AnnouncementConfig)

    def validate(self) -> None:
        _range(self.no_answer_timer, "call.no_answer_timer", 1, 120)
        for i, c in enumerate(self.not_reachable_causes):
            _range(c, f"call.not_reachable_causes[{i}]", 1, 127)
        if 17 in self.not_reachable_causes:
            raise ConfigError(
                "call.not_reachable_causes", "17 (user busy) is busy, not unreachable"
            )
        _range(self.charging_period, "call.charging_period", 1, 86400)
        _range(self.menu_retries, "call.menu_retries", 1, 9)
        _range(self.first_digit_timeout, "call.first_digit_timeout", 1, 127)
        _range(self.inter_digit_timeout, "call.inter_digit_timeout", 1, 127)
        digits = [
            self.digit_callback,
            self.digit_voicemail,
            self.digit_other_number,
            self.digit_operator,
        ]
        for name, d in zip(
            ("digit_callback", "digit_voicemail", "digit_other_number", "digit_operator"),
            digits,
            strict=True,
        ):
            if len(d) != 1 or d not in "0123456789*#":
                raise ConfigError(f"call.{name}", f"must be one key 0-9 * #, got {d!r}")
        if len(set(digits)) != len(digits):
            raise ConfigError("call.digit_callback", "menu digits must differ")
        _range(self.assist_timeout, "call.assist_timeout", 0.1, 60)
        _range(self.announcement_timeout, "call.announcement_timeout", 0.1, 1800)
        _range(self.release_cause, "call.release_cause", 1, 127)
        try:
            fee = Decimal(self.callback_fee)
        except InvalidOperation:
            raise ConfigError("call.callback_fee", f"not a number: {self.callback_fee!r}") from None
        if not fee.is_finite() or fee < 0:
            raise ConfigError("call.callback_fee", "must be >= 0")
        _range(self.callback_hours, "call.callback_hours", 1, 24 * 30)
        _digits(self.voicemail_retrieval, "call.voicemail_retrieval")
        self.announcements.validate()


@dataclass(frozen=True)
class RatingConfig:
    """[rating]: call category prefix rules (scp.service.rating); tariffs live in the database."""

    country_code: str = "86"
    local_prefixes: tuple[str, ...] = ()  # E.164 prefixes rated local, e.g. ["8610"]
    hmt_prefixes: tuple[str, ...] = ("852", "853", "886")
    # the operator's own number ranges (E.164 prefixes): calls there are on-net (网内)
    on_net_prefixes: tuple[str, ...] = ()

    def validate(self) -> None:
        _digits(self.country_code, "rating.country_code", max_len=3)
        for i, p in enumerate(self.local_prefixes):
            _digits(p, f"rating.local_prefixes[{i}]", max_len=15)
        for i, p in enumerate(self.hmt_prefixes):
            _digits(p, f"rating.hmt_prefixes[{i}]", max_len=15)
        for i, p in enumerate(self.on_net_prefixes):
            _digits(p, f"rating.on_net_prefixes[{i}]", max_len=15)


@dataclass(frozen=True)
class NotifyConfig:
    """[notify]: notification SMS, HLR alert registration and SMS commands."""

    language: Literal["zh", "en"] = "zh"  # for recipients who are not subscribers
    templates_dir: str = ""  # empty: conf/templates of the installation
    timezone: str = "Asia/Shanghai"  # texts, ad windows, and the day services / tariffs count
    busy_window: float = 60.0  # s: busy attempts from one caller within it make one SMS
    callback_sms: bool = True  # tell callers who pressed 1 that the callee is reachable
    alert_via_hlr: bool = True  # SRI-SM + ReportSM-DeliveryStatus after a not-reachable call
    hlr_gt: str = ""  # empty: address the HLR by the callee's MSISDN as global title
    hlr_ssn: int = 6
    sc_address: str = ""  # our SC address for the HLR's MWD list; empty: sccp.global_title
    alert_refresh: float = 3600.0  # s: do not register again within this after a success
    alert_max_attempts: int = 5
    alert_retry: float = 30.0  # s before retrying a failed registration, doubled each time
    alert_timeout: float = 10.0  # s to wait for the HLR's answer
    alert_poll: float = 1.0  # s between looks for pending registrations
    ad_segment_budget: int = 1  # segments the SMS with its ad may take; 0: no ads
    max_attempts: int = 8  # outbox: submit attempts before giving up
    retry_base: float = 5.0  # s before the 2nd attempt, then doubled
    retry_cap: float = 3600.0
    lease: float = 60.0  # s a claimed row stays with its sender before another may take it
    service_number: str = ""  # MO SMS commands (CX, KT...) go here; empty: smpp.source_addr
    command_category: Literal["on-net", "local", "national", "hmt", "international"] = "local"

    def validate(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError("notify.timezone", f"unknown time zone {self.timezone!r}") from None
        if self.templates_dir and not Path(self.templates_dir).is_dir():
            raise ConfigError("notify.templates_dir", f"not a directory: {self.templates_dir!r}")
        _range(self.busy_window, "notify.busy_window", 0, 3600)
        if self.hlr_gt:
            _digits(self.hlr_gt, "notify.hlr_gt", max_len=15)
        _range(self.hlr_ssn, "notify.hlr_ssn", 2, 254)
        if self.sc_address:
            _digits(self.sc_address, "notify.sc_address", max_len=15)
        _range(self.alert_refresh, "notify.alert_refresh", 0, 30 * 86400)
        _range(self.alert_max_attempts, "notify.alert_max_attempts", 1, 100)
        _range(self.alert_retry, "notify.alert_retry", 0.1, 86400)
        _range(self.alert_timeout, "notify.alert_timeout", 0.1, 600)
        _range(self.alert_poll, "notify.alert_poll", 0.01, 600)
        _range(self.ad_segment_budget, "notify.ad_segment_budget", 0, 10)
        _range(self.max_attempts, "notify.max_attempts", 1, 1000)
        _range(self.retry_base, "notify.retry_base", 0.01, 86400)
        _range(self.retry_cap, "notify.retry_cap", self.retry_base, 7 * 86400)
        _range(self.lease, "notify.lease", 1, 86400)
        if self.service_number:
            _digits(self.service_number, "notify.service_number")


@dataclass(frozen=True)
class VoicemailConfig:
    """[voicemail]: voice messages deposited by the media server (stored in PostgreSQL)."""

    max_bytes: int = 4_194_304  # a recording larger than this is refused (413)
    max_seconds: int = 180  # a recording longer than this is refused (413)
    max_messages: int = 20  # a mailbox holding this many refuses new ones (409)
    retention_days: int = 30  # older messages are deleted by the retention job
    retention_interval: float = 3600.0  # s between two runs of the retention job

    def validate(self) -> None:
        _range(self.max_bytes, "voicemail.max_bytes", 1024, 256 * 1024 * 1024)
        _range(self.max_seconds, "voicemail.max_seconds", 1, 3600)
        _range(self.max_messages, "voicemail.max_messages", 1, 10_000)
        _range(self.retention_days, "voicemail.retention_days", 1, 3650)
        _range(self.retention_interval, "voicemail.retention_interval", 1, 86400)


@dataclass(frozen=True)
class ApiConfig:
    """[api]: the carrier integration API under /api/v1 (tokens: ``mcn-scp api token``)."""

    idempotency_hours: int = 24  # an Idempotency-Key is remembered this long
    max_import_bytes: int = 1_073_741_824  # a bulk-load CSV larger than this is refused (413)

    def validate(self) -> None:
        _range(self.idempotency_hours, "api.idempotency_hours", 1, 24 * 30)
        _range(self.max_import_bytes, "api.max_import_bytes", 1024, 64 * 1024**3)


@dataclass(frozen=True)
class BillingConfig:
    """[billing]: the monthly run of product fees and when the callback fee is due."""

    proration: Literal["daily", "full"] = "daily"  # daily: by the days subscribed in the month
    callback_fee_on: Literal["submitted", "delivered"] = "submitted"  # its SMS reached...
    chunk: int = 20_000  # subscription rows billed per committed chunk of a run (the resume point)

    def validate(self) -> None:
        _range(self.chunk, "billing.chunk", 1, 1_000_000)


@dataclass(frozen=True)
class CdrConfig:
    """[cdr]: the CDR files for the carrier's billing mediation (docs/cdr-format.md)."""

    directory: str = ""  # where `cdr export --files` writes them; empty: --dir names it
    rotation: Literal["hourly", "daily"] = "daily"  # the period a file covers

    def validate(self) -> None:
        if self.directory and not Path(self.directory).is_dir():
            raise ConfigError("cdr.directory", f"not a directory: {self.directory!r}")


@dataclass(frozen=True)
class RetentionConfig:
    """[retention]: days each kind of record is kept (0: for ever), and the job in the node
    deleting older ones in small batches, one node at a time (scp.flows.retention)."""

    missed_calls: int = 0  # missed calls and callback requests no longer open
    sms_outbox: int = 0  # SMS in a final state (never queued or in flight)
    receipts: int = 0  # SMPP delivery receipts as received
    mo_sms: int = 0  # mobile-originated SMS already handled
    audit_log: int = 0
    cdr: int = 0  # CDRs, only once they are in a written CDR file (docs/cdr-format.md)
    interval: float = 3600.0  # s between passes
    batch: int = 1000  # rows per delete (one short transaction each)
    pause: float = 0.05  # s between two batches, so the job never hogs the database

    KINDS = ("missed_calls", "sms_outbox", "receipts", "mo_sms", "audit_log", "cdr")

    def validate(self) -> None:
        for k in self.KINDS:
            _range(getattr(self, k), f"retention.{k}", 0, 100 * 366)
        _range(self.interval, "retention.interval", 1, 7 * 86400)
        _range(self.batch, "retention.batch", 1, 100_000)
        _range(self.pause, "retention.pause", 0, 60)


@dataclass(frozen=True)
class LogConfig:
    """[log]: level and output format (JSON when not on a TTY, by default)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"

    def validate(self) -> None:
        pass


@dataclass(frozen=True)
class WebConfig:
    """[web]: the one HTTP application (portal, operator console, API, metrics and health).

    ``listen`` empty: ``mcn-scp run`` serves no HTTP (``mcn-scp web`` then refuses to start).
    """

    listen: str = ""
    # PEM files: HTTPS served by this process. Empty: plain HTTP (behind a TLS proxy, say so
    # in trusted_proxies so the proxy's X-Forwarded-Proto is believed).
    tls_cert: str = ""
    tls_key: str = ""
    # addresses whose X-Forwarded-For / X-Forwarded-Proto headers are believed
    trusted_proxies: tuple[str, ...] = ()
    # concurrent connections above which new ones are refused (uvicorn limit_concurrency)
    max_connections: int = 1000
    # sessions (portal and console): ended after session_idle s without a request, and
    # session_lifetime s after the login whatever happens
    session_idle: float = 1800.0
    session_lifetime: float = 43200.0
    # login throttling: failed logins within login_window s, per number (or operator name)
    # and per client address, beyond which logins are refused until the window moves on
    login_window: float = 900.0
    login_max_per_number: int = 5
    login_max_per_address: int = 20
    # one-time codes by SMS: good for code_ttl s; one per code_interval s and at most
    # code_max_per_day a day per number (and code_max_per_day x 4 per client address)
    code_ttl: float = 600.0
    code_interval: float = 60.0
    code_max_per_day: int = 5
    # `mcn-scp run` serves the application from a child process of its own, its CPU priority
    # lowered by this much (os.nice) so that the signalling process wins the CPU under web load
    nice: int = 10

    def validate(self) -> None:
        _range(self.nice, "web.nice", 0, 19)
        if self.listen:
            _host_port(self.listen, "web.listen")
        _range(self.session_idle, "web.session_idle", 60, 86400)
        _range(self.session_lifetime, "web.session_lifetime", self.session_idle, 30 * 86400)
        _range(self.login_window, "web.login_window", 1, 86400)
        _range(self.login_max_per_number, "web.login_max_per_number", 0, 1000)
        _range(self.login_max_per_address, "web.login_max_per_address", 0, 100000)
        _range(self.code_ttl, "web.code_ttl", 30, 86400)
        _range(self.code_interval, "web.code_interval", 0, 3600)
        _range(self.code_max_per_day, "web.code_max_per_day", 1, 1000)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("web.tls_cert", "tls_cert and tls_key go together")
        for i, a in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(a, strict=False)
            except ValueError:
                raise ConfigError(
                    f"web.trusted_proxies[{i}]", f"not an address or network: {a!r}"
                ) from None
        _range(self.max_connections, "web.max_connections", 1, 1_000_000)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


@dataclass(frozen=True)
class DatabaseConfig:
    """[database]: how the node uses PostgreSQL (the server itself: ``MCN_DATABASE_URL``).

    ``budget`` bounds every wait of a signalling answer on the database: an InitialDP whose
    subscriber cannot be read within it is answered with Continue (the call proceeds as if there
    were no service), an EventReportBCSM whose records cannot be written within it is still
    routed (the loss is logged and counted), a MAP presence report gets systemFailure (the HLR
    alerts again). It must stay well inside the switch's operation timer (TS 29.078: InitialDP
    and EventReportBCSM are answered within a "short" timer, 1-10 s).
    """

    budget: float = 1.0
    # s to open one connection, every host of a multi-host DSN included (asyncpg's timeout)
    connect_timeout: float = 5.0
    pool_max_size: int = 10
    # asyncpg's prepared-statement cache per connection; 0 behind PgBouncer in transaction
    # pooling mode (a named prepared statement does not survive a change of server connection)
    statement_cache_size: int = 100

    def validate(self) -> None:
        _range(self.budget, "database.budget", 0.05, 10)
        _range(self.connect_timeout, "database.connect_timeout", 0.1, 600)
        _range(self.pool_max_size, "database.pool_max_size", 4, 1000)
        _range(self.statement_cache_size, "database.statement_cache_size", 0, 100_000)


def parse_pc_range(value: int | str, key: str, max_pc: int) -> tuple[int, int]:
    """A point code (``200``) or an inclusive range (``"200-299"``) as (low, high)."""
    if isinstance(value, int):
        lo = hi = value
    else:
        parts = value.split("-")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(key, f"expected a point code or a range LOW-HIGH, got {value!r}")
        lo, hi = int(parts[0]), int(parts[-1])
    if not 0 <= lo <= hi <= max_pc:
        raise ConfigError(key, f"{value!r}: point codes 0-{max_pc}, low before high")
    return lo, hi


@dataclass(frozen=True)
class ScreeningList:
    """Who may send: calling-party GT prefixes and originating point codes (or ranges). An empty
    list allows anyone; both lists set, a message must match both."""

    allowed_calling_gt: tuple[str, ...] = ()
    allowed_opc: tuple[int | str, ...] = ()

    def validate_as(self, key: str, max_pc: int) -> None:
        for i, gt in enumerate(self.allowed_calling_gt):
            _digits(gt, f"{key}.allowed_calling_gt[{i}]")
        for i, pc in enumerate(self.allowed_opc):
            parse_pc_range(pc, f"{key}.allowed_opc[{i}]", max_pc)

    @property
    def is_open(self) -> bool:
        return not self.allowed_calling_gt and not self.allowed_opc


@dataclass(frozen=True)
class MapScreening(ScreeningList):
    """[screening.map]: every MAP dialogue, and per operation: AlertServiceCentre (v1
    alertServiceCentreWithoutResult too) only from the HLRs, NoteMM-Event only from the VLRs,
    ReadyForSM from its own list (empty: the AlertServiceCentre one)."""

    alert_service_centre: ScreeningList = field(default_factory=ScreeningList)
    note_mm_event: ScreeningList = field(default_factory=ScreeningList)
    ready_for_sm: ScreeningList = field(default_factory=ScreeningList)

    @property
    def is_open(self) -> bool:
        return super().is_open and all(
            lst.is_open
            for lst in (self.alert_service_centre, self.note_mm_event, self.ready_for_sm)
        )

    def open_operations(self) -> list[str]:
        """The per-operation sections that let anyone send their operation: none when
        [screening.map] itself is set (every MAP message passes it)."""
        if not super().is_open:
            return []
        ready_open = self.ready_for_sm.is_open and self.alert_service_centre.is_open
        return [
            f"screening.map.{name}"
            for name, is_open in (
                ("alert_service_centre", self.alert_service_centre.is_open),
                ("note_mm_event", self.note_mm_event.is_open),
                ("ready_for_sm", ready_open),
            )
            if is_open
        ]


@dataclass(frozen=True)
class ScreeningConfig:
    """[screening]: SS7 screening of the TC-BEGINs that open dialogues (GSMA FS.11 categories,
    the SigFW model); a refused one gets TC-U-ABORT and changes nothing. ``log_interval``: at
    most one log line per sender (association, else OPC, else calling GT) per that many
    seconds."""

    log_interval: float = 60.0
    map: MapScreening = field(default_factory=MapScreening)
    cap: ScreeningList = field(default_factory=ScreeningList)
    inap: ScreeningList = field(default_factory=ScreeningList)

    def validate_pcs(self, max_pc: int) -> None:
        _range(self.log_interval, "screening.log_interval", 0.1, 86_400)
        self.map.validate_as("screening.map", max_pc)
        self.map.alert_service_centre.validate_as("screening.map.alert_service_centre", max_pc)
        self.map.note_mm_event.validate_as("screening.map.note_mm_event", max_pc)
        self.map.ready_for_sm.validate_as("screening.map.ready_for_sm", max_pc)
        self.cap.validate_as("screening.cap", max_pc)
        self.inap.validate_as("screening.inap", max_pc)

    def open_lists(self) -> list[str]:
        """The sections that allow anyone (the start-up warning names them): all of MAP as
        ``screening.map``, else each MAP operation a per-operation list leaves open."""
        mapping = ["screening.map"] if self.map.is_open else self.map.open_operations()
        return mapping + [
            name
            for name, lst in (("screening.cap", self.cap), ("screening.inap", self.inap))
            if lst.is_open
        ]


@dataclass(frozen=True)
class OverloadConfig:
    """[overload]: above any limit the SCP sends CallGap (CAP v3/v4) to the switches in the
    answers to new InitialDPs, the IN way of shedding load; below ``resume_ratio`` of every
    limit it stops (hysteresis). A limit of 0 is not checked; all 0 (the default): off."""

    max_dialogues: int = 0  # dialogues open at the TC-user
    max_answer_latency: float = 0.0  # s, InitialDP to answer (moving average)
    max_outbox_age: float = 0.0  # s the oldest due SMS has waited
    resume_ratio: float = 0.8
    gap_interval: int = 1000  # ms: the switch lets one call per interval through
    gap_duration: int = 30  # s the switch gaps for; sent again to a switch after half of it
    check_interval: float = 5.0  # s between two reads of the outbox age

    def validate(self) -> None:
        _range(self.max_dialogues, "overload.max_dialogues", 0, 10_000_000)
        _range(self.max_answer_latency, "overload.max_answer_latency", 0, 60)
        _range(self.max_outbox_age, "overload.max_outbox_age", 0, 86_400)
        _range(self.resume_ratio, "overload.resume_ratio", 0.1, 1.0)
        _range(self.gap_interval, "overload.gap_interval", 0, 60_000)  # Interval, 29.078
        _range(self.gap_duration, "overload.gap_duration", 1, 86_400)  # Duration
        _range(self.check_interval, "overload.check_interval", 0.1, 3600)

    @property
    def enabled(self) -> bool:
        return bool(self.max_dialogues or self.max_answer_latency or self.max_outbox_age)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    node: NodeConfig = field(default_factory=NodeConfig)
    m3ua: M3uaConfig = field(default_factory=M3uaConfig)
    sccp: SccpConfig = field(default_factory=SccpConfig)
    tcap: TcapConfig = field(default_factory=TcapConfig)
    smpp: SmppConfig = field(default_factory=SmppConfig)
    ivr: IvrConfig = field(default_factory=IvrConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    call: CallConfig = field(default_factory=CallConfig)
    rating: RatingConfig = field(default_factory=RatingConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    billing: BillingConfig = field(default_factory=BillingConfig)
    cdr: CdrConfig = field(default_factory=CdrConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    log: LogConfig = field(default_factory=LogConfig)
    web: WebConfig = field(default_factory=WebConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    overload: OverloadConfig = field(default_factory=OverloadConfig)
    voicemail: VoicemailConfig = field(default_factory=VoicemailConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    source: str = "<defaults>"

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if hasattr(v, "validate"):
                v.validate()
        # a point code of another section must fit the network's format too
        _range(self.sccp.default_dpc, "sccp.default_dpc", 0, self.m3ua.pcf.max_pc)
        self.screening.validate_pcs(self.m3ua.pcf.max_pc)
        if self.ivr.choice_window > self.service.window_hours * 3600:
            raise ConfigError("ivr.choice_window", "must not exceed service.window_hours")
        # every worker is its own ASP: worker k identifies itself as asp_identifier + k
        if (aid := self.m3ua.asp_identifier) is not None and aid + self.node.workers > 1 << 32:
            raise ConfigError("m3ua.asp_identifier", "leaves no identifier for every worker")


def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted where lossless."""
    if dataclasses.is_dataclass(tp):  # a table, e.g. one of an array of tables
        return _build(tp, value, key)  # type: ignore[arg-type]
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, key)
            except ConfigError as e:
                errors.append(e.reason)
        raise ConfigError(key, "; ".join(errors))
    if origin is tuple:
        (item,) = get_args(tp)[:1]
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {type(value).__name__}")
        return tuple(_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    raise ConfigError(key, f"unsupported type {tp}")  # pragma: no cover - a bug in this module


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if k not in names:
            raise ConfigError(key, "unknown key")
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            kwargs[k] = _build(tp, v, key)  # type: ignore[arg-type]
        else:
            kwargs[k] = _check_type(v, tp, key)
    return cls(**kwargs)


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and validate TOML text; raise :class:`ConfigError` naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{source}: not valid TOML: {e}") from None
    cfg: Config = _build(Config, data, "")
    cfg = dataclasses.replace(cfg, source=source)
    cfg.validate()
    return cfg


def config_to_data(cfg: Config) -> dict[str, Any]:
    """``cfg`` as the plain values its TOML holds (tables as dicts, arrays as lists, an unset
    optional key left out): what :func:`config_from_data` reads back to an equal config.
    ``mcn-scp run`` hands its config to its web process so (``scp.adapters.web_child``)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    data: dict[str, Any] = plain(dataclasses.asdict(cfg))
    data.pop("source", None)
    return data


def config_from_data(data: Any, source: str) -> Config:
    """The config whose plain values :func:`config_to_data` gave, validated again."""
    cfg: Config = _build(Config, data, "")
    cfg = dataclasses.replace(cfg, source=source)
    cfg.validate()
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the file named by ``path``, else ``$MCN_CONFIG``, else ``conf/example.toml``."""
    if path is None:
        path = os.environ.get("MCN_CONFIG") or DEFAULT_CONFIG
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read config {p}: {e.strerror}") from None
    return parse_config(text, str(p))
