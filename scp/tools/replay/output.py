"""The ladder as text and JSON lines, and the ``--filter`` of ``mcn-scp replay``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from scp.tools.replay.ladder import (
    LadderEntry,
    OpInfo,
)

__all__ = [
    "LadderFilter",
    "JsonLines",
    "format_entry",
    "entry_json",
]


def format_entry(e: LadderEntry, t0: float = 0.0) -> str:
    """One ladder line: time, OPC -> DPC, SCCP / TCAP type, tids, operations with key fields."""
    tag = {"capture": "  ", "ours": "<=", "sent": "=>"}.get(e.source, "  ")
    head = f"{e.ts - t0:9.3f} {tag} #{e.frame:<5} {e.opc:>5} -> {e.dpc:<5} {e.sccp:<5}"
    parts = [head]
    if e.tcap:
        tids = []
        if e.otid:
            tids.append(f"otid={e.otid}")
        if e.dtid:
            tids.append(f"dtid={e.dtid}")
        parts.append(f"{e.tcap:<8} {' '.join(tids)}")
        if e.protocol:
            parts.append(f"[{e.protocol}]")
        if e.ops:
            parts.append(" ".join(o.text() for o in e.ops))
    if e.note:
        parts.append(f"({e.note})")
    return " ".join(parts)


def entry_json(e: LadderEntry) -> dict[str, Any]:
    """A JSON-ready dict of one ladder line (``--json`` prints one per line)."""
    d = _entry_head(e)
    if e.ops:
        d["ops"] = _ops_json(e.ops)
    return d


def _ops_json(ops_: tuple[OpInfo, ...]) -> list[dict[str, Any]]:
    out = []
    for o in ops_:
        od: dict[str, Any] = {"kind": o.kind, "id": o.invoke_id, "code": o.code, "name": o.name}
        if o.fields:
            od["fields"] = o.fields
        out.append(od)
    return out


def _entry_head(e: LadderEntry) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": "message",
        "source": e.source,
        "frame": e.frame,
        "ts": round(e.ts, 6),
        "opc": e.opc,
        "dpc": e.dpc,
        "sccp": e.sccp,
    }
    # Spelled out rather than a getattr loop: one call per message of ``replay --json``.
    if e.called_ssn is not None:
        d["called_ssn"] = e.called_ssn
    if e.calling_ssn is not None:
        d["calling_ssn"] = e.calling_ssn
    if e.called_gt is not None:
        d["called_gt"] = e.called_gt
    if e.calling_gt is not None:
        d["calling_gt"] = e.calling_gt
    if e.tcap is not None:
        d["tcap"] = e.tcap
    if e.otid is not None:
        d["otid"] = e.otid
    if e.dtid is not None:
        d["dtid"] = e.dtid
    if e.ac is not None:
        d["ac"] = e.ac
    if e.protocol is not None:
        d["protocol"] = e.protocol
    if e.note is not None:
        d["note"] = e.note
    return d


class JsonLines:
    """``entry_json`` as one compact JSON line, with the ``ops`` part cached.

    The ladder decoder hands out the same :class:`OpInfo` objects for a component it has seen
    (same RRBE, same Continue on every call), so their JSON text is made once. The cache keeps
    the OpInfo objects alive, so the ``id()`` in its key cannot be reused by another object.
    """

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        self._ops: dict[tuple[int, ...], tuple[tuple[OpInfo, ...], str]] = {}

    def line(self, e: LadderEntry) -> str:
        ops_ = e.ops
        if not ops_:
            return self._encode(entry_json(e))
        key = tuple(map(id, ops_))
        hit = self._ops.get(key)
        if hit is None:
            hit = (ops_, self._encode(_ops_json(ops_)))
            if len(self._ops) >= 4096:
                self._ops.clear()
            self._ops[key] = hit
        head = self._encode(_entry_head(e))
        return f'{head[:-1]},"ops":{hit[1]}}}'


class LadderFilter:
    """``--filter`` terms, all of which must match: ``KEY=VALUE`` or a bare word.

    Keys: ``pc`` (OPC or DPC), ``opc``, ``dpc``, ``tcap`` (begin, continue...), ``op``
    (operation name, substring, case-insensitive), ``tid`` (otid or dtid, hex), ``number``
    (digits anywhere: GTs and operation numbers, substring), ``protocol`` (cap / inap / map),
    ``ssn``. A bare word matches operation names, e.g. ``initialDP``.
    """

    KEYS = ("pc", "opc", "dpc", "tcap", "op", "tid", "number", "protocol", "ssn")

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms: list[tuple[str, str]] = []
        for raw in terms:
            for term in raw.split(","):
                term = term.strip()
                if not term:
                    continue
                key, sep, val = term.partition("=")
                if not sep:
                    key, val = "op", term
                key = key.strip().lower()
                if key not in self.KEYS:
                    raise ValueError(f"filter key {key!r} is not one of {', '.join(self.KEYS)}")
                if key in ("pc", "opc", "dpc", "ssn") and not val.strip().isdigit():
                    raise ValueError(f"filter {key}= needs a number, got {val!r}")
                self.terms.append((key, val.strip().lower()))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def match(self, e: LadderEntry) -> bool:
        for key, val in self.terms:
            if key == "pc" and int(val) not in (e.opc, e.dpc):
                return False
            if key == "opc" and int(val) != e.opc:
                return False
            if key == "dpc" and int(val) != e.dpc:
                return False
            if key == "ssn" and int(val) not in (e.called_ssn, e.calling_ssn):
                return False
            if key == "tcap" and (e.tcap or "").lower() != val:
                return False
            if key == "protocol" and (e.protocol or "") != val:
                return False
            if key == "tid" and val not in ((e.otid or ""), (e.dtid or "")):
                return False
            if key == "op" and not any(val in o.name.lower() for o in e.ops):
                return False
            if key == "number" and not any(val in n.lower() for n in e.numbers):
                return False
        return True
