"""Typed decoding and encoding errors shared by every codec in ``scp.codecs``.

A decoder never lets a library exception escape: it raises :class:`DecodeError` naming the
layer (``"m3ua"``, ``"sccp"``, ``"tcap"``, ``"cap"``, ``"inap"``, ``"map"``...) and the byte
offset into the buffer it was handed where decoding gave up, so a log line or a protocol error
answer can say exactly what was wrong.
"""

from __future__ import annotations


class CodecError(Exception):
    """Base of every error raised by ``scp.codecs``."""


class DecodeError(CodecError, ValueError):
    """Bytes that do not decode as the ``layer`` expects; ``offset`` is where it went wrong."""

    def __init__(self, layer: str, offset: int, reason: str) -> None:
        super().__init__(f"{layer}: {reason} (at byte {offset})")
        self.layer = layer
        self.offset = offset
        self.reason = reason


class EncodeError(CodecError, ValueError):
    """A value that cannot be encoded by the ``layer`` (out of range, missing field...)."""

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"{layer}: {reason}")
        self.layer = layer
        self.reason = reason
