"""What an SMPP ESME keeps about the deliver_sm it receives: receipts matched to what it submitted,
and mobile-originated messages reassembled from their parts. Pure, sans-I/O; time is ``now``.

Specs: SMPP 3.4 §4.6.1 deliver_sm, §5.2.12 esm_class (bits 5-2: 0x04 MC delivery receipt,
0x20 intermediate delivery notification), §5.3.2.12 receipted_message_id, §5.3.2.35
message_state, §5.3.2.22-24 sar_msg_ref_num / sar_total_segments / sar_segment_seqnum, Appendix B
(delivery receipt text ``id:... sub:... dlvrd:... submit date:... done date:... stat:... err:...
text:...``); 3GPP TS 23.040 §9.2.3.24.1 and §9.2.3.24.8 (concatenation with 8- and 16-bit
references, read by :func:`scp.codecs.sms.parse_udh`).

* :class:`ReceiptMatcher`: the message ids the SMSC gave each segment of an SMS, mapped to the
  first one (the id the outbox knows), also across the decimal/hex mismatch some SMSCs have
  (SMPP 3.4 leaves the id format open); the receipts of a multipart SMS gathered until every
  segment reported, then reported once with the worst status. Bounded: at most ``sets_max``
  open sets, each at most ``set_age`` s old; an overflowing or expired set is settled with the
  receipts that arrived.
* :class:`MoReassembler`: parts of a concatenated MO, keyed by (source, destination, reference,
  total), each part's deliver_sm token held until the whole message is there.

The session (:mod:`scp.core.smpp_esme`) decides when deliver_sm are answered; these hold data.
"""

from __future__ import annotations

import collections
import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "MESSAGE_STATES",
    "MoReassembler",
    "ReceiptMatcher",
    "ReceiptSet",
    "done_date",
    "parse_receipt",
    "worst_stat",
]

# §5.3.2.35 message_state -> the Appendix B stat word
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
# how bad a stat is, for the status of a multipart SMS: its worst segment's
_STAT_RANK = {
    "DELIVRD": 0,
    "ACCEPTD": 1,
    "ENROUTE": 1,
    "UNKNOWN": 2,
    "EXPIRED": 3,
    "DELETED": 3,
    "UNDELIV": 4,
    "REJECTD": 4,
}

_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):(\S*)", re.I)
_RECEIPT_TEXT = re.compile(r"text:(.*)$", re.I | re.S)


def parse_receipt(text: str) -> dict[str, str]:
    """Appendix B receipt text -> {"id","sub","dlvrd","submit date","done date","stat","err",
    "text"}; keys absent from the text are absent. Never raises."""
    out: dict[str, str] = {}
    head, _, _ = text.partition(" text:")  # the free text may itself contain "id:"
    for k, v in _RECEIPT_FIELD.findall(head):
        out.setdefault(k.lower(), v)
    m = _RECEIPT_TEXT.search(text)
    if m:
        out["text"] = m.group(1)
    return out


