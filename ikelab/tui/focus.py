"""Which message a step is about: the arrows of the ladder and the one the screen opens at."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.trace import Event, MessageEvent

if TYPE_CHECKING:  # for annotations only: importing the session module loads the engines
    from ikelab.lab.session import Step


def wire_messages(events: list[Event]) -> list[MessageEvent]:
    """Every datagram a peer put on the wire, in order: one arrow each. A peer ikelab does not run
    (strongSwan) records nothing, so what ours received from it stands for its sending."""
    messages = [e for e in events if isinstance(e, MessageEvent)]
    sent = {e.data for e in messages if e.direction != "received"}
    return [e for e in messages if e.direction != "received" or e.data not in sent]


def sender(message: MessageEvent, lesson) -> str:
    """Who put the message on the wire."""
    if message.direction != "received":
        return message.peer
    return next(p.name for p in lesson.peers if p.name != message.peer)


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
        # IKEv1 has no requests and responses: its steps name the message ("Main Mode message 5").
        return message.label if message.ike_version == 1 else f"{message.exchange} {role(message)}"
    return step.kind if step is not None else None


def arrow_states(events: list[Event], steps: list[Step]) -> list[str]:
    """For each of `wire_messages(events)`: "delivered", "lost", "dropped" (it arrived and the
    receiver discarded it) or "in flight".

    The stepper carries datagrams first in, first out, one per "message" or "lost" step, so the
    n-th such step carried the n-th datagram sent.
    """
    if any(s.kind == "sent" for s in steps):
        # Against a peer ikelab does not run the datagrams go out on their own: what the other
        # side made of them shows only in what comes back.
        return ["delivered"] * len(wire_messages(events))
    carried = [s for s in steps if s.kind in ("message", "lost")]
    states = []
    for i, _ in enumerate(wire_messages(events)):
        if i >= len(carried):
            states.append("in flight")
        elif carried[i].kind == "lost":
            states.append("lost")
        else:
            step = carried[i]
            received = any(isinstance(e, MessageEvent) and e.direction == "received" for e in events[step.first_event : step.last_event])
            states.append("delivered" if received else "dropped")
    return states
