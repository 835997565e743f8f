"""The datapath: which backend carries ESP, and every command the lab ran or would run."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from ikelab.trace import CommandEvent, Event, NoteEvent
from ikelab.tui.panels.base import TextPanel


class DatapathPanel(TextPanel):
    def show(self, events: list[Event], header: str) -> None:
        parts = [Text(header, "bold")]
        parts += [Text(e.text) for e in events if isinstance(e, NoteEvent) and e.text.startswith("datapath:")]
        for e in events:
            if isinstance(e, CommandEvent):
                how = Text("  (ran)", "green") if e.executed else Text("  (equivalent, not run)", "dim")
                parts += [Text(""), Text.assemble((f"{e.peer}: {e.purpose}", "bold underline"), how)]
                # Padding indents the wrapped lines of a long command too.
                parts += [Padding(Text(c, "cyan" if e.executed else ""), (0, 0, 0, 2)) for c in e.commands]
        self.update(Group(*parts))
