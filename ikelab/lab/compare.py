"""IKEv1 against IKEv2, counted from runs: how many messages and round trips each needs before
the first Child SA can carry traffic, and how many bytes cross the wire."""

from __future__ import annotations

from dataclasses import dataclass

from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Lesson, load_lesson
from ikelab.trace import ChildSaEvent, Event, IkeSaEvent, MessageEvent

SLUGS = ("ikev2-psk", "ikev1-main-psk", "ikev1-aggressive-psk")


@dataclass(frozen=True)
class Count:
    lesson: str
    protocol: str
    messages: int
    round_trips: float
    bytes: int


def count(lesson: Lesson, seed: int = 1) -> Count:
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=seed)
    session.run()
    if not (session.outcome.success and all(session.outcome.children.values())):
        raise RuntimeError(f"{lesson.slug} did not set up its Child SA: nothing to compare")
    p = profile(lesson, session.trace.events)
    protocol = "IKEv2" if lesson.ike_version == 2 else f"IKEv1 {lesson.mode} mode + quick mode"
    return Count(lesson.slug, protocol, p.messages, p.messages / 2, p.bytes)


def table(counts: list[Count]) -> str:
    lines = [f"{'lesson':22} {'protocol':34} {'messages':>8} {'round trips':>11} {'bytes':>6}"]
    for c in counts:
        lines.append(f"{c.lesson:22} {c.protocol:34} {c.messages:>8} {c.round_trips:>11g} {c.bytes:>6}")
    lines.append("")
    lines.append("Counted from the runs above (memory transport, seed 1), up to the first Child SA able to carry")
    lines.append("traffic. On paper: L2TP/IPsec adds L2TP's own control exchange and PPP on top of an IKEv1 or")
    lines.append("IKEv2 SA; WireGuard needs one round trip (two messages, Noise IK); OpenVPN runs a TLS handshake")
    lines.append("inside its own reliability layer, several round trips.")
    return "\n".join(lines)


def compare() -> list[Count]:
    return [count(load_lesson(slug)) for slug in SLUGS]


# ---------------------------------------------------------------------- side by side (a `compare` lesson)

PROTOCOL_NAMES = {"ikev2": "IKEv2", "ikev1-main": "IKEv1 main + quick mode", "ikev1-aggressive": "IKEv1 aggressive + quick mode"}


def protocol_name(lesson: Lesson) -> str:
    if lesson.ike_version == 2:
        return PROTOCOL_NAMES["ikev2"]
    return PROTOCOL_NAMES[f"ikev1-{lesson.mode}"]


def message_label(message: MessageEvent) -> str:
    """"IKE_AUTH response", "Main Mode message 5": what a lesson's `match` names."""
    if message.ike_version == 1:
        return message.label
    return f"{message.exchange} {'response' if message.is_response else 'request'}"


@dataclass(frozen=True)
class Profile:
    """One run as far as its trace goes: what crossed the wire, and after which message
    (counted from 1, first transmissions only) each milestone held on both peers: for each peer,
    the last message it had sent or received when it got there."""

    protocol: str
    labels: tuple[str, ...]  # of each message on the wire
    sizes: tuple[int, ...]  # UDP payload bytes of each
    encrypted: tuple[int, ...]  # numbers of the messages sent encrypted
    identities: tuple[tuple[int, bool], ...]  # (number, encrypted) of the messages carrying a peer's identity
    ike_sa_after: int | None  # both peers have the IKE (ISAKMP) SA; None: not yet
    child_sa_after: int | None  # both peers have installed the first Child SA (IPsec SAs)

    @property
    def messages(self) -> int:
        return len(self.labels)

    @property
    def bytes(self) -> int:
        return sum(self.sizes)


# Payloads naming a peer; IKEv1 quick mode's Identification payloads are proxy IDs (the networks).
IDENTITY_PAYLOADS = ("IDi payload", "IDr payload", "Identification payload")


