"""Small text helpers shared by the panels: hex values, value tables, one line per event."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ikelab.trace import (
    AuthEvent,
    ChildSaEvent,
    CommandEvent,
    DhKeyPairEvent,
    DhSharedEvent,
    Event,
    IkeKeysEvent,
    IkeSaEvent,
    MessageEvent,
    NoteEvent,
    PingEvent,
    PrfEvent,
    PrfPlusEvent,
    ProposalEvent,
    TrafficSelectorEvent,
)
from ikelab.tui.focus import role

LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}


def hexval(data: bytes) -> str:
    return data.hex() if data else "(empty)"


def sized(label: str, data: bytes) -> Text:
    return Text.assemble((label, "bold"), (f"  {len(data)} bytes", "dim"))


def values_table(label: str = "", *values: str) -> Table:
    """A borderless table: a label column, then value columns that fold long hex instead of cutting it."""
    table = Table(box=None, show_header=any((label, *values)), pad_edge=False, expand=True, header_style="bold")
    table.add_column(label, no_wrap=True, style="bold")
    for name in values or ("",):
        table.add_column(name, overflow="fold", ratio=1)
    return table


def event_line(e: Event) -> Text:
    """What an event means in one line, for the step's "what happened" list."""
    who = Text(f"{e.peer:>5}  ", "dim")
    if isinstance(e, MessageEvent):
        verb = {"sent": "sends", "received": "receives", "retransmitted": "retransmits"}[e.direction]
        return who + Text(f"{verb} {e.exchange} {role(e)} #{e.message_id} ({len(e.data)} bytes): {e.summary}")
    if isinstance(e, DhKeyPairEvent):
        return who + Text(f"picks a private value and computes its public value in {e.group_name} (DH tab)")
    if isinstance(e, DhSharedEvent):
        return who + Text("computes the shared secret g^ir from the peer's public value (DH tab)")
    if isinstance(e, PrfEvent):
        return who + Text(f"computes {e.formula} (Keys tab)")
    if isinstance(e, PrfPlusEvent):
        return who + Text(f"derives {', '.join(e.split)} with prf+ (Keys tab)")
    if isinstance(e, IkeKeysEvent):
        return who + Text(f"keys the IKE SA: {e.cipher}" + (f"-{e.integrity}" if e.integrity else "") + f"-{e.prf}")
    if isinstance(e, AuthEvent):
        if e.action == "computed":
            return who + Text(f"computes its AUTH as {e.of_role} (AUTH tab)")
        verdict = Text("OK", "green") if e.ok else Text("MISMATCH", "bold red")
        return who + Text(f"verifies the {e.of_role}'s AUTH: ") + verdict
    if isinstance(e, ProposalEvent):
        if e.chosen:
            return who + Text(f"{e.protocol} proposal chosen: {e.chosen}")
        return who + Text(f"{e.protocol}: NO_PROPOSAL_CHOSEN", "bold red")
    if isinstance(e, TrafficSelectorEvent):
        return who + Text(f"traffic selectors: {e.reason}")
    if isinstance(e, ChildSaEvent):
        return who + Text(f"Child SA '{e.name}' {e.action}: in SPI 0x{e.inbound['spi']}, out SPI 0x{e.outbound['spi']} (SAs tab)")
    if isinstance(e, IkeSaEvent):
        style = "bold green" if e.state == "established" else "bold red" if e.state == "failed" else ""
        return who + Text(f"IKE SA {e.state.upper()}", style) + Text(f": {e.reason}" if e.reason else "")
    if isinstance(e, CommandEvent):
        return who + Text(f"{e.purpose} (Datapath tab)", "dim")
    if isinstance(e, PingEvent):
        return who + Text(e.line)
    if isinstance(e, NoteEvent):
        return who + Text(e.text, LEVEL_STYLE.get(e.level, ""))
    return who + Text(e.kind)
