"""Small pure helpers shared by the tests: ports, hex tables, frame builders, mutators, polling.

Frame builders write the wire format out with ``struct``, apart from the codecs under test, so a
test never reads our encoder's output with our own decoder only: M3UA DATA (RFC 4666 §3.3.1,
Protocol Data tag 0x0210, optional Routing Context 0x0006) and SCCP UDT (Q.713 §4.10) with
addresses that route on SSN (Q.713 §3.4.1). The fuzz mutator is the mechanism each layer's fuzz
test shares; the octets worth planting (length octets, message types, BER tags) stay with the
layer's test. Fakes of our ports live in ``tests/fakes.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import socket
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

# ---------------------------------------------------------------------------------------------
# Sockets
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout: float = 30.0) -> bool:
    """Poll ``url`` until the server answers (any status); False if ``proc`` ended or
    ``timeout`` s passed first. For a server started as a process of its own (``mcn-scp web``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Golden tables
# ---------------------------------------------------------------------------------------------


def h(text: str) -> bytes:
    """Hex with ``#`` comments (to the end of each line) and any whitespace, as golden tables
    write it."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


# ---------------------------------------------------------------------------------------------
# Frame builders
# ---------------------------------------------------------------------------------------------


def m3ua_data(
    data: bytes,
    *,
    opc: int = 100,
    dpc: int = 200,
    si: int = 3,
    ni: int = 2,
    mp: int = 0,
    sls: int = 0,
    rc: int | None = None,
) -> bytes:
    """M3UA DATA (RFC 4666 §3.3.1): [Routing Context] + one Protocol Data parameter, padded to
    4 octets; SI 3 (SCCP) unless told."""
    params = b"" if rc is None else struct.pack("!HHI", 0x0006, 8, rc)
    pd = struct.pack("!HHIIBBBB", 0x0210, 16 + len(data), opc, dpc, si, ni, mp, sls) + data
    params += pd + b"\x00" * (-len(pd) % 4)
    return struct.pack("!BBBBI", 1, 0, 1, 1, 8 + len(params)) + params


def sccp_address(ssn: int, pc: int | None = None) -> bytes:
    """A called/calling party address with its length octet, routed on SSN (Q.713 §3.4.1):
    address indicator 0x42 (SSN only) or 0x43 (point code, little-endian, then SSN)."""
    if pc is None:
        return bytes((2, 0x42, ssn))
    return bytes((4, 0x43)) + struct.pack("<H", pc) + bytes((ssn,))


def sccp_udt(
    data: bytes,
    *,
    called_ssn: int,
    calling_ssn: int,
    called_pc: int | None = None,
    calling_pc: int | None = None,
    protocol_class: int = 0x80,
) -> bytes:
    """An SCCP UDT (Q.713 §4.10) carrying ``data``; ``protocol_class`` is the whole octet
    (0x80: class 0 with return on error, 0x81: class 1 with return, 0x00: class 0 without)."""
    called = sccp_address(called_ssn, called_pc)
    calling = sccp_address(calling_ssn, calling_pc)
    if len(data) > 255:
        raise ValueError("too long for a UDT")
    # Three pointers, each counted from its own octet.
    p1 = 3
    p2 = p1 - 1 + len(called)
    p3 = p2 - 1 + len(calling)
    return bytes((0x09, protocol_class, p1, p2, p3)) + called + calling + bytes((len(data),)) + data


# ---------------------------------------------------------------------------------------------
# Fuzzing
# ---------------------------------------------------------------------------------------------


def mutate(
    rng: random.Random,
    data: bytes,
    *,
    interesting: Sequence[int] = (0x00, 0x7F, 0x80, 0x81, 0xFF),
    rounds: Sequence[int] = (1, 2, 3, 4),
) -> bytes:
    """``data`` damaged ``rng.choice(rounds)`` times: a bit flipped, a byte replaced, the tail
    cut, random octets inserted, a span deleted or repeated, junk appended, or one of the
    layer's ``interesting`` octets planted. Seeded by ``rng``, so a failure replays."""
    b = bytearray(data)
    for _ in range(rng.choice(rounds)):
        op = rng.randrange(8)
        if not b:
            b = bytearray(rng.randbytes(rng.randrange(1, 8)))
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            del b[rng.randrange(len(b) + 1) :]
        elif op == 3:
            b[i:i] = rng.randbytes(rng.randrange(1, 5))
        elif op == 4:
            del b[i : i + rng.randrange(1, 5)]
        elif op == 5:
            b[i:i] = b[i : i + rng.randrange(1, 8)]
        elif op == 6:
            b += rng.randbytes(rng.randrange(1, 9))
        else:
            b[i] = rng.choice(interesting)
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# Waiting for a condition (never for a duration)
# ---------------------------------------------------------------------------------------------


async def eventually(
    cond: Callable[[], object] | Callable[[], Awaitable[object]],
    *,
    what: str = "condition not met in time",
    timeout: float = 5.0,
    interval: float = 0.01,
) -> None:
    """Return as soon as ``cond()`` (plain or awaitable) is true; fail naming ``what`` after
    ``timeout`` seconds. The timeout is a bound for a loaded machine, not a speed check."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        assert loop.time() < deadline, what
        await asyncio.sleep(interval)
