"""The Textual application: a lesson picker or one lesson, and the runs it must close."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from ikelab.lab.runs import stand_in
from ikelab.lessons import Lesson
from ikelab.tui.lesson_screen import LessonScreen
from ikelab.tui.picker import LessonPicker
from ikelab.tui.runner import Runner, TransportChoice

STEP_COMMANDS = [
    ("Next step", "Carry the next datagram to its peer and let it process it", "next"),
    ("Back one step", "Replay the run from its seed to the previous step", "back"),
    ("Restart", "Start the lesson's run again", "restart"),
    ("Continue to the end", "Take every remaining step", "continue"),
    ("Ping through the tunnel", "Send pings once the Child SAs are up (namespace lab)", "ping"),
    ("Export the capture", "Write an annotated pcapng and Wireshark's decryption tables", "export"),
    ("Help", "Keys and what each tab shows", "help"),
]


class IkelabApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "ikelab"

    def __init__(self, lesson: Lesson | None, seed: int | None, transport: TransportChoice, lessons: list[Lesson] | None = None) -> None:
        super().__init__()
        self.lesson, self.seed, self.transport = lesson, seed, transport
        self.lessons = lessons or []
        self.runners: list[Runner] = []  # every run opened, so all are closed on exit

    def on_mount(self) -> None:
        # A kill (SIGTERM) leaves like q does, so the lab is removed; a closed terminal (SIGHUP) removes it and ends at once.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.exit)
        loop.add_signal_handler(signal.SIGHUP, self._hang_up)
        if self.lesson is not None:
            self.push_screen(self._screen(self.lesson))
        else:
            self.push_screen(LessonPicker(self.lessons))

    def open_lesson(self, lesson: Lesson) -> None:
        self.push_screen(self._screen(lesson, from_picker=True))

    def _screen(self, lesson: Lesson, from_picker: bool = False) -> Screen:
        if lesson.compare:  # two protocols side by side: one run each
            from ikelab.tui.compare_screen import CompareScreen

            return CompareScreen(lesson, [self._runner(v) for v in lesson.variants()], from_picker=from_picker)
        return LessonScreen(self._runner(lesson), from_picker=from_picker)

    def _runner(self, lesson: Lesson) -> Runner:
        transport = self.transport
        if transport.lab_unavailable:  # the stand-in may depend on the lesson (a [router] needs memory)
            transport = stand_in(transport.lab_unavailable, lesson)
        runner = Runner(lesson, self.seed, transport)
        self.runners.append(runner)
        return runner

    def close_runners(self) -> None:
        for runner in self.runners:
            runner.close()

    def _hang_up(self) -> None:
        """The terminal is gone: remove the labs and end now. Textual's own shutdown could wait
        forever for its output thread, which may have died writing to the closed terminal (seen
        with Textual 8.2: one closed terminal in eight left the process hanging), and there is no
        terminal left to restore."""
        self.close_runners()
        os._exit(128 + signal.SIGHUP)

    def on_unmount(self) -> None:
        # The app is going away (quit, or an error it caught): remove the labs before it is gone.
        self.close_runners()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, LessonScreen):
            for title, help_text, action in STEP_COMMANDS:
                yield SystemCommand(title, help_text, getattr(screen, f"action_{action}"))
        elif hasattr(screen, "action_both"):  # the side-by-side screen
            yield SystemCommand("Step both runs", "Carry the next datagram of each run to its peer", screen.action_both)
            for title, help_text, action in STEP_COMMANDS:
                if hasattr(screen, f"action_{action}") and action != "next":
                    yield SystemCommand(title, help_text, getattr(screen, f"action_{action}"))
