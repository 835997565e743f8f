"""Diffie-Hellman: each peer's private and public value and the shared secret both computed."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ikelab.lessons import Lesson
from ikelab.trace import DhKeyPairEvent, DhSharedEvent, Event
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.text import hexval, values_table


class DhPanel(TextPanel):
    def show(self, lesson: Lesson, events: list[Event]) -> None:
        peers = [p.name for p in lesson.peers]
        pairs = {p: [e for e in events if isinstance(e, DhKeyPairEvent) and e.peer == p] for p in peers}
        shared = {p: [e for e in events if isinstance(e, DhSharedEvent) and e.peer == p] for p in peers}
        rounds = max(len(v) for v in pairs.values())
        if not rounds:
            self.update(Text("No Diffie-Hellman yet: the initiator makes its key pair as it starts IKE_SA_INIT.", "dim italic"))
            return
        parts = []
        for i in range(rounds):
            pair = {p: pairs[p][i] if i < len(pairs[p]) else None for p in peers}
            secret = {p: shared[p][i] if i < len(shared[p]) else None for p in peers}
            group = next(e for e in pair.values() if e is not None)
            title = f"Diffie-Hellman {group.group_name} (group {group.group})" + (f", exchange {i + 1}" if rounds > 1 else "")
            parts.append(Text(title, "bold underline"))
            table = values_table("", *(f"{p} ({spec.role})" for p, spec in zip(peers, lesson.peers)))
            table.add_row("private", *(hexval(e.private) if e else "-" for e in pair.values()))
            table.add_row("public (KE)", *(hexval(e.public) if e else "-" for e in pair.values()))
            table.add_row("shared g^ir", *(hexval(e.shared) if e else "not yet" for e in secret.values()))
            parts.append(table)
            parts.append(self._verdict(list(secret.values())))
            parts.append(Text(""))
        self.update(Group(*parts))

    @staticmethod
    def _verdict(secrets: list[DhSharedEvent | None]) -> Text:
        if any(s is None for s in secrets):
            return Text("Each side computes g^ir from its own private value and the other's public value.", "dim")
        if secrets[0].shared == secrets[1].shared:
            return Text(f"✓ both sides computed the same {len(secrets[0].shared)}-byte shared secret; it never crossed the wire", "green")
        return Text("✗ the two shared secrets differ", "bold red")
