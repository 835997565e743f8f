"""The ping stage: live replies through the tunnel and both sides' ESP counters."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ikelab.export.transcript import render_counters
from ikelab.trace import Event, NoteEvent, PingEvent
from ikelab.tui.panels.base import TextPanel


class PingPanel(TextPanel):
    def show(self, events: list[Event], status: str) -> None:
        """`status` says whether a ping can run here, and how to start it."""
        pings = [e for e in events if isinstance(e, PingEvent)]
        parts = [Text(status, "bold" if pings else "")]
        if pings:
            parts += [Text("")] + [Text(e.line) for e in pings]
            summary = [e for e in events if isinstance(e, NoteEvent) and e.text.startswith("ping:")]
            parts += [Text(e.text, "green" if e.level == "info" else "yellow") for e in summary[-1:]]
            counters = pings[-1].counters
            raw = {side: c["raw"] for side, c in counters.items() if "raw" in c}
            parts += [Text(""), Text("ESP counters", "bold underline")]
            parts += [Text(f"{side}:\n{text}") for side, text in raw.items()]
            parts.append(Text(render_counters({s: c for s, c in counters.items() if "raw" not in c})))
        self.update(Group(*parts))
