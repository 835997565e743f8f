"""Diffie-Hellman: each peer's private and public value and the shared secret both computed."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ikelab.lessons import Lesson
from ikelab.trace import DhKeyPairEvent, DhSharedEvent, Event, IkeSaEvent
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.text import hexval, values_table


def after_phase1(events: list[Event], pair: DhKeyPairEvent) -> bool:
    """Whether the peer made this key pair once its ISAKMP SA was up: IKEv1 quick mode's PFS."""
    return any(isinstance(e, IkeSaEvent) and e.seq < pair.seq and e.peer == pair.peer and e.state == "established" for e in events)


class DhPanel(TextPanel):
    def show(self, lesson: Lesson, events: list[Event]) -> None:
        peers = [p.name for p in lesson.peers]
        pairs = {p: [e for e in events if isinstance(e, DhKeyPairEvent) and e.peer == p] for p in peers}
        shared = {p: [e for e in events if isinstance(e, DhSharedEvent) and e.peer == p] for p in peers}
        rounds = max(len(v) for v in pairs.values())
        if not rounds:
            start = "IKE_SA_INIT" if lesson.ike_version == 2 else "its main mode message 3 (aggressive mode: message 1)"
            self.update(Text(f"No Diffie-Hellman yet: the initiator makes its key pair as it starts {start}.", "dim italic"))
            return
        shared_name = "shared g^ir" if lesson.ike_version == 2 else "shared g^xy"  # what each RFC calls it
        parts = []
        for i in range(rounds):
            pair = {p: pairs[p][i] if i < len(pairs[p]) else None for p in peers}
            secret = {p: shared[p][i] if i < len(shared[p]) else None for p in peers}
            group = next(e for e in pair.values() if e is not None)
            title = f"Diffie-Hellman {group.group_name} (group {group.group})" + (f", exchange {i + 1}" if rounds > 1 else "")
            if lesson.ike_version == 1 and after_phase1(events, group):
                title += ": quick mode PFS, g(qm)^xy goes into KEYMAT"
            parts.append(Text(title, "bold underline"))
            table = values_table("", *(f"{p} ({spec.role})" for p, spec in zip(peers, lesson.peers)))
            table.add_row("private", *(hexval(e.private) if e else "-" for e in pair.values()))
            table.add_row("public (KE)", *(hexval(e.public) if e else "-" for e in pair.values()))
            table.add_row(shared_name, *(hexval(e.shared) if e else "not yet" for e in secret.values()))
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
