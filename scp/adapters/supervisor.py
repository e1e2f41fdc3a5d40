"""The parent of ``mcn-scp run --workers N``: starts the worker processes and keeps them running.

Each worker is a whole node process (``mcn-scp run`` with its worker index); the parent does no
signalling itself. It tells each worker how many times it has been started (``START_ENV``: a
restarted worker writes its capture to a new file). It restarts a worker that died (after a delay that doubles while the worker
keeps dying young, so a worker that cannot start does not spin), passes SIGTERM / SIGINT on to
every worker and waits for their clean stop (ASP down toward the peers), and gives up with the
worker's exit status 2 when a worker refuses its configuration (restarting cannot cure that).

The workers run in their own process group, so a Ctrl-C at the terminal reaches them once,
through the parent, and not twice. The parent waits on its signals with ``sigtimedwait`` (the
signals blocked), so a worker's death (SIGCHLD) and a stop request wake it at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

__all__ = ["RestartBackoff", "Supervisor", "EXIT_BAD_CONFIG", "START_ENV"]

START_ENV = "MCN_WORKER_START"  # 1 at a worker's first start, 2 at its first restart...
EXIT_BAD_CONFIG = 2  # what `mcn-scp` exits with on bad input (a config the worker refused)
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_STABLE = 60.0  # s a worker must have run for its next restart to be quick again

log = structlog.get_logger("scp.supervisor")


class RestartBackoff:
    """How long to wait before starting a process that ended again: ``restart_min`` at first,
    doubling up to ``restart_max`` while the process keeps dying young, back to ``restart_min``
    once it had run ``stable`` seconds. The workers here and the web child of ``mcn-scp run``
    (:mod:`scp.adapters.web_child`) restart so."""

    __slots__ = ("restart_min", "restart_max", "stable", "_next")

    def __init__(
        self, restart_min: float = 1.0, restart_max: float = 30.0, stable: float = _STABLE
    ) -> None:
        self.restart_min = restart_min
        self.restart_max = restart_max
        self.stable = stable
        self._next = restart_min

    def after(self, ran_for: float | None) -> float:
        """The delay before the next start of a process that ran ``ran_for`` s (None: it
        could not even start)."""
        if ran_for is not None and ran_for >= self.stable:
            self._next = self.restart_min
        delay = self._next
        self._next = min(delay * 2, self.restart_max)
        return delay


def _unblock() -> None:
    """In the worker, before exec: the parent's blocked signals are inherited, unblock them."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


class _Worker:
    __slots__ = ("index", "command", "proc", "started", "starts", "backoff", "restart_at")

    def __init__(self, index: int, command: Sequence[str], backoff: RestartBackoff) -> None:
        self.index = index
        self.command = list(command)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.starts = 0
        self.backoff = backoff
        self.restart_at: float | None = None


class Supervisor:
    """Runs one command per worker until SIGTERM/SIGINT (see the module doc)."""

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        *,
        restart_min: float = 1.0,
        restart_max: float = 30.0,
        stop_timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        popen: Callable[..., Any] = subprocess.Popen,
    ) -> None:
        self.workers = [
            _Worker(i, c, RestartBackoff(restart_min, restart_max)) for i, c in enumerate(commands)
        ]
        self.restart_min = restart_min
        self.restart_max = restart_max
        self.stop_timeout = stop_timeout
        self._clock = clock
        self._popen = popen

    def run(self) -> int:
        """Start the workers, supervise them, stop them; the exit status for the parent."""
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for w in self.workers:
                self._spawn(w)
            while True:
                got = signal.sigtimedwait(_SIGNALS, self._wait_for())
                if got is not None and got.si_signo in (signal.SIGTERM, signal.SIGINT):
                    log.info("stopping workers", signal=signal.Signals(got.si_signo).name)
                    self._stop(got.si_signo)
                    return 0
                if self._reap():
                    log.error("a worker refused its configuration: stopping")
                    self._stop(signal.SIGTERM)
                    return EXIT_BAD_CONFIG
                now = self._clock()
                for w in self.workers:
                    if w.restart_at is not None and w.restart_at <= now:
                        self._spawn(w)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _spawn(self, w: _Worker) -> None:
        w.restart_at = None
        w.starts += 1
        env = dict(os.environ, **{START_ENV: str(w.starts)})
        try:
            w.proc = self._popen(w.command, env=env, preexec_fn=_unblock, process_group=0)
        except OSError as e:
            log.error("worker could not start", index=w.index, error=str(e))
            self._schedule(w)
            return
        w.started = self._clock()
        log.info("worker started", index=w.index, pid=w.proc.pid)

    def _schedule(self, w: _Worker) -> None:
        now = self._clock()
        delay = w.backoff.after(now - w.started if w.proc is not None else None)
        w.proc = None
        w.restart_at = now + delay
        log.warning("worker restarts", index=w.index, retry_in=delay)

    def _reap(self) -> bool:
        """Workers that ended are scheduled for restart; True if one refused its config."""
        bad = False
        for w in self.workers:
            if w.proc is None or (rc := w.proc.poll()) is None:
                continue
            log.error("worker died", index=w.index, pid=w.proc.pid, status=rc)
            if rc == EXIT_BAD_CONFIG:
                bad = True
            self._schedule(w)
        return bad

    def _wait_for(self) -> float:
        pending = [w.restart_at for w in self.workers if w.restart_at is not None]
        if not pending:
            return 5.0  # a SIGCHLD lost in a race is caught up within this
        return max(0.0, min(pending) - self._clock())

    def _stop(self, signo: int) -> None:
        """``signo`` to every worker, then wait for them (killed past ``stop_timeout``)."""
        live = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for p in live:
            p.send_signal(signo)
        deadline = self._clock() + self.stop_timeout
        for p in live:
            try:
                p.wait(max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop: killed", pid=p.pid)
                p.kill()
                p.wait()
        log.info("workers stopped")