def profile(lesson: Lesson, events: list[Event]) -> Profile:
    sent: list[MessageEvent] = []
    numbers: dict[bytes, int] = {}  # a datagram's bytes -> its number on the wire
    last: dict[str, int] = {}  # peer -> number of the last message it sent or received
    first: dict[type, dict[str, int]] = {IkeSaEvent: {}, ChildSaEvent: {}}  # peer -> `last` at its milestone
    for e in events:
        if isinstance(e, MessageEvent) and e.direction == "sent":
            sent.append(e)
            last[e.peer] = numbers.setdefault(e.data, len(sent))
        elif isinstance(e, MessageEvent) and e.direction == "received" and e.data in numbers:
            last[e.peer] = numbers[e.data]
        elif isinstance(e, IkeSaEvent) and e.state == "established" or isinstance(e, ChildSaEvent) and e.action == "installed":
            first[type(e)].setdefault(e.peer, last.get(e.peer, 0))
    peers = [p.name for p in lesson.peers]

    def after(milestones: dict[str, int]) -> int | None:
        return max(milestones[p] for p in peers) if all(p in milestones for p in peers) else None

    identities = []
    for number, m in enumerate(sent, start=1):
        if m.exchange == "Quick Mode":
            continue
        payloads = [f.name for f in (m.inner_tree or [])] + [f.name for f in m.tree.children]
        if any(name in IDENTITY_PAYLOADS for name in payloads):
            identities.append((number, m.plaintext is not None))
    return Profile(
        protocol=protocol_name(lesson),
        labels=tuple(message_label(m) for m in sent),
        sizes=tuple(len(m.data) for m in sent),
        encrypted=tuple(n for n, m in enumerate(sent, start=1) if m.plaintext is not None),
        identities=tuple(identities),
        ike_sa_after=after(first[IkeSaEvent]),
        child_sa_after=after(first[ChildSaEvent]),
    )


def _numbers(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _milestone(p: Profile, after: int | None) -> str:
    if after is None:
        return "not yet"
    return f"after message {after} ({p.labels[after - 1]})" if after else "before any message"


def _identities(p: Profile) -> str:
    if not p.identities:
        return "not yet"
    parts = []
    for encrypted in (False, True):
        numbers = [n for n, e in p.identities if e == encrypted]
        if numbers:
            parts.append(f"{'message' if len(numbers) == 1 else 'messages'} {_numbers(numbers)}: "
                         + ("encrypted" if encrypted else "in the clear"))
    return "; ".join(parts)


def side_by_side_rows(profiles: list[Profile]) -> list[tuple[str, ...]]:
    """The comparison table: a row label, then one value per run, every value from its trace."""
    rows = [
        ("", *(p.protocol for p in profiles)),
        ("messages on the wire", *(str(p.messages) for p in profiles)),
        ("round trips", *(f"{p.messages / 2:g}" for p in profiles)),
        ("bytes (UDP payloads)", *(str(p.bytes) for p in profiles)),
        ("sent encrypted", *(f"{_numbers(list(p.encrypted)) or 'none'} ({len(p.encrypted)} of {p.messages})" for p in profiles)),
        ("identities sent in", *(_identities(p) for p in profiles)),
        ("IKE SA up on both sides", *(_milestone(p, p.ike_sa_after) for p in profiles)),
        ("Child SA on both sides", *(_milestone(p, p.child_sa_after) for p in profiles)),
    ]
    return rows


def run_variant(lesson: Lesson, transport: str, seed: int | None) -> Session:
    """Run one side of a comparison to the end: in its own namespace lab, over loopback or in memory."""
    from ikelab.lab.runs import new_session, plain_transport

    if transport == "netns":
        from ikelab.lab.lab import Lab

        with Lab(lesson) as lab:
            session = new_session(lesson, seed, lab=lab)
            session.run()
        return session
    wire = plain_transport(lesson, transport)
    try:
        session = new_session(lesson, seed, transport=wire)
        session.run()
    finally:
        wire.close()
    return session


def side_by_side_text(sessions: list[Session]) -> str:
    """What `ikelab run <compare lesson> --headless` prints: each run's messages, then the table."""
    lines = []
    for session in sessions:
        p = profile(session.lesson, session.trace.events)
        lines.append(f"{p.protocol}: {p.messages} messages")
        sent = [e for e in session.trace.of(MessageEvent) if e.direction == "sent"]
        for number, m in enumerate(sent, start=1):
            arrow = "->" if m.peer == session.lesson.left.name else "<-"
            clear = "encrypted" if m.plaintext is not None else "clear"
            lines.append(f"  {number:>2} {arrow} {message_label(m):22} {len(m.data):>4} bytes {clear:9}  {m.summary}")
        lines.append("")
    rows = side_by_side_rows([profile(s.lesson, s.trace.events) for s in sessions])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    lines.append("")
    lines.append("Every figure is counted from the two runs' traces above: messages and bytes as first sent")
    lines.append("(no retransmissions), milestones after the message at which both peers had them.")
    return "\n".join(lines)
