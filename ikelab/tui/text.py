"""Small text helpers shared by the panels: hex values, value tables, one line per event."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ikelab.trace import (
    AuthEvent,
    CertificateEvent,
    ChildSaEvent,
    CommandEvent,
    DhKeyPairEvent,
    DhSharedEvent,
    Event,
    IkeKeysEvent,
    IkeSaEvent,
    Ikev1HashEvent,
    Ikev1IvEvent,
    Ikev1KeysEvent,
    Ikev1MessageEvent,
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


def reflow(text: str) -> Text:
    """A lesson's prose with its file's line breaks undone, so it wraps to the panel's width.

    Paragraphs (blank-line separated) stay; a line that is a command (`ikelab ...`) or indented
    keeps a line of its own.
    """
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.startswith(("ikelab ", " ", "\t")) and not lines[-1].startswith(("ikelab ", " ", "\t")):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return Text("\n\n".join(paragraphs))


def hexval(data: bytes) -> str:
    return data.hex() if data else "(empty)"


LONG = 48  # bytes: longer values (a signed message, g^x, a signature) are shown by their start and length


def short(data: bytes | None) -> str:
    """A value for a side-by-side column: in full when short, else its start and length ("-" when missing)."""
    if data is None:
        return "-"
    return hexval(data) if len(data) <= LONG else f"{data[:24].hex()}… ({len(data)} bytes)"


def sized(label: str, data: bytes) -> Text:
    return Text.assemble((label, "bold"), (f"  {len(data)} bytes", "dim"))


def values_table(label: str = "", *values: str) -> Table:
    """A borderless table: a label column, then value columns that fold long hex instead of cutting it."""
    table = Table(box=None, show_header=any((label, *values)), pad_edge=False, expand=True, header_style="bold")
    table.add_column(label, no_wrap=True, style="bold")
    for name in values or ("",):
        table.add_column(name, overflow="fold", ratio=1)
    return table


def event_text(e: Event) -> Text:
    """What an event means, in a line, for the step's "what happened" list."""
    if isinstance(e, Ikev1MessageEvent):  # numbered, not request and response
        verb = {"sent": "sends", "received": "receives", "retransmitted": "retransmits"}[e.direction]
        return Text(f"{verb} {e.label} ({len(e.data)} bytes): {e.summary}")
    if isinstance(e, Ikev1HashEvent):
        if e.action == "computed":
            return Text(f"computes {e.label} (AUTH tab)")
        verdict = Text("OK", "green") if e.ok else Text("MISMATCH", "bold red")
        return Text(f"verifies the peer's {e.label}: ") + verdict + Text(" (AUTH tab)")
    if isinstance(e, Ikev1IvEvent):
        return Text(f"{e.label}: {e.formula} (Keys tab)", "dim")
    if isinstance(e, Ikev1KeysEvent):
        return Text(f"keys the ISAKMP SA: {e.cipher}-{e.hash} (Keys tab)")
    if isinstance(e, CertificateEvent):
        verdict = Text("valid", "green") if e.ok else Text(f"REFUSED: {e.reason}", "bold red")
        return Text(f"checks the {e.of_role}'s certificate {e.subject}: ") + verdict + Text(" (AUTH tab)")
    if isinstance(e, MessageEvent):
        verb = {"sent": "sends", "received": "receives", "retransmitted": "retransmits"}[e.direction]
        return Text(f"{verb} {e.exchange} {role(e)} #{e.message_id} ({len(e.data)} bytes): {e.summary}")
    if isinstance(e, DhKeyPairEvent):
        return Text(f"picks a private value and computes its public value in {e.group_name} (DH tab)")
    if isinstance(e, DhSharedEvent):
        return Text("computes the shared secret g^ir from the peer's public value (DH tab)")
    if isinstance(e, PrfEvent):
        return Text(f"computes {e.formula} (Keys tab)")
    if isinstance(e, PrfPlusEvent):
        return Text(f"derives {', '.join(e.split)} with prf+ (Keys tab)")
    if isinstance(e, IkeKeysEvent):
        return Text(f"keys the IKE SA: {e.cipher}" + (f"-{e.integrity}" if e.integrity else "") + f"-{e.prf}")
    if isinstance(e, AuthEvent):
        if e.action == "computed":
            return Text(f"computes its AUTH as {e.of_role} (AUTH tab)")
        verdict = Text("OK", "green") if e.ok else Text("MISMATCH", "bold red")
        return Text(f"verifies the {e.of_role}'s AUTH: ") + verdict
    if isinstance(e, ProposalEvent):
        if e.chosen:
            return Text(f"{e.protocol} proposal chosen: {e.chosen}")
        return Text(f"{e.protocol}: NO_PROPOSAL_CHOSEN", "bold red")
    if isinstance(e, TrafficSelectorEvent):
        return Text(f"traffic selectors: {e.reason}")
    if isinstance(e, ChildSaEvent):
        return Text(f"Child SA '{e.name}' {e.action}: in SPI 0x{e.inbound['spi']}, out SPI 0x{e.outbound['spi']} (SAs tab)")
    if isinstance(e, IkeSaEvent):
        style = "bold green" if e.state == "established" else "bold red" if e.state == "failed" else ""
        return Text(f"IKE SA {e.state.upper()}", style) + Text(f": {e.reason}" if e.reason else "")
    if isinstance(e, CommandEvent):
        return Text(f"{e.purpose} (Datapath tab)", "dim")
    if isinstance(e, PingEvent):
        return Text(e.line)
    if isinstance(e, NoteEvent):
        return Text(e.text, LEVEL_STYLE.get(e.level, ""))
    return Text(e.kind)
