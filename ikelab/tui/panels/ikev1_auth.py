"""IKEv1's side of the AUTH tab: HASH_I/HASH_R (signed as SIG_I/SIG_R with certificates) and quick
mode's HASH(1)/(2)/(3), each as its sender computed it beside what the receiver expected.

Every value comes from the trace (Ikev1HashEvent and friends), as the engines computed and used it.
When a receiver never got to check a hash (a wrong pre-shared key in main mode makes message 5
decrypt into garbage), the reason is shown with both sides' key chains, so the first value that
differs is visible.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ikelab.trace import (
    CertificateEvent,
    Event,
    IkeSaEvent,
    Ikev1HashEvent,
    Ikev1IvEvent,
    Ikev1MessageEvent,
    NoteEvent,
    PrfEvent,
    PrfPlusEvent,
)
from ikelab.tui.text import short, values_table

HEADING = ("HASH_I and HASH_R prove both sides hold the same SKEYID (with certificates each side signs its HASH: "
           "SIG_I, SIG_R); quick mode's HASH(1), (2), (3) are keyed with SKEYID_a.   RFC 2409 §5, §5.5")


def mark(a: bytes | None, b: bytes | None) -> Text | str:
    if a is None or b is None:
        return ""
    return Text("✓", "green") if a == b else Text("✗ differs", "bold red")


def hash_checks(events: list[Event]) -> list[list[Ikev1HashEvent]]:
    """Each HASH or SIG once, with every peer's event of it, in the order first computed.

    Quick mode and informational hashes are told apart by their M-ID; phase 1's by how many
    times the peer computed that label before.
    """
    groups: dict[tuple, list[Ikev1HashEvent]] = {}
    counts: dict[tuple, int] = {}
    for e in events:
        if isinstance(e, Ikev1HashEvent):
            mid = e.parts.get("M-ID")
            n = counts.get((e.peer, e.label, mid), 0)
            counts[(e.peer, e.label, mid)] = n + 1
            groups.setdefault((e.label, mid, n), []).append(e)
    return list(groups.values())


def peers_of(events: list[Event]) -> list[str]:
    return list(dict.fromkeys(e.peer for e in events if e.peer != "lab"))


def after(events: list[Event], seq: int, peer: str, wanted) -> Event | None:
    """The first event of `peer` after event `seq` that `wanted` accepts."""
    return next((e for e in events if e.seq > seq and e.peer == peer and wanted(e)), None)


def sent_in(events: list[Event], e: Ikev1HashEvent) -> Ikev1MessageEvent | None:
    """The message the sender put this value in: its next message sent."""
    return after(events, e.seq, e.peer, lambda m: isinstance(m, Ikev1MessageEvent) and m.direction == "sent")


def undecryptable(events: list[Event], peer: str, seq: int) -> Ikev1MessageEvent | None:
    """A message `peer` received after event `seq` and could not decrypt into payloads."""
    return after(events, seq, peer, lambda m: isinstance(m, Ikev1MessageEvent) and m.direction == "received"
                 and m.plaintext is None and m.protection.startswith("encrypted"))


def failure(events: list[Event], peer: str, seq: int) -> str | None:
    """Why `peer` gave up after event `seq`: its IKE SA's failure, else its first error."""
    failed = after(events, seq, peer, lambda e: isinstance(e, IkeSaEvent) and e.state == "failed")
    if failed is not None:
        return failed.reason
    error = after(events, seq, peer, lambda e: isinstance(e, NoteEvent) and e.level == "error")
    return error.text if error is not None else None


def ikev1_auth(events: list[Event]) -> Group:
    items = [(g[0].seq, g) for g in hash_checks(events)]
    items += [(e.seq, e) for e in events if isinstance(e, CertificateEvent)]
    parts = [Text(HEADING, "bold"), Text("")]
    peers = peers_of(events)
    for _, item in sorted(items, key=lambda pair: pair[0]):
        parts += certificate(item) if isinstance(item, CertificateEvent) else check(events, peers, item)
    return Group(*parts)


def check(events: list[Event], peers: list[str], group: list[Ikev1HashEvent]) -> list:
    first = group[0]
    sender = first.peer  # the sender computes its value before the receiver can check it
    receiver = next((p for p in peers if p != sender), "the peer")
    theirs = next((e for e in group if e.peer == receiver and e.action == "verified"), None) or next(
        (e for e in group if e.peer == receiver), None)
    why_not = failure(events, receiver, first.seq) if theirs is None else None
    # The verdict and its reason first: on a small terminal they are what must show without scrolling.
    out = [title(events, first, theirs, receiver)]
    if theirs is not None and theirs.ok is False:
        out += refused(events, first, theirs, receiver)
    elif why_not is not None:
        out.append(Text(f"✗ {receiver} never checked {first.label}: {why_not}", "bold red"))
        message = undecryptable(events, receiver, first.seq)
        if message is not None:
            out += key_chains(events, sender, receiver, message) + [Text("")]
    elif theirs is None:
        out.append(Text(f"{receiver} has not checked it yet.", "dim"))
    out.append(Text.assemble((first.formula, "bold"), (f"   {first.prf}", "dim")))
    out.append(inputs_table(first, theirs, receiver, checked=why_not is None))
    if theirs is not None and theirs.received is not None:
        out.append(Text(f"{first.label} received by {receiver}: {short(theirs.received)}", "dim"))
    return out + [Text("")]


