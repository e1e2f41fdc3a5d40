"""Voice messages: what a recording is, whether it may be kept, and what the callee is told.

Pure (ARCHITECTURE §2: ``service/`` decides, it never does I/O and never reads a clock). The
media server deposits a recording through the API; :func:`inspect_audio` reads it by its own
bytes, never by the name or the type the client claims:

* WAV: RIFF / WAVE (the Microsoft RIFF specification, "WAVE" form; RFC 2361): the ``fmt ``
  chunk gives the byte rate, the ``data`` chunk the length, so the duration is data / rate.
  Writers that stream (size unknown when the header went out) leave the data size 0 or
  0xFFFFFFFF: the data then runs to the end of the file.
* AMR and AMR-WB storage format (RFC 4867 §5, "#!AMR\\n" / "#!AMR-WB\\n"): a sequence of
  frames of 20 ms, each a one-octet header (F=0, FT, Q) and the speech bits of its frame type
  (3GPP TS 26.101 §4.1 Table 1a for AMR, TS 26.201 Table 1a for AMR-WB), so the duration is
  the number of frames times 20 ms. Multi-channel files ("#!AMR_MC1.0") are not accepted.

Then the limits of ``[voicemail]`` (:func:`check_limits`) and the notification text
(:func:`voicemail_text`, templates ``voicemail`` in ``conf/templates``). Carrying a deposit out
(store, notify in the same transaction) is :mod:`scp.flows.voicemail`.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import zoneinfo
from dataclasses import dataclass

from scp.service.notifications import Templates, display_number, render, time_values

__all__ = [
    "AMR_MAGIC",
    "AMR_WB_MAGIC",
    "AudioInfo",
    "MailboxFull",
    "VoiceMessage",
    "MalformedAudio",
    "TooLarge",
    "UnsupportedAudio",
    "VoicemailError",
    "check_limits",
    "inspect_audio",
    "sniff",
    "voicemail_text",
]

AMR_MAGIC = b"#!AMR\n"
AMR_WB_MAGIC = b"#!AMR-WB\n"
_AMR_MC = b"#!AMR_MC1.0\n"
_FRAME_S = 0.020  # every AMR / AMR-WB frame is 20 ms (TS 26.101 §4.1, TS 26.201 §4)

# Octets per stored frame, header included, by frame type (FT 0-15). AMR (TS 26.101 Table 1a):
# modes 4.75 to 12.2 kbit/s, FT 8 SID, 9-11 other SIDs are not used in storage, 15 NO_DATA.
# AMR-WB (TS 26.201 Table 1a): modes 6.60 to 23.85 kbit/s, FT 9 SID, 14 speech lost, 15 NO_DATA.
_AMR_SIZES = (13, 14, 16, 18, 20, 21, 27, 32, 6, None, None, None, None, None, None, 1)
_AMR_WB_SIZES = (18, 24, 33, 37, 41, 47, 51, 59, 61, 6, None, None, None, None, 1, 1)

# WAVE format tags a telephony recording may carry (RFC 2361 appendix A)
_WAVE_FORMATS = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "mu-law", 0xFFFE: "extensible"}


class VoicemailError(ValueError):
    """A deposit that cannot be kept; ``field`` names the part of the request."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class UnsupportedAudio(VoicemailError):
    """Not a WAV or AMR recording (HTTP 415)."""


class MalformedAudio(VoicemailError):
    """A WAV or AMR recording whose structure is broken (HTTP 422)."""


class TooLarge(VoicemailError):
    """Over ``[voicemail] max_bytes`` or ``max_seconds`` (HTTP 413)."""


class MailboxFull(VoicemailError):
    """The callee's mailbox holds ``[voicemail] max_messages`` already (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class VoiceMessage:
    """A deposited voice message as listed (the recording itself is read apart, by range)."""

    id: int
    callee: str
    caller: str | None
    deposited_at: dt.datetime
    duration_s: int
    content_type: str
    size_bytes: int
    heard_at: dt.datetime | None
    notified_at: dt.datetime | None

    @property
    def status(self) -> str:
        """new (not yet heard) or heard."""
        return "new" if self.heard_at is None else "heard"


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a recording is, read from its own bytes."""

    content_type: str  # audio/wav | audio/amr | audio/amr-wb
    seconds: float
    size: int

    @property
    def whole_seconds(self) -> int:
        """The duration as stored and told: whole seconds, rounded up (a 0.2 s message is 1)."""
        return max(1, math.ceil(self.seconds - 1e-9)) if self.seconds > 0 else 0


