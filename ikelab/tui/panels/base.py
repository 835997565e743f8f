"""What the text panels share: a scrolling area holding one renderable."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextPanel(VerticalScroll):
    """A scrolling panel of one renderable, redrawn from the trace by the subclass's `show`."""

    DEFAULT_CSS = "TextPanel > Static { padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.body = Static()

    def compose(self) -> ComposeResult:
        yield self.body

    def update(self, renderable) -> None:
        self.body.update(renderable)
