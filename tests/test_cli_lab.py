"""The command line around a lab run: a closed terminal and a closed or full output still remove the lab."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from conftest import needs_lab
from ikelab.lab.netns import ikelab_namespaces, kill_processes
from test_lab import ROOT, _alive, _processes_in, _start_run, _wait_for_namespaces

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


def _run_writing_to(stdout) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ikelab.cli", "run", "ikev2-psk", "--headless", "--ping", "3"],
                            cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)


def test_a_closed_output_pipe_still_removes_the_lab():
    run = _run_writing_to(subprocess.PIPE)
    _wait_for_namespaces(run.pid)
    run.stdout.close()  # the reader goes away before the transcript is written
    status = run.wait(timeout=60)
    assert not _left_behind(run.pid)
    assert status == 1 and "Traceback" not in run.stderr.read()


def test_a_full_output_still_removes_the_lab():
    with open("/dev/full", "w") as full:
        run = _run_writing_to(full)
        status = run.wait(timeout=60)
    assert not _left_behind(run.pid)
    assert status == 1 and run.stderr.read().endswith("ikelab: error: cannot write the output: No space left on device\n")