def title(events: list[Event], first: Ikev1HashEvent, theirs: Ikev1HashEvent | None, receiver: str) -> Text:
    text = Text(first.label, "bold underline")
    message = sent_in(events, first)
    if message is not None:
        text.append(f"  in {message.label}, {first.peer} → {receiver}", "bold")
    if theirs is not None and theirs.action == "verified":
        text += Text(f"  {receiver} verified it: OK", "bold green") if theirs.ok else Text(f"  {receiver} verified it: MISMATCH", "bold red")
    elif theirs is not None:  # with certificates: the receiver's own HASH is what the signature must cover
        text += Text(f"  {receiver} computes it too, to check the signature over it", "dim")
    return text


def inputs_table(first: Ikev1HashEvent, theirs: Ikev1HashEvent | None, receiver: str, checked: bool) -> Table:
    """The key, each input and the result: the sender's beside the receiver's, each pair marked."""
    signature = first.label.startswith("SIG")
    if not checked:
        checker = f"{receiver} never checked it"
    elif theirs is not None and theirs.action == "computed":
        checker = f"{receiver} computes"
    else:
        checker = f"{receiver} {'verifies' if signature else 'expects'}"
    table = values_table("", f"{first.peer} {'signs' if signature else 'computes'}", checker)
    table.add_column("", no_wrap=True)
    rows = [("certificate's public key" if signature else first.key_label, first.key, theirs.key if theirs else None)]
    rows += [(name, value, theirs.parts.get(name) if theirs else None) for name, value in first.parts.items()]
    rows.append((f"{first.label} on the wire" if signature else f"= {first.label}", first.output, theirs.output if theirs else None))
    for name, mine, other in rows:
        table.add_row(name, short(mine), short(other), mark(mine, other))
    return table


def refused(events: list[Event], first: Ikev1HashEvent, theirs: Ikev1HashEvent, receiver: str) -> list:
    """Which inputs differ, and the reason the receiver gave when it refused."""
    differ = [first.key_label] if first.key != theirs.key else []
    differ += [name for name, value in first.parts.items() if theirs.parts.get(name) != value]
    text = Text(f"✗ {receiver} refused {first.label}", "bold red")
    if differ:
        text.append(f": the inputs differ in {', '.join(differ)}", "bold red")
    out = [text]
    reason = failure(events, receiver, theirs.seq)
    if reason is not None:
        out.append(Text(f"{receiver}: {reason}", "red"))
    return out


def latest(events: list[Event], peer: str, before: int, wanted) -> Event | None:
    """The last event of `peer` before event `before` that `wanted` accepts."""
    return next((e for e in reversed(events) if e.seq < before and e.peer == peer and wanted(e)), None)


def key_chains(events: list[Event], sender: str, receiver: str, message: Ikev1MessageEvent) -> list:
    """Why `message` did not decrypt: both sides' phase 1 keys up to Ka and the IV, side by side."""
    def prf(label):
        return lambda e: isinstance(e, PrfEvent) and e.label == label

    def value(peer: str, wanted, pick) -> bytes | None:
        e = latest(events, peer, message.seq, wanted)
        return pick(e) if e is not None else None

    skeyid = latest(events, sender, message.seq, prf("SKEYID"))
    key_name = "pre-shared key" if skeyid is not None and "pre-shared-key" in skeyid.formula else "key of SKEYID"
    rows = [
        (key_name, prf("SKEYID"), lambda e: e.key),
        ("SKEYID", prf("SKEYID"), lambda e: e.output),
        ("SKEYID_e", prf("SKEYID_e"), lambda e: e.output),
        ("Ka", lambda e: isinstance(e, PrfPlusEvent) and "Ka" in e.split, lambda e: e.split["Ka"]),
        ("IV", lambda e: isinstance(e, Ikev1IvEvent) and e.label == f"IV of {message.label}", lambda e: e.output),
    ]
    table = values_table("", sender, receiver)
    table.add_column("", no_wrap=True)
    first_difference = None
    iv_same = False
    for name, wanted, pick in rows:
        a, b = value(sender, wanted, pick), value(receiver, wanted, pick)
        table.add_row(name, short(a), short(b), mark(a, b))
        if a is not None and b is not None:
            if a != b and first_difference is None:
                first_difference = name
            iv_same = a == b if name.startswith("IV") else iv_same
    sent = next((m for m in events if isinstance(m, Ikev1MessageEvent) and m.peer == sender and m.direction == "sent" and m.data == message.data), None)
    note = after(events, message.seq, receiver, lambda n: isinstance(n, NoteEvent) and isinstance(n.detail.get("plaintext"), bytes))
    garbage = note.detail["plaintext"] if note is not None else None  # what the receiver's Ka made of the ciphertext
    table.add_row("plaintext", short(sent.plaintext if sent else None), short(garbage), mark(sent.plaintext if sent else None, garbage))
    out = [Text(f"Why {receiver} could not read {message.label}: the keys that encrypt it, on both sides", "bold"), table]
    if first_difference is not None:
        why = (f"The first value that differs is the {first_difference}: every key derived from it differs too, so {receiver} "
               f"decrypts {message.label} with another Ka than {sender} used and gets bytes that are no payloads; "
               f"{receiver} never sees the identity and the proof (HASH or SIG) inside.")
        if iv_same:
            why += " The IV is the same on both sides: it is hashed from g^xi | g^xr alone, which no secret enters."
        out.append(Text(why))
    return out


def certificate(e: CertificateEvent) -> list:
    verdict = Text("  valid", "bold green") if e.ok else Text(f"  REFUSED: {e.reason}", "bold red")
    out = [Text.assemble((f"{e.peer} checks the {e.of_role}'s certificate {e.subject}", "bold underline"), verdict)]
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    for c in e.checks:
        table.add_row(Text("✓", "green") if c["ok"] else Text("✗", "bold red"), c["name"], c["detail"])
    out.append(table)
    if e.chain:
        out.append(Text("chain: " + ", signed by ".join(e.chain), "dim"))
    return out + [Text("")]
