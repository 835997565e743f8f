"""The lesson picker: what `ikelab` with no arguments opens."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ikelab.lessons import Lesson


def lesson_prompt(lesson: Lesson) -> Text:
    summary = " ".join(lesson.summary.split())
    return Text.assemble((lesson.title, "bold"), (f"  {lesson.slug}", "dim"), "\n", (summary, "italic"))


class LessonPicker(Screen):
    BINDINGS: ClassVar[list[Binding]] = [Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    LessonPicker > #intro { padding: 1 2 0 2; }
    LessonPicker > OptionList { height: 1fr; margin: 1 2; }
    """

    def __init__(self, lessons: list[Lesson]) -> None:
        super().__init__()
        self.lessons = lessons

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Pick a lesson (enter or click). Each one runs two real IKE peers and pauses at every step.", id="intro")
        options: list[Option | None] = []
        for lesson in self.lessons:
            options += [Option(lesson_prompt(lesson)), None]  # None: a separator line
        yield OptionList(*options[:-1], id="lessons")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "ikelab · lessons"
        lessons = self.query_one(OptionList)
        lessons.focus()
        lessons.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.app.open_lesson(self.lessons[event.option_index])
