"""IKEv1 against IKEv2, counted from runs: how many messages and round trips each needs before
the first Child SA can carry traffic, and how many bytes cross the wire."""

from __future__ import annotations

from dataclasses import dataclass

from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Lesson, load_lesson
from ikelab.trace import MessageEvent

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
    sent = [e for e in session.trace.of(MessageEvent) if e.direction == "sent"]
    protocol = "IKEv2" if lesson.ike_version == 2 else f"IKEv1 {lesson.mode} mode + quick mode"
    return Count(lesson.slug, protocol, len(sent), len(sent) / 2, sum(len(e.data) for e in sent))


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
