"""One ikelab peer against an implementation ikelab does not drive (strongSwan in the lab, or any
IKE peer at an address): real UDP both ways, on the wall clock, because the other side keeps its
own time and retransmits on it.

The other side's messages still appear in the trace, decoded and decrypted with the keys our
side holds, as the messages our peer received.
"""

from __future__ import annotations

import time
from typing import Callable

from ikelab.effects import Endpoint, NatKeepalive
from ikelab.esp.udp_encap import KEEPALIVE
from ikelab.lab.session import Session, Step
from ikelab.lab.transports import IKE_PORT
from ikelab.trace import NoteEvent

IDLE_END = 1.5  # seconds without traffic or due timers after which a settled run is over
# A settled run is also over this long after it settled, busy or not: a peer that checks liveness
# more often than IDLE_END would otherwise keep it going for ever. run_live is for what comes after.
SETTLED_END = 5.0
WAIT = 0.2


class PeerSession(Session):
    def __init__(self, lesson, transport, *, ours: str, remote: Endpoint | None = None,
                 start_remote: Callable[[], None] | None = None, act_remote: Callable[[str], None] | None = None,
                 **kwargs) -> None:
        super().__init__(lesson, transport, sides=[ours], **kwargs)
        self.ours = ours
        other = next(p for p in lesson.peers if p.name != ours)
        self.remote = remote or Endpoint(other.address, IKE_PORT)
        self.start_remote = start_remote  # makes the other side initiate (swanctl --initiate)
        self.act_remote = act_remote  # the lesson's actions for the other side ("rekey-child": swanctl --rekey)
        self._t0 = time.monotonic()
        self._last_activity = self._t0
        self._settled_at: float | None = None
        self._live = None  # run_live's stop event while it runs: the clock's horizon follows the wall clock

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def step(self) -> Step | None:
        first = len(self.trace)
        peer = self.peers[self.ours]
        self.clock = max(self.clock, self._now())
        if not self._started:
            self._started = True
            if next(p for p in self.lesson.peers if p.name == self.ours).role == "initiator":
                self._apply(self.ours, peer.initiate(self.remote, self.clock))
                return self._record("start", f"{self.ours} starts {self._first_exchange()}", first)
            self.trace.emit(NoteEvent("lab", self.clock, "info", f"{self.remote.host} initiates; {self.ours} responds"))
            if self.start_remote is not None:
                self.start_remote()
            return self._record("start", "the other peer starts", first)
        while True:
            self.clock = max(self.clock, self._now())
            if self._live is not None:
                if self._live.is_set():
                    return None
                self.until = max(self.until, self.clock)  # timers and actions fire when they are due
            if self._queue:
                send = self._queue.popleft()
                self.transport.send(send)
                if not isinstance(send, NatKeepalive):  # keepalives go on forever: they are no activity
                    self._last_activity = time.monotonic()
                return self._record("sent", f"{self.ours} sent {send.label}", first)
            # What arrived while we paused comes before our timers: a response that is already
            # here must not be retransmitted for.
            due = self._next_due()
            wait = WAIT if due is None else max(0.0, min(WAIT, due - self.clock))
            delivery = self.transport.receive(timeout=0) or (
                None if due is not None and due <= self.clock else self.transport.receive(timeout=wait))
            if delivery is None and due is not None and due <= self._now():
                self.clock = max(self.clock, self._now())
                self._due_actions()
                self._apply(self.ours, peer.on_timer(self.clock))
                return self._record("timer", f"timer at {self.clock:.3f} s", first)
            if delivery is not None:
                self.clock = max(self.clock, self._now())
                if delivery.data != KEEPALIVE:
                    self._last_activity = time.monotonic()
                self._apply(self.ours, peer.receive(delivery.data, delivery.src, delivery.dst, self.clock))
                return self._record("message", f"{self.ours} received a datagram from {delivery.src}", first)
            idle = time.monotonic() - self._last_activity
            settled = not peer.busy() and (self.outcome.ike_up or self.outcome.failures)
            if settled and idle >= IDLE_END and due is None:
                return None
            if self.outcome.ike_up or self.outcome.failures:
                self._settled_at = self._settled_at or time.monotonic()
                if self._live is None and time.monotonic() - self._settled_at >= SETTLED_END and due is None:
                    return None
            if idle >= 15.0:
                self.trace.emit(NoteEvent("lab", self.clock, "warning", "nothing happened for 15 s: giving up"))
                return None

    def _due_actions(self) -> None:
        """The lesson's actions that are due: ours go to our engine, the other side's to act_remote."""
        while self._actions and self._actions[0][0] <= self.clock:
            _, name, action = self._actions.pop(0)
            if name == self.ours:
                self.act(name, action)
            elif self.act_remote is not None:
                self.trace.emit(NoteEvent("lab", self.clock, "info", f"{name} is asked to {action}"))
                self.act_remote(action)
            else:
                self.trace.emit(NoteEvent("lab", self.clock, "warning", f"cannot make {name} {action}: the lab does not drive it"))

    def run_live(self, stop, tick: float = 0.02) -> None:
        """Keep answering the other side (its rekeys, liveness checks) until `stop` is set."""
        self._live = stop
        try:
            while not stop.is_set():
                self.until = max(self.until, self._now())
                self._last_activity = time.monotonic()
                self.step()
        finally:
            self._live = None


def strongswan_session(lesson, lab, seed: int | None) -> PeerSession:
    """Our side against the strongSwan side the lab runs: we answer, or start, the exchange."""
    import threading

    from ikelab.lab.netns import LabError

    ours = next(p.name for p in lesson.peers if p.implementation == "ikelab")
    theirs = lesson.external[0]
    session: PeerSession | None = None

    def start_remote() -> None:
        def initiate() -> None:
            try:
                lab.charons[theirs.name].initiate()
            except LabError as e:
                session.trace.emit(NoteEvent(theirs.name, session.clock, "error", f"strongSwan: {e}"))

        threading.Thread(target=initiate, name="swanctl-initiate", daemon=True).start()

    def act_remote(action: str) -> None:
        # In a thread: swanctl waits for the exchange, which needs our answers.
        def run() -> None:
            try:
                lab.charons[theirs.name].act(action)
            except LabError as e:
                session.trace.emit(NoteEvent(theirs.name, session.clock, "error", f"strongSwan: {e}"))

        threading.Thread(target=run, name=f"swanctl-{action}", daemon=True).start()

    session = PeerSession(lesson, lab.transport, ours=ours, start_remote=start_remote, act_remote=act_remote, seed=seed,
                          datapath=lab.datapath, namespaces=lab.namespaces, credentials=lab.credentials)
    return session