def done_date(value: str | None) -> datetime | None:
    """Appendix B ``done date`` YYMMDDhhmm (UTC assumed: the SMSC's zone is not sent); None if
    absent or not a date."""
    if value and len(value) >= 10 and value[:10].isdigit():
        v = value
        with contextlib.suppress(ValueError):
            return datetime(
                2000 + int(v[0:2]), int(v[2:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), tzinfo=UTC
            )
    return None


def worst_stat(stats: list[str]) -> str:
    return max(stats, key=lambda s: _STAT_RANK.get(s, 2))


@dataclass(eq=False, slots=True)
class ReceiptSet:
    """The receipts of a multipart SMS so far (stat words), until every segment reported."""

    total: int
    stats: list[str]
    first: float  # ``now`` of the first receipt
    done_date: datetime | None  # the first receipt's


class ReceiptMatcher:
    """Segment message ids -> (first segment's id, segment count); open multipart sets."""

    def __init__(
        self, *, sets_max: int = 10_000, set_age: float = 600.0, ids_max: int = 500_000
    ) -> None:
        self.sets_max = max(sets_max, 1)
        self.set_age = set_age
        self.ids_max = ids_max
        self._ids: collections.OrderedDict[str, tuple[str, int]] = collections.OrderedDict()
        # primary id -> its set (insertion order: oldest first)
        self.sets: collections.OrderedDict[str, ReceiptSet] = collections.OrderedDict()

    def remember(self, ids: list[str]) -> None:
        """Map every segment id of one SMS to the first one."""
        primary = ids[0]
        for m in ids:
            self._ids[m] = (primary, len(ids))
        while len(self._ids) > self.ids_max:
            self._ids.popitem(last=False)

    def lookup(self, mid: str) -> tuple[str, int] | None:
        hit = self._ids.get(mid)
        if hit is not None:
            return hit
        # some SMSCs answer submit_sm with a hex id and report it in decimal, or the reverse
        with contextlib.suppress(ValueError):
            if mid.isdigit():
                hit = self._ids.get(format(int(mid), "x")) or self._ids.get(format(int(mid), "X"))
            else:
                hit = self._ids.get(str(int(mid, 16)))
        return hit

    def add(
        self, primary: str, total: int, stat: str, done: datetime | None, now: float
    ) -> tuple[ReceiptSet | None, list[tuple[str, ReceiptSet]]]:
        """One segment's receipt: (the set if this completed it, sets settled to make room)."""
        settled: list[tuple[str, ReceiptSet]] = []
        rs = self.sets.get(primary)
        if rs is None:
            rs = ReceiptSet(total, [], now, done)
            self.sets[primary] = rs
            settled = self._bound()
        rs.stats.append(stat)
        if len(rs.stats) < total:
            return None, settled
        self.sets.pop(primary, None)
        return rs, settled

    def restore(
        self, primary: str, rs: ReceiptSet, prior: list[str]
    ) -> list[tuple[str, ReceiptSet]]:
        """A completed set's commit failed: keep what arrived before its last receipt, so the
        redelivered one completes it again. Returns sets settled to make room."""
        cur = self.sets.get(primary)
        if cur is not None:
            cur.stats[:0] = prior
            return []
        self.sets[primary] = ReceiptSet(rs.total, list(prior), rs.first, rs.done_date)
        return self._bound()

    def expire(self, now: float) -> list[tuple[str, ReceiptSet]]:
        """Sets older than ``set_age``, removed: to be reported with what arrived."""
        out: list[tuple[str, ReceiptSet]] = []
        while self.sets:
            primary, rs = next(iter(self.sets.items()))
            if now - rs.first < self.set_age:
                break
            out.append((primary, self.sets.pop(primary)))
        return out

    def next_deadline(self) -> float | None:
        if not self.sets:
            return None
        return next(iter(self.sets.values())).first + self.set_age

    def _bound(self) -> list[tuple[str, ReceiptSet]]:
        out: list[tuple[str, ReceiptSet]] = []
        while len(self.sets) > self.sets_max:
            out.append(self.sets.popitem(last=False))
        return out


MoKey = tuple[str, str, int, int]
"""(source_addr, destination_addr, reference, total parts) of one concatenated MO."""


@dataclass(eq=False, slots=True)
class _MoParts:
    first: float
    parts: dict[int, tuple[str, int]]  # part number -> (text, deliver_sm token)


class MoReassembler:
    """Parts of concatenated MO messages, until each is whole; at most ``sets_max`` open."""

    def __init__(self, *, timeout: float, sets_max: int = 10_000) -> None:
        self.timeout = timeout
        self.sets_max = sets_max
        self._open: collections.OrderedDict[MoKey, _MoParts] = collections.OrderedDict()

    def add(
        self, key: MoKey, seq: int, text: str, token: int, now: float
    ) -> tuple[tuple[str, tuple[int, ...]] | None, int | None, list[int]]:
        """One part: (the whole text and every part's token if now complete, the token of an
        earlier copy of this part that this one replaces, the tokens of the parts of the oldest
        message dropped because too many are open)."""
        entry = self._open.get(key)
        if entry is None:
            entry = _MoParts(now, {})
            self._open[key] = entry
        old = entry.parts.get(seq)
        entry.parts[seq] = (text, token)
        evicted: list[int] = []
        while len(self._open) > self.sets_max:
            _key, dropped = self._open.popitem(last=False)
            evicted.extend(t for _text, t in dropped.parts.values())
        replaced = None if old is None else old[1]
        if len(entry.parts) < key[3] or key not in self._open:
            return None, replaced, evicted
        del self._open[key]
        order = sorted(entry.parts)
        whole = "".join(entry.parts[i][0] for i in order), tuple(entry.parts[i][1] for i in order)
        return whole, replaced, evicted

    def expire(self, now: float) -> list[tuple[int, ...]]:
        """Messages incomplete after ``timeout``, removed: the tokens of their parts."""
        out: list[tuple[int, ...]] = []
        while self._open:
            key, entry = next(iter(self._open.items()))
            if now - entry.first < self.timeout:
                break
            del self._open[key]
            out.append(tuple(t for _text, t in entry.parts.values()))
        return out

    def clear(self) -> None:
        self._open.clear()

    def next_deadline(self) -> float | None:
        if not self._open:
            return None
        return next(iter(self._open.values())).first + self.timeout

    def __len__(self) -> int:
        return len(self._open)
