"""Smoke test: the real app in a real terminal (tmux), driven with send-keys and read with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import needs_lab

from ikelab.cli import build_parser

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")

ROOT = Path(__file__).resolve().parent.parent


def app_command(transport: str, lesson: str = "ikev2-psk") -> str:
    """`ikelab tui` once the CLI has it; until then the same entry point called directly."""
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    if "tui" in commands:
        args = [sys.executable, "-m", "ikelab.cli", "tui", lesson, "--seed", "1", "--transport", transport]
    else:
        code = f"import sys; from ikelab.tui import run_app; sys.exit(run_app({lesson!r}, 1, {transport!r}))"
        args = [sys.executable, "-c", code]
    # pytest may export COLUMNS/LINES, which Textual would believe over the pane's real size.
    return shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *args])


class Tmux:
    def __init__(self) -> None:
        self.socket = f"ikelab-test-{os.getpid()}"  # a server of its own: nobody else's sessions

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def wait_for(self, *texts: str, timeout: float = 15.0) -> str:
        """The first screen that shows all of `texts`: one capture can fall between two repaints."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts!r} did not all appear; the screen shows:\n{self.screen()}")


def test_the_app_steps_in_a_real_terminal():
    tmux = Tmux()
    # `; sleep` keeps the pane open after the app ends, so a traceback could still be read.
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(ROOT), app_command("memory") + "; echo EXITED $?; sleep 60")
    try:
        tmux.wait_for("no message on the wire yet")
        tmux("send-keys", "-t", "app", "n")
        tmux.wait_for("IKE_SA_INIT req  HDR, SA, KE, Ni")
        for _ in range(4):
            tmux("send-keys", "-t", "app", "n")
        tmux.wait_for("(end)", "IKE_AUTH resp  HDR, SK {IDr, AUTH, SA, TSi, TSr}", "established on both sides")
        tmux("send-keys", "-t", "app", "3")
        tmux.wait_for("both sides computed the same")
        tmux("send-keys", "-t", "app", "q")
        assert "EXITED 0" in tmux.wait_for("EXITED")
    finally:
        tmux("kill-server")


def test_ikev1_and_ikev2_side_by_side_in_an_80x24_terminal():
    tmux = Tmux()
    tmux("new-session", "-d", "-s", "app", "-x", "80", "-y", "24", "-c", str(ROOT),
         app_command("memory", "ikev1-vs-ikev2") + "; echo EXITED $?; sleep 60")
    try:
        screen = tmux.wait_for("IKEv1 main + quick mode")
        assert "IKEv2" in screen
        for _ in range(5):
            tmux("send-keys", "-t", "app", "n")
        tmux.wait_for("IKEv2: ✓ Child SA after 4 messages", "5 Main Mode 5", "4 IKE_AUTH response")
        tmux("send-keys", "-t", "app", "c", "2")
        screen = tmux.wait_for("IKEv1: ✓ Child SA after 9 messages", "4.5")  # 4.5: the round-trips row is final too
        rows = {line.split("  ")[0].strip(): line.split() for line in screen.splitlines()}
        assert rows["messages on the wire"][-2:] == ["9", "4"] and rows["round trips"][-2:] == ["4.5", "2"]
        tmux("send-keys", "-t", "app", "q")
        assert "EXITED 0" in tmux.wait_for("EXITED")
    finally:
        tmux("kill-server")


@needs_lab()
def test_closing_the_terminal_mid_run_leaves_no_namespace():
    from ikelab.lab.netns import ikelab_namespaces

    tmux = Tmux()
    # exec: the pane's process is the app itself, whose pid names its namespaces.
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(ROOT), "exec " + app_command("netns"))
    try:
        pid = tmux("display", "-p", "-t", "app", "#{pane_pid}").strip()
        tmux.wait_for("no message on the wire yet")
        tmux("send-keys", "-t", "app", "n")
        tmux.wait_for("IKE_SA_INIT req  HDR, SA, KE, Ni")
        ours = [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{pid}x")]
        assert len(ours) == 2
    finally:
        tmux("kill-server")  # the terminal goes away: the app gets SIGHUP
    deadline = time.monotonic() + 15
    while [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{pid}x")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{pid}x")]
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:  # and the app itself ends
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the app was still running after its terminal closed"
