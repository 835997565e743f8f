"""The ladder (sequence) diagram: both peers as columns, one arrow per datagram on the wire."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ikelab.lessons import Lesson
from ikelab.trace import Event, MessageEvent
from ikelab.tui.focus import sender, arrow_states, wire_messages

if TYPE_CHECKING:  # for annotations only: importing the session module loads the engines
    from ikelab.lab.session import Step

SHORT_ROLE = {False: "req", True: "resp"}


class Arrow:
    """One message as an arrow that fills the width it is given (a Rich renderable)."""

    def __init__(self, message: MessageEvent, to_right: bool, state: str, label: str | None = None) -> None:
        self.label = label or f"{message.exchange} {SHORT_ROLE[message.is_response]}  {message.summary}"
        self.to_right = to_right
        self.state = state  # one of focus.arrow_states

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        inner = max(options.max_width - 2, 12)
        line = "╌" if self.state == "in flight" else "─"
        head = {"lost": "✗", "dropped": "✗", "in flight": "▷" if self.to_right else "◁"}.get(self.state, "▶" if self.to_right else "◀")
        suffix = {"lost": "  (lost)", "dropped": "  (dropped by the receiver)", "in flight": "  (in flight)"}.get(self.state, "")
        room = inner - 7 - len(suffix)  # 6 cells of arrow around the label, and at least one of line
        label = self.label if len(self.label) <= room else self.label[: room - 1] + "…"
        label += suffix
        fill = line * (inner - len(label) - 6)
        style = {"lost": "red", "dropped": "red", "in flight": "yellow"}.get(self.state, "")
        if self.to_right:
            body = Text.assemble(line * 2 + " ", (label, "bold " + style), " " + fill + line, (head, style))
        else:
            body = Text.assemble((head, style), line + fill + " ", (label, "bold " + style), " " + line * 2)
        yield Text.assemble(("│", "dim"), body, ("│", "dim"))


class Ladder(Vertical):
    """Peer names above a list of arrows; highlighting an arrow opens its message."""

    DEFAULT_CSS = """
    Ladder { height: auto; max-height: 40%; }
    Ladder > #peers { height: 1; padding: 0 1; }
    Ladder > OptionList { height: auto; max-height: 100%; padding: 0 1; }
    """

    def __init__(self, lesson: Lesson, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lesson = lesson
        self.messages: list[MessageEvent] = []
        self._drawn: list[tuple[int, str]] = []  # what the arrows show, to redraw only on change

    def compose(self) -> ComposeResult:
        yield Static(id="peers")
        yield OptionList(id="arrows")

    def on_mount(self) -> None:
        self.query_one("#peers", Static).update(self._peers_line())
        self.show([], [], None)

    def on_resize(self) -> None:
        self.query_one("#peers", Static).update(self._peers_line())

    def _peers_line(self) -> Text:
        left, right = self.lesson.left, self.lesson.right
        a = f"{left.name} {left.address} ({left.role})"
        b = f"{right.name} {right.address} ({right.role})"
        gap = max(self.size.width - 2 - len(a) - len(b), 2)
        return Text.assemble((a, "bold"), " " * gap, (b, "bold"))

    def arrow_label(self, number: int, message: MessageEvent) -> str | None:
        """The text of the `number`th arrow; None: the exchange, its role and the summary."""
        return None

    def show(self, events: list[Event], steps: list[Step], focus: MessageEvent | None) -> None:
        """Draw every message so far and highlight `focus` (which opens it in the message tab)."""
        arrows = self.query_one("#arrows", OptionList)
        messages = wire_messages(events)
        states = arrow_states(events, steps)
        drawn = [(id(m), state) for m, state in zip(messages, states)]
        if drawn != self._drawn or not messages:
            self.messages, self._drawn = messages, drawn
            # Anything the right peer did not send goes to it (a flood's requests come from left's side).
            options = [Option(Arrow(m, sender(m, self.lesson) != self.lesson.right.name, state, self.arrow_label(i, m)))
                       for i, (m, state) in enumerate(zip(messages, states), start=1)]
            if not options:
                options = [Option(Text("no message on the wire yet: press n to take the first step", "dim italic"), disabled=True)]
            arrows.set_options(options)
        index = next((i for i, m in enumerate(self.messages) if m is focus), None)
        if index is not None:
            arrows.highlighted = index
