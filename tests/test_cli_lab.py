"""The command line around a lab run: a closed terminal and a closed or full output still remove the lab."""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import needs_lab
from ikelab.lab.netns import ikelab_namespaces, kill_processes
from test_lab import _alive, _processes_in, _start_run, _wait_for_namespaces

pytestmark = needs_lab()


def _left_behind(pid: int) -> list[str]:
    """The namespaces of run `pid` still there, removed (so a failing test leaves nothing either)."""
    left = [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{pid}x")]
    for namespace in left:
        kill_processes(namespace)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    return left


def test_sighup_during_a_run_removes_everything_and_exits_130():
    """A closed terminal or a dropped ssh (SIGHUP) ends a run as Ctrl-C does: lab removed, status 130."""
    run = _start_run()
    namespaces = _wait_for_namespaces(run.pid)
    time.sleep(0.8)  # inside the ping stage
    inside = _processes_in(namespaces)
    run.send_signal(signal.SIGHUP)
    status = run.wait(timeout=20)
    assert not _left_behind(run.pid)
    assert status == 130
    time.sleep(0.2)
    assert not _alive(inside)
