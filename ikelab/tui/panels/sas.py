"""The security associations: the IKE SA's state on both sides, each Child SA with its counters."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ikelab.lessons import Lesson
from ikelab.trace import ChildSaEvent, Event, IkeKeysEvent, IkeSaEvent, Ikev1KeysEvent, PingEvent
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.text import values_table

STATE_STYLE = {"established": "bold green", "failed": "bold red"}


def ike_sas(events: list[Event]) -> dict[tuple[bytes, bytes], dict[str, IkeSaEvent]]:
    """Each IKE SA (by its SPIs, in the order they appeared) with each peer's latest state of it."""
    sas: dict[tuple[bytes, bytes], dict[str, IkeSaEvent]] = {}
    for e in events:
        if isinstance(e, IkeSaEvent):
            sas.setdefault((e.spi_i, e.spi_r), {})[e.peer] = e
    return sas


def live_children(events: list[Event], peer: str) -> list[ChildSaEvent]:
    children: dict[str, ChildSaEvent] = {}
    for e in events:
        if isinstance(e, ChildSaEvent) and e.peer == peer:
            if e.action == "installed":
                children[e.outbound["spi"]] = e
            else:
                children.pop(e.outbound["spi"], None)
    return list(children.values())


def counter_text(counters: dict, peer: str, direction: str, spi: str) -> str:
    n = (counters.get(peer, {}).get(direction) or {}).get(spi)
    if not n:
        return "no ESP packets yet"
    text = f"{n['packets']} packets, {n['bytes']} bytes"
    problems = [f"{n[k]} {k.replace('_', ' ')}" for k in ("replay_drops", "integrity_failures") if n.get(k)]
    return text + (", " + ", ".join(problems) if problems else "")


class SaPanel(TextPanel):
    def show(self, lesson: Lesson, events: list[Event]) -> None:
        parts = []
        sas = ike_sas(events)
        keys = next((e for e in events if isinstance(e, IkeKeysEvent)), None)
        if keys and not sas:
            sas[(keys.spi_i, keys.spi_r)] = {}  # keyed, not yet authenticated
        v1_keys = next((e for e in events if isinstance(e, Ikev1KeysEvent)), None)
        if v1_keys and not sas:
            sas[(v1_keys.cky_i, v1_keys.cky_r)] = {}
        for (spi_i, spi_r), states in sas.items():
            if lesson.ike_version == 1:  # IKEv1 names its SA and SPIs the ISAKMP way
                parts.append(Text(f"ISAKMP SA  CKY-I {spi_i.hex()}  CKY-R {spi_r.hex()}", "bold underline"))
            else:
                parts.append(Text(f"IKE SA  SPIi {spi_i.hex()}  SPIr {spi_r.hex()}", "bold underline"))
            for peer in (p.name for p in lesson.peers):
                state = states.get(peer)
                line = Text(f"  {peer:>5}  ")
                if state is None:
                    line.append("negotiating", "dim")
                else:
                    line.append(state.state.upper(), STATE_STYLE.get(state.state, ""))
                    line.append(f"  {state.algorithms}" + (f"  {state.reason}" if state.reason else ""))
                parts.append(line)
            parts.append(Text(""))
        pings = [e for e in events if isinstance(e, PingEvent)]
        counters = pings[-1].counters if pings else {}
        for peer in (p.name for p in lesson.peers):
            for child in live_children(events, peer):
                parts.append(Text.assemble((f"{peer}: Child SA '{child.name}'", "bold underline"),
                                           f"  {child.protocol} {child.mode} mode, {child.algorithms}"))
                parts.append(Text(f"  traffic {', '.join(child.local_ts)} ⇄ {', '.join(child.remote_ts)}"))
                table = values_table()
                for direction, sa in (("outbound", child.outbound), ("inbound", child.inbound)):
                    table.add_row(f"{direction} SPI 0x{sa['spi']}",
                                  Text.assemble(f"{sa['src']} → {sa['dst']}  ", (counter_text(counters, peer, direction, sa["spi"]), "cyan")))
                    table.add_row(Text(f"  enc {sa['cipher']}", "not bold"), sa["encryption_key"])
                    if sa["integrity_key"]:
                        table.add_row(Text(f"  int {sa['integrity']}", "not bold"), sa["integrity_key"])
                parts.append(table)
                parts.append(Text(""))
        if not parts:
            parts = [Text("No SA yet: the IKE SA exists once IKE_SA_INIT has run, the Child SA after IKE_AUTH.", "dim italic")]
        self.update(Group(*parts))
