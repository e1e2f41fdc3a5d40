"""The local channel between the worker processes of one node: a Unix datagram socket each.

``mcn-scp run --workers N`` gives every worker ``<dir>/worker-<id>.sock``; a worker that
received a message for a sibling's transaction sends the frame of :mod:`scp.core.worker_link`
there, and the owner feeds it to its TCAP. Datagrams keep one frame per send, need no
connection (a restarted worker binds its path again and is reachable at once) and never block:
a sibling that is down or whose queue is full makes :meth:`WorkerLink.send` return False.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

from scp.core.worker_link import MAX_FRAME

__all__ = ["WorkerLink", "worker_socket"]


def worker_socket(directory: str | Path, worker_id: int) -> Path:
    """Where worker ``worker_id`` of the node running in ``directory`` receives."""
    return Path(directory) / f"worker-{worker_id}.sock"


class WorkerLink:
    """This worker's end of the channel: receives frames for it, sends frames to a sibling."""

    def __init__(
        self, directory: str | Path, worker_id: int, on_frame: Callable[[bytes], None]
    ) -> None:
        self.directory = Path(directory)
        self.worker_id = worker_id
        self._on_frame = on_frame
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        path = worker_socket(self.directory, self.worker_id)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by this worker's previous life (it was killed)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(path))
        os.chmod(path, 0o600)  # only the node's own user may hand it messages
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(self, worker_id: int, frame: bytes) -> bool:
        """Hand ``frame`` to worker ``worker_id``; False if it cannot take it now."""
        sock = self._sock
        if sock is None:
            return False
        try:
            sock.sendto(frame, str(worker_socket(self.directory, worker_id)))
        except OSError:  # not there (down, restarting) or its queue is full
            return False
        return True

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(256):  # then the loop serves the associations again
            try:
                frame = sock.recv(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._on_frame(frame)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            worker_socket(self.directory, self.worker_id).unlink()
