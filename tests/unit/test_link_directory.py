"""The node-local link's private directory (scp.adapters.worker_metrics.private_directory): named
after the process that made it, so that the next node to start removes the directories of
processes that no longer run (a node killed with SIGKILL cannot remove its own), and nothing
else."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from scp.adapters.worker_metrics import private_directory


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_dead_nodes_directory_goes_a_live_ones_and_others_stay(tmp_path: Path) -> None:
    dead = tmp_path / f"mcn-scp-node-{_dead_pid()}-abc"
    dead.mkdir()
    (dead / "metrics-0.sock").write_text("")  # what a killed node leaves
    live = tmp_path / f"mcn-scp-node-{os.getppid()}-def"  # a process that runs
    live.mkdir()
    other_kind = tmp_path / f"mcn-scp-workers-{_dead_pid()}-ghi"  # not this kind
    other_kind.mkdir()
    old_style = tmp_path / "mcn-scp-node-xyz"  # no pid in its name: not ours to judge
    old_style.mkdir()
    a_file = tmp_path / f"mcn-scp-node-{_dead_pid()}-file"  # not a directory
    a_file.write_text("")

    made = Path(private_directory("node", str(tmp_path)))

    assert not dead.exists()
    assert live.is_dir() and other_kind.is_dir() and old_style.is_dir() and a_file.is_file()
    assert made.parent == tmp_path and made.name.startswith(f"mcn-scp-node-{os.getpid()}-")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_its_own_directory_is_kept_by_a_second_call(tmp_path: Path) -> None:
    first = Path(private_directory("workers", str(tmp_path)))
    second = Path(private_directory("workers", str(tmp_path)))
    assert first.is_dir() and second.is_dir() and first != second
