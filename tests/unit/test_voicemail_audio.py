"""The pure rules behind a voice-message deposit and the API's tokens: what a recording is and
how long it lasts, read from its own octets (WAV chunks, AMR / AMR-WB storage-format frames,
RFC 4867 §5), the limits, and the tokens' digests and scopes.
"""

from __future__ import annotations

import io
import struct
import wave

import pytest

from scp.service import apitoken
from scp.service.provisioning import InvalidInput
from scp.service.voicemail import (
    AudioInfo,
    MalformedAudio,
    TooLarge,
    UnsupportedAudio,
    VoicemailError,
    check_limits,
    inspect_audio,
)


def pcm_wav(seconds: float, *, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01\x02" * int(seconds * rate * channels * width / 2))
    return buf.getvalue()


def chunk(cid: bytes, body: bytes, *, size: int | None = None) -> bytes:
    pad = b"\x00" if len(body) & 1 else b""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + pad


def fmt(tag: int = 1, *, channels: int = 1, rate: int = 8000, width: int = 2) -> bytes:
    align = channels * width
    return chunk(
        b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, 8 * width)
    )


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_duration_from_its_header() -> None:
    info = inspect_audio(pcm_wav(2.5))
    assert (info.content_type, info.seconds, info.whole_seconds) == ("audio/wav", 2.5, 3)
    stereo = inspect_audio(pcm_wav(1.0, rate=16000, channels=2))
    assert stereo.seconds == 1.0


def test_wav_chunks_skipped_padded_and_streamed() -> None:
    # a LIST chunk of odd length (padded) between fmt and data; then a data chunk of 0 octets
    # announced, as a recorder writing while streaming leaves it: the data runs to the end
    listing = chunk(b"LIST", b"INFOabc")
    data = b"\x00\x01" * 8000
    assert inspect_audio(riff(fmt(), listing, chunk(b"data", data))).seconds == 1.0
    assert inspect_audio(riff(fmt(), chunk(b"data", data, size=0))).seconds == 1.0
    assert inspect_audio(riff(fmt(), chunk(b"data", data, size=0xFFFFFFFF))).seconds == 1.0
    # mu-law, one octet a sample
    assert inspect_audio(riff(fmt(7, width=1), chunk(b"data", data))).seconds == 2.0


@pytest.mark.parametrize(
    ("audio", "error", "why"),
    [
        (riff(chunk(b"data", b"\x00" * 100), fmt()), MalformedAudio, "before its fmt"),
        (riff(fmt()), MalformedAudio, "without a data chunk"),
        (riff(fmt(), chunk(b"data", b"\x00" * 100, size=1000)), MalformedAudio, "announces 1000"),
        (riff(chunk(b"fmt ", b"\x01\x00")), MalformedAudio, "shorter than 16"),
        (riff(fmt(rate=0), chunk(b"data", b"\x00" * 10)), MalformedAudio, "zero rate"),
        (riff(fmt(0x55), chunk(b"data", b"\x00" * 10)), UnsupportedAudio, "0x0055"),  # MP3
        (b"ID3\x03\x00\x00\x00 an mp3", UnsupportedAudio, "not a WAV"),
        (b"OggS\x00\x02", UnsupportedAudio, "not a WAV"),
        (b"", UnsupportedAudio, "not a WAV"),
        (b"#!AMR_MC1.0\n\x00\x00\x00\x01", UnsupportedAudio, "multi-channel"),
    ],
)
def test_bad_recordings_refused_with_the_reason(
    audio: bytes, error: type[VoicemailError], why: str
) -> None:
    with pytest.raises(error, match=why) as e:
        inspect_audio(audio)
    assert e.value.field == "audio"


def amr_frame(ft: int, size: int) -> bytes:
    return bytes([(ft << 3) | 0x04]) + b"\x55" * (size - 1)


def test_amr_and_amr_wb_counted_in_20_ms_frames() -> None:
    nb = b"#!AMR\n" + amr_frame(7, 32) * 100 + amr_frame(8, 6) * 50  # 12.2 kbit/s + SID
    info = inspect_audio(nb)
    assert info.content_type == "audio/amr" and info.seconds == pytest.approx(3.0)
    wb = b"#!AMR-WB\n" + amr_frame(2, 33) * 250 + amr_frame(15, 1) * 50  # 12.65 + NO_DATA
    info = inspect_audio(wb)
    assert info.content_type == "audio/amr-wb" and info.seconds == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("audio", "why"),
    [
        (b"#!AMR\n", "without a frame"),
        (b"#!AMR\n" + amr_frame(7, 32)[:20], "cut short"),
        (b"#!AMR\n" + bytes([0x84]) + b"\x00" * 31, "bad header"),  # F bit set
        (b"#!AMR\n" + bytes([(10 << 3) | 4]), "bad header"),  # frame type 10: reserved
    ],
)
def test_bad_amr_refused(audio: bytes, why: str) -> None:
    with pytest.raises(MalformedAudio, match=why):
        inspect_audio(audio)


def test_limits_and_the_declared_duration() -> None:
    info = AudioInfo("audio/wav", 10.2, 163_244)
    check_limits(info, declared=10, max_bytes=200_000, max_seconds=11)
    check_limits(info, declared=None, max_bytes=200_000, max_seconds=11)
    with pytest.raises(TooLarge, match="163244 octets"):
        check_limits(info, declared=10, max_bytes=100_000, max_seconds=11)
    with pytest.raises(TooLarge, match="longer than the 10 s"):
        check_limits(info, declared=10, max_bytes=200_000, max_seconds=10)
    with pytest.raises(MalformedAudio, match="3 s declared") as e:
        check_limits(info, declared=3, max_bytes=200_000, max_seconds=11)
    assert e.value.field == "duration"
    assert AudioInfo("audio/amr", 0.2, 100).whole_seconds == 1
    assert AudioInfo("audio/amr", 3.0, 100).whole_seconds == 3


def test_tokens_digests_and_scopes() -> None:
    token, stored, hint = apitoken.new_token()
    other, _, _ = apitoken.new_token()
    assert token != other and token.startswith(apitoken.TOKEN_PREFIX)
    assert len(token) >= len(apitoken.TOKEN_PREFIX) + 43  # 256 bits, base64url
    assert stored == apitoken.digest(token) and len(stored) == 32
    assert apitoken.digest(other) != stored and token.startswith(hint) and len(hint) < 12
    assert apitoken.valid_scopes(["read", " media", "read", ""]) == ("media", "read")
    with pytest.raises(InvalidInput, match="unknown admin"):
        apitoken.valid_scopes(["read", "admin"])
    with pytest.raises(InvalidInput, match="at least one"):
        apitoken.valid_scopes([" "])
    assert apitoken.valid_client_name("boss-1.crm_A") == "boss-1.crm_A"
    for bad in ("", "x" * 65, "boss 1", "客户"):
        with pytest.raises(InvalidInput) as e:
            apitoken.valid_client_name(bad)
        assert e.value.field == "name"
