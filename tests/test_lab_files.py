"""The files a lab run writes: in one private directory per run, named after the run, 0600 where
they hold secrets, removed at the end, and by `ikelab lab cleanup` after a kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import needs_lab
from ikelab.lab import netns
from ikelab.lab.strongswan import available

ROOT = Path(__file__).resolve().parent.parent
needs_strongswan = pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run in the lab here: {available()}")


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_cleanup_removes_only_run_directories_of_dead_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(netns, "ikelab_namespaces", lambda: [])  # directories only: leave other runs' namespaces be
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f"ikelab-{dead}x1-files-abc123"
    running = tmp_path / f"ikelab-{live}x1-files-def456"
    foreign = [tmp_path / "ikelab-capture-xyz", tmp_path / f"ikelab-{dead}x1-left", tmp_path / "other"]
    for directory in [stale, running, *foreign]:
        directory.mkdir()
        (directory / "charon.log").write_text("secret")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("keep")
    link = tmp_path / f"ikelab-{dead}x2-files-link00"
    link.symlink_to(target)

    assert netns.cleanup(root=tmp_path) == [str(stale)]
    assert not stale.exists()
    assert running.exists() and all(d.exists() for d in foreign)
    assert link.is_symlink() and (target / "keep").exists()

    assert netns.cleanup(include_live=True, root=tmp_path) == [str(running)]
    assert all(d.exists() for d in foreign) and (target / "keep").exists()


@needs_lab()
def test_a_run_without_capture_or_strongswan_writes_no_directory():
    from ikelab.lab.lab import Lab
    from conftest import lesson_with

    with Lab(lesson_with()) as lab:
        assert lab._directory is None
        assert not [d for d in netns.run_directories() if d.name.startswith(f"ikelab-{lab.topology.rid}-")]


@needs_lab()
@needs_strongswan
def test_strongswan_files_are_private_and_go_with_the_run():
    from ikelab.lab.lab import Lab
    from ikelab.lessons import load_lesson

    with Lab(load_lesson("ikev2-strongswan"), capture=True) as lab:
        directory = lab.directory()
        assert directory.name.startswith(f"ikelab-{lab.topology.rid}-files-")
        assert lab.capture.path.parent == directory
        files = [p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()]
        assert {"charon.log", "strongswan.conf", "swanctl.conf", "charon.out"} <= {p.name for p in files}
        loose = {str(p): oct(p.stat().st_mode & 0o777) for p in files + [directory]
                 if p.stat().st_mode & 0o077 and p.name != "veth.pcap"}
        assert not loose, loose
    assert not directory.exists()


KEEP_A_LAB = """
import sys, time
from ikelab.lab.lab import Lab
from ikelab.lessons import load_lesson
with Lab(load_lesson("ikev2-strongswan"), capture=True) as lab:
    print(lab.capture.process.pid, lab.directory(), flush=True)
    time.sleep(60)
"""


@needs_lab()
@needs_strongswan
def test_kill_9_then_lab_cleanup_removes_the_run_directory_and_tcpdump(monkeypatch):
    run = subprocess.Popen([sys.executable, "-c", KEEP_A_LAB], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    tcpdump, directory = run.stdout.readline().split()
    tcpdump, directory = int(tcpdump), Path(directory)
    run.kill()
    run.wait()
    assert directory.exists() and Path(f"/proc/{tcpdump}").exists()  # a killed run cannot clean up
    # Only this run's leftovers: other runs on this machine are not the test's to remove.
    ours = f"ikelab-{run.pid}x"
    namespaces, directories = netns.ikelab_namespaces, netns.run_directories
    monkeypatch.setattr(netns, "ikelab_namespaces", lambda: [n for n in namespaces() if n.startswith(ours)])
    monkeypatch.setattr(netns, "run_directories", lambda root=None: [d for d in directories(root) if d.name.startswith(ours)])
    removed = netns.cleanup()
    assert str(directory) in removed
    assert not directory.exists()
    time.sleep(0.2)
    try:
        state = Path(f"/proc/{tcpdump}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X")