def sniff(head: bytes) -> str | None:
    """The content type the first octets announce (None: neither WAV nor AMR)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(AMR_WB_MAGIC):
        return "audio/amr-wb"
    if head.startswith(AMR_MAGIC):
        return "audio/amr"
    return None


def inspect_audio(data: bytes) -> AudioInfo:
    """The type and duration of a recording; UnsupportedAudio or MalformedAudio naming why."""
    kind = sniff(data[:16])
    if kind == "audio/wav":
        return AudioInfo(kind, _wav_seconds(data), len(data))
    if kind is not None:
        return AudioInfo(kind, _amr_seconds(data, wideband=kind == "audio/amr-wb"), len(data))
    if data.startswith(_AMR_MC):
        raise UnsupportedAudio("audio", "multi-channel AMR is not accepted: mono AMR or WAV")
    raise UnsupportedAudio("audio", "not a WAV (RIFF/WAVE) or AMR (#!AMR) recording")


def _wav_seconds(data: bytes) -> float:
    pos, end = 12, len(data)
    byte_rate: int | None = None
    while pos + 8 <= end:
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > end:
                raise MalformedAudio("audio", "WAV fmt chunk shorter than 16 octets")
            fmt, channels, rate, byte_rate_, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt not in _WAVE_FORMATS:
                raise UnsupportedAudio("audio", f"WAV format tag {fmt:#06x} is not accepted")
            if not (channels and rate and byte_rate_ and align):
                raise MalformedAudio("audio", "WAV fmt chunk has a zero rate, channel or block")
            byte_rate = byte_rate_
        elif cid == b"data":
            if byte_rate is None:
                raise MalformedAudio("audio", "WAV data chunk before its fmt chunk")
            if size in (0, 0xFFFFFFFF):  # written while streaming: the data runs to the end
                size = end - body
            if body + size > end:
                raise MalformedAudio(
                    "audio", f"WAV data chunk announces {size} octets, {end - body} present"
                )
            seconds: float = size / byte_rate
            return seconds
        pos = body + size + (size & 1)  # chunks are padded to an even length
    raise MalformedAudio("audio", "WAV without a data chunk")


def _amr_seconds(data: bytes, *, wideband: bool) -> float:
    sizes = _AMR_WB_SIZES if wideband else _AMR_SIZES
    pos = len(AMR_WB_MAGIC if wideband else AMR_MAGIC)
    frames = 0
    while pos < len(data):
        header = data[pos]
        ft = (header >> 3) & 0x0F
        size = sizes[ft]
        if header & 0x83 or size is None:  # F and the padding bits are 0 in storage format
            raise MalformedAudio("audio", f"AMR frame {frames + 1}: bad header {header:#04x}")
        if pos + size > len(data):
            raise MalformedAudio("audio", f"AMR frame {frames + 1} is cut short")
        pos += size
        frames += 1
    if frames == 0:
        raise MalformedAudio("audio", "AMR file without a frame")
    return frames * _FRAME_S


def check_limits(
    info: AudioInfo, *, declared: int | None, max_bytes: int, max_seconds: int
) -> None:
    """TooLarge over the limits; MalformedAudio when the declared duration (the media server's
    own count, in whole seconds) does not match what the recording holds."""
    if info.size > max_bytes:
        raise TooLarge("audio", f"{info.size} octets, more than the {max_bytes} allowed")
    if info.seconds > max_seconds:
        raise TooLarge("audio", f"{info.seconds:.1f} s, longer than the {max_seconds} s allowed")
    if declared is not None and abs(declared - info.seconds) > 2:
        raise MalformedAudio(
            "duration", f"{declared} s declared, the recording holds {info.seconds:.1f} s"
        )


def voicemail_text(
    *,
    caller: str | None,
    at: dt.datetime,
    seconds: int,
    retrieval: str,
    t: Templates,
    tz: zoneinfo.ZoneInfo,
) -> str:
    """The callee's SMS for a new voice message (template ``voicemail``)."""
    return render(
        t["voicemail"],
        caller=display_number(caller, t),
        seconds=seconds,
        retrieval=display_number(retrieval, t),
        **time_values(at, tz),
    )
