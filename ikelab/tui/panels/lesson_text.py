"""The lesson's words for this step, and what each peer did in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ikelab.lessons import Lesson
from ikelab.trace import Event
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.text import event_text, reflow

if TYPE_CHECKING:  # for annotations only: importing the session module loads the engines
    from ikelab.lab.session import Step


class LessonText(TextPanel):
    def show(self, lesson: Lesson, step: Step | None, key: str | None, events: list[Event], finished: bool) -> None:
        if step is None:
            parts = [Text(lesson.title, "bold underline"), Text(""), reflow(lesson.summary), Text(""),
                     Text("Press n (or space) to take the first step, ? for help.", "italic")]
            self.update(Group(*parts))
            return
        parts = [Text.assemble((f"Step {step.index + 1}: {step.label}", "bold underline"),
                               ("   (the end of the run)" if finished else "", "dim"))]
        narrative = lesson.narrative(key) if key else ""
        if narrative:
            parts += [Text(""), reflow(narrative)]
        happened = Table.grid(padding=(0, 2))
        happened.add_column(style="dim", no_wrap=True)
        happened.add_column()
        for e in events[step.first_event : step.last_event]:
            happened.add_row(e.peer, event_text(e))
        parts += [Text(""), Text("What happened in this step", "bold"), happened]
        if finished and lesson.checkpoints:
            parts += [Text(""), Text("Checkpoints", "bold")]
            parts += [Text("• ") + reflow(c) for c in lesson.checkpoints]
        self.update(Group(*parts))
