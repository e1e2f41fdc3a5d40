"""The parent of ``mcn-scp run --workers N``: each worker's config, the restart delays (which the
web child of ``mcn-scp run`` shares), and the supervision itself (real child processes, tiny
Python commands standing for the workers)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest

from scp.adapters.supervisor import EXIT_BAD_CONFIG, START_ENV, RestartBackoff, Supervisor
from scp.app import worker_config, worker_seat
from scp.config import ConfigError, parse_config


def test_each_worker_has_its_own_id_asp_identifier_and_siblings() -> None:
    cfg = parse_config(
        "[node]\nworker_id = 20\nworkers = 3\n[m3ua]\nasp_identifier = 7\n"
        '[web]\nlisten = "127.0.0.1:8080"\n'
    )
    got = [worker_config(cfg, i) for i in range(3)]
    assert [w.node.worker_id for w in got] == [20, 21, 22]
    assert [w.m3ua.asp_identifier for w in got] == [7, 8, 9]
    assert [w.web.listen for w in got] == ["127.0.0.1:8080", "", ""]  # one web per node
    assert worker_seat(cfg, "/run/x", 1).siblings == frozenset({20, 22})
    assert worker_seat(cfg, "/run/x", 0).directory == "/run/x"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[node]\nworker_id = 250\nworkers = 7\n", "node.workers"),
        ("[node]\nworkers = 0\n", "node.workers"),
        ("[node]\nworkers = 2\n[m3ua]\nasp_identifier = 4294967295\n", "m3ua.asp_identifier"),
    ],
)
def test_a_worker_count_without_ids_for_all_is_refused(toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(toml)
    assert e.value.key == key


def test_restart_delays_double_while_young_and_start_again_once_stable() -> None:
    b = RestartBackoff(1.0, 30.0, stable=60.0)
    assert [b.after(0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert b.after(None) == 30  # could not even start: no younger than dying at once
    assert b.after(60.0) == 1  # it had run long enough: quick again
    assert b.after(3.0) == 2


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_worker_refusing_its_config_stops_the_others_and_gives_2(tmp_path: Path) -> None:
    stopped, ready = tmp_path / "stopped", tmp_path / "ready"
    waits = (
        "import pathlib, signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(stopped)!r}).touch(),"
        " sys.exit(0)))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    # refuses once the other one listens for SIGTERM (Python starts slowly on a busy machine)
    refuses = (
        "import pathlib, sys, time\n"
        f"while not pathlib.Path({str(ready)!r}).exists(): time.sleep(0.01)\n"
        "sys.exit(2)\n"
    )
    sup = Supervisor([_python(waits), _python(refuses)])
    assert sup.run() == EXIT_BAD_CONFIG
    assert stopped.exists()  # the other worker got SIGTERM, not SIGKILL


def test_a_dead_worker_is_restarted_and_sigterm_stops_all(tmp_path: Path) -> None:
    """The worker dies at once twice (each start writes its START_ENV to a file), then stays
    up; the test's SIGTERM to the parent, once the third start is seen, reaches it and ends
    the run."""
    starts = tmp_path / "starts"
    code = (
        "import os, pathlib, signal, sys, time\n"
        f"p = pathlib.Path({str(starts)!r})\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"  # before it says it started
        "prev = p.read_text() if p.exists() else ''\n"
        f"p.write_text(prev + os.environ[{START_ENV!r}])\n"
        "if len(prev) < 2: sys.exit(1)\n"
        "time.sleep(60)\n"
    )
    main = threading.main_thread().ident
    assert main is not None
    done = threading.Event()

    def stop_when_up() -> None:
        while not done.wait(0.05):
            if starts.exists() and len(starts.read_text()) == 3:
                signal.pthread_kill(main, signal.SIGTERM)  # blocked there: sigtimedwait takes it
                return

    watcher = threading.Thread(target=stop_when_up)
    watcher.start()
    try:
        sup = Supervisor([_python(code)], restart_min=0.05, restart_max=0.1)
        assert sup.run() == 0
    finally:
        done.set()
        watcher.join()
    assert starts.read_text() == "123"
    (w,) = sup.workers
    assert w.proc is not None and w.proc.returncode == 0  # stopped by its SIGTERM
