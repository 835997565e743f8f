"""Which message a step is about: the arrows of the ladder and the one the screen opens at."""

from __future__ import annotations

from ikelab.lab.session import Step
from ikelab.trace import Event, MessageEvent


def wire_messages(events: list[Event]) -> list[MessageEvent]:
    """Every datagram a peer put on the wire, in order: one arrow each."""
    return [e for e in events if isinstance(e, MessageEvent) and e.direction in ("sent", "retransmitted")]


def role(message: MessageEvent) -> str:
    return "response" if message.is_response else "request"


def focus_message(events: list[Event], step: Step | None) -> MessageEvent | None:
    """The message the step ends on: the one it sent (now in flight), else the one it delivered."""
    if step is None:
        return None
    in_step = [e for e in events[step.first_event : step.last_event] if isinstance(e, MessageEvent)]
    sent = [e for e in in_step if e.direction != "received"]
    if sent:
        return sent[-1]
    if in_step:
        # The ladder draws the sender's copy; the receiver's carries the same bytes.
        return next((m for m in reversed(wire_messages(events)) if m.data == in_step[-1].data), None)
    return None


def narrative_key(message: MessageEvent | None, step: Step | None) -> str | None:
    """What a lesson's `match` names for this step: "IKE_SA_INIT request", "install", ..."""
    if message is not None:
        return f"{message.exchange} {role(message)}"
    return step.kind if step is not None else None


def delivered(events: list[Event]) -> set[bytes]:
    """The bytes of every datagram that reached its peer: the other arrows are in flight or lost."""
    return {e.data for e in events if isinstance(e, MessageEvent) and e.direction == "received"}
