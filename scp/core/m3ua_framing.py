"""M3UA over a byte stream (TCP): split the stream into whole messages (RFC 4666 §3.1).

SCTP preserves message boundaries; TCP does not, so M3UA over TCP (as Osmocom ``osmo-stp`` and
jSS7 carry it) is framed by the Message Length field of the common header (§3.1.4), which counts
the whole message including the header and padding. A length below the 8-octet header or above
:data:`MAX_FRAME` cannot be trusted and means the boundaries are lost for good: the adapter
must close the connection (there is nothing to resynchronise on).

Modelled on h11's ``ReceiveBuffer``: sans-I/O, ``feed(bytes) -> list[message]``.
"""

from __future__ import annotations

__all__ = ["M3uaFramingError", "M3uaStreamReader", "ReceiveBuffer", "MAX_FRAME", "HEADER_LEN"]

HEADER_LEN = 8
MAX_FRAME = 65536
"""Largest message accepted on a stream; anything longer is treated as lost framing."""


class M3uaFramingError(Exception):
    """The stream's message boundaries are lost; the connection must be closed."""


class M3uaStreamReader:
    """Accumulates stream bytes and yields whole M3UA messages (header + body) as they complete."""

    __slots__ = ("_buf", "_max", "_failed")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._failed: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return every message now complete, in order.

        Raises :class:`M3uaFramingError` on an impossible length, and on every call after that.
        """
        if self._failed is not None:
            raise M3uaFramingError(self._failed)
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER_LEN:
            length = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            if length < HEADER_LEN or length > self._max:
                self._failed = f"message length {length} at stream offset {pos}"
                del buf[:pos]
                raise M3uaFramingError(self._failed)
            if n - pos < length:
                break
            out.append(bytes(buf[pos : pos + length]))
            pos += length
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Octets of an incomplete message waiting for more data."""
        return len(self._buf)


ReceiveBuffer = M3uaStreamReader
"""The h11-style name for the same reader."""
