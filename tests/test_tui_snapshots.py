"""Snapshots of the TUI at a fixed seed and size, memory transport (pytest-textual-snapshot).

After a deliberate change of the screens, regenerate them with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs before committing.
"""

from __future__ import annotations

import dataclasses

from conftest import lesson_with

from ikelab.lessons import load_lesson
from ikelab.tui.app import IkelabApp
from ikelab.tui.runner import TransportChoice

MEMORY = TransportChoice("memory")


def keys_then_settle(*keys: str):
    """A run_before that presses keys and waits for the run's jobs to finish."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            while getattr(pilot.app.screen, "busy", False):  # the one-run and the side-by-side screens
                await pilot.pause(0.01)
        await pilot.pause()

    return run_before


def lesson_app(lesson=None) -> IkelabApp:
    return IkelabApp(lesson or load_lesson("ikev2-psk"), 1, MEMORY)


def test_picker(snap_compare):
    # Two fixed lessons: lessons/ grows, and the snapshot should not change with it.
    app = IkelabApp(None, 1, MEMORY, [load_lesson("ikev2-psk"), load_lesson("manual-keying")])
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys_then_settle())


def test_lesson_before_the_first_step_80x24(snap_compare):
    assert snap_compare(lesson_app(), terminal_size=(80, 24), run_before=keys_then_settle())


def test_message_tab_with_decrypted_sk(snap_compare):
    assert snap_compare(lesson_app(), terminal_size=(110, 34), run_before=keys_then_settle("n", "n", "n", "2"))


def test_keys_tab_at_the_end(snap_compare):
    assert snap_compare(lesson_app(), terminal_size=(110, 34), run_before=keys_then_settle("c", "4"))


def test_auth_tab_with_a_wrong_psk(snap_compare):
    lesson = lesson_with(right={"psk": b"not the same key"})
    assert snap_compare(lesson_app(lesson), terminal_size=(110, 34), run_before=keys_then_settle("c", "5"))


def test_ikev1_and_ikev2_side_by_side_after_five_steps(snap_compare):
    # Lockstep: IKEv2 is done after its fourth message, IKEv1 main mode has just sent its fifth.
    app = IkelabApp(load_lesson("ikev1-vs-ikev2"), 1, MEMORY)
    assert snap_compare(app, terminal_size=(100, 32), run_before=keys_then_settle("n", "n", "n", "n", "n", "2"))


def test_ikev1_auth_tab_with_a_wrong_psk_in_main_mode(snap_compare):
    # Message 5 cannot be read: the tab shows both sides' keys up to Ka, the pre-shared key differing first.
    lesson = load_lesson("ikev1-main-psk")
    lesson = dataclasses.replace(lesson, right=dataclasses.replace(lesson.right, psk=b"not the same key"))
    assert snap_compare(lesson_app(lesson), terminal_size=(110, 34), run_before=keys_then_settle("c", "5"))
