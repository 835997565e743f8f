"""The stepper: runs two peers message by message and pauses between steps.

A step is one datagram carried by the transport and processed by the peer it reached (or a
retransmission timer firing). The engines run on a virtual clock: a pause never fires a
retransmission by accident, and with a seed the whole run is byte-for-byte repeatable, so stepping
back is replaying to the step before.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

from ikelab.effects import DeleteChildSa, IkeSaFailed, IkeSaUp, InstallChildSa, NatKeepalive, Send
from ikelab.esp.sa import ChildSa
from ikelab.ikev2.config import Ikev2Config, RetransmitPolicy
from ikelab.ikev2.engine import Ikev2Peer
from ikelab.lab.transports import Transport
from ikelab.lessons import Lesson, PeerSpec
from ikelab.rng import RandomSource, SeededRandom, SystemRandom
from ikelab.lab import xfrm
from ikelab.lab.credentials import Credentials, issue_credentials
from ikelab.lab.datapath import KernelXfrm, command_text
from ikelab.trace import CommandEvent, DeferredList, NoteEvent, Trace

HOP_TIME = 0.001  # virtual seconds a datagram spends between the peers


def peer_config(spec: PeerSpec, credentials: Credentials | None = None) -> Ikev2Config:
    if credentials is None:
        return _config_without_credentials(spec)
    return _config(spec, credentials.config_fields())


@lru_cache(maxsize=64)
def _config_without_credentials(spec: PeerSpec) -> Ikev2Config:
    """Made once per peer of a lesson: both are frozen, and every run of a lesson (stepping back
    replays one) would build the same configuration again, some 40k instructions of field setting."""
    return _config(spec, {})


def _config(spec: PeerSpec, pki: dict) -> Ikev2Config:
    return Ikev2Config(
        name=spec.name,
        local_id=spec.identity,
        remote_id=spec.remote_identity,
        psk=spec.psk,
        ike_proposals=spec.ike,
        esp_proposals=spec.esp,
        local_ts=spec.local_ts,
        remote_ts=spec.remote_ts,
        rekey_child_after=spec.rekey_child_after,
        rekey_ike_after=spec.rekey_ike_after,
        liveness_every=spec.liveness_every,
        nat_keepalive_every=spec.nat_keepalive_every,
        cookie_threshold=spec.cookie_threshold,
        force_encap=spec.encap,
        ike_port=spec.port,
        fragmentation=spec.fragmentation,
        fragment_size=spec.fragment_size,
        **pki,
    )


@dataclass
class Step:
    index: int
    kind: str  # "start", "message", "lost", "timer", "keepalive"
    label: str  # "right received IKE_SA_INIT request"
    first_event: int  # trace events [first_event, last_event) belong to this step
    last_event: int


@dataclass
class Outcome:
    ike_up: dict[str, bool] = field(default_factory=dict)
    failures: dict[str, IkeSaFailed] = field(default_factory=dict)
    children: dict[str, list[ChildSa]] = field(default_factory=dict)

    manual: bool = False  # static SAs: success means both sides have them

    @property
    def success(self) -> bool:
        if self.manual:
            return bool(self.children) and all(self.children.values())
        return bool(self.ike_up) and all(self.ike_up.values()) and not self.failures


def install_child(trace: Trace, clock: float, datapath, namespaces: dict[str, str], peer: str, child: ChildSa) -> None:
    """Hand a Child SA to the datapath and show the `ip xfrm` commands that install it in a kernel."""
    namespace = namespaces.get(peer)
    # Shown, never run here: written when first read (the ChildSa and its keys are immutable).
    equivalent = DeferredList(lambda: [command_text(c) for c in xfrm.child_sa_commands(namespace, child)])
    if datapath is None:
        trace.emit(CommandEvent(peer, clock, f"install Child SA {child.name} in a kernel (this transport has no datapath)", equivalent, False))
        return
    executed = datapath.install(peer, child)
    trace.emit(CommandEvent(peer, clock, f"install Child SA {child.name}: {datapath.name}", executed, True))
    if not isinstance(datapath, KernelXfrm):
        trace.emit(CommandEvent(peer, clock, "the same Child SA in the kernel (ip xfrm), for reference", equivalent, False))


class Session:
    def __init__(self, lesson: Lesson, transport: Transport, seed: int | None = None, datapath=None,
                 namespaces: dict[str, str] | None = None, sides: list[str] | None = None,
                 credentials: dict | None = None) -> None:
        self.lesson = lesson
        self.transport = transport
        self.datapath = datapath  # installs Child SAs for real (the lab), or None
        self.namespaces = namespaces or {}
        self.seed = seed
        self.trace = Trace()
        self.clock = 0.0
        self.steps: list[Step] = []
        self.outcome = Outcome()
        self._queue: deque[Send] = deque()
        self.peers: dict[str, Ikev2Peer] = {}
        # A lab with a strongSwan side issued them already: both sides must share the lab CA.
        credentials = credentials or issue_credentials(lesson, seed)
        for spec in lesson.peers:
            if spec.implementation != "ikelab" or (sides is not None and spec.name not in sides):
                continue
            rng: RandomSource = SeededRandom(seed, spec.name) if seed is not None else SystemRandom()
            endpoint = transport.endpoint(spec.name)
            if lesson.ike_version == 1:
                # Imported here: an IKEv2 run has no use for a tenth of a second of IKEv1 imports.
                from ikelab.ikev1.config import config_for as ikev1_config_for
                from ikelab.ikev1.engine import Ikev1Peer

                config = dataclasses.replace(ikev1_config_for(spec, lesson.mode, credentials.get(spec.name)), force_encap=spec.encap)
                self.peers[spec.name] = Ikev1Peer(config, rng, self.trace, endpoint)
            else:
                config = peer_config(spec, credentials.get(spec.name))
                self.peers[spec.name] = Ikev2Peer(config, rng, self.trace, endpoint)
                self.peers[spec.name].prepare()  # its first DH key pair, off the handshake's path
            self.outcome.children[spec.name] = []
        self._started = False
        self.until = lesson.duration  # timers and actions up to this clock are part of the run
        self._actions = sorted((a.at, a.peer, a.do) for a in lesson.actions)

    # -------------------------------------------------------------- stepping

    @property
    def finished(self) -> bool:
        return self._started and not self._queue and self._next_due() is None

    def act(self, peer: str, action: str) -> None:
        """Start an exchange now (rekey, delete, liveness...), as a lesson action or the TUI asks."""
        self._apply(peer, self.peers[peer].act(action, self.clock))

    def step(self) -> Step | None:
        """Advance by one step; None when the run is over."""
        first = len(self.trace.events)  # the list's len: Trace.__len__ is a Python call
        if not self._started:
            self._started = True
            initiator = self.lesson.initiator.name
            responder = self.transport.endpoint(self.lesson.responder.name)
            if self.lesson.flood:
                self._flood(initiator, responder)
            self._apply(initiator, self.peers[initiator].initiate(responder, self.clock))
            return self._record("start", f"{initiator} starts {self._first_exchange()}", first)
        if self._queue:
            send = self._queue.popleft()
            self.clock += HOP_TIME
            delivery = self.transport.carry(send)
            # A NAT keepalive is no IKE message: its own kind keeps "message" steps one per IKE datagram.
            keepalive = isinstance(send, NatKeepalive)
            if delivery is None:
                self.trace.emit(NoteEvent("lab", self.clock, "warning", f"{send.label} from {send.src} to {send.dst} was lost"))
                return self._record("keepalive" if keepalive else "lost", f"{send.label} lost", first)
            receiver = delivery.receiver
            self._apply(receiver, self.peers[receiver].receive(delivery.data, delivery.src, delivery.dst, self.clock))
            return self._record("keepalive" if keepalive else "message", f"{receiver} received {send.label}", first)
        deadline = self._next_due()
        if deadline is None:
            return None
        self.clock = max(self.clock, deadline)
        labels = []
        while self._actions and self._actions[0][0] <= self.clock:
            _, name, action = self._actions.pop(0)
            labels.append(f"{name}: {action}")
            self.act(name, action)
        for name, peer in self.peers.items():
            if peer.next_timer() is not None and peer.next_timer() <= self.clock:
                labels.append(f"{name}: timer")
                self._apply(name, peer.on_timer(self.clock))
        return self._record("timer", f"at {self.clock:.3f} s: " + ", ".join(labels), first)

    def run(self, max_steps: int = 10000) -> Outcome:
        for _ in range(max_steps):
            if self.step() is None:
                break
        return self.outcome

    def run_live(self, stop, tick: float = 0.02) -> None:
        """Follow the wall clock until `stop` (a threading.Event) is set: timers and lesson actions fire
        at their real times while something else (the ping) runs; used by the lab after the handshake."""
        start_wall, start_clock = time.monotonic(), self.clock
        while not stop.is_set():
            self.until = max(self.until, start_clock + time.monotonic() - start_wall)
            while self.step() is not None:
                pass
            stop.wait(tick)

    # -------------------------------------------------------------- internals

    def _first_exchange(self) -> str:
        if self.lesson.ike_version == 1:
            return f"{self.lesson.mode.capitalize()} Mode"
        return "IKE_SA_INIT"

    def _flood(self, initiator: str, responder) -> None:
        """Half-open IKE_SA_INIT requests from the initiator's address that never continue, the
        way a flood looks to a responder: each one costs it a DH computation and state."""
        spec = next(p for p in self.lesson.peers if p.name == initiator)
        config = dataclasses.replace(peer_config(spec), name="flood", retransmit=RetransmitPolicy(tries=0))
        rng: RandomSource = SeededRandom(self.seed, "flood") if self.seed is not None else SystemRandom()
        flooder = Ikev2Peer(config, rng, self.trace, self.transport.endpoint(initiator))
        self.trace.emit(NoteEvent("lab", self.clock, "warning", f"flood: {self.lesson.flood} IKE_SA_INIT requests that will never continue"))
        for _ in range(self.lesson.flood):
            for effect in flooder.initiate(responder, self.clock):
                if isinstance(effect, Send):
                    self._queue.append(effect)

    def _next_due(self) -> float | None:
        """The next timer or lesson action that belongs to the run: retransmissions always do (a
        request is waiting), rekeys, liveness checks and actions only up to `until`."""
        nearest = self._actions[0][0] if self._actions else None
        waiting = False
        for peer in self.peers.values():  # plain loops, as next_timer
            due = peer.next_timer()
            if due is not None and (nearest is None or due < nearest):
                nearest = due
            waiting = waiting or peer.busy()
        if nearest is None:
            return None
        return nearest if waiting or nearest <= self.until else None

    def _record(self, kind: str, label: str, first: int) -> Step:
        if not self._queue and self.datapath is not None:
            # The datapath takes Child SAs without waiting (off the critical path of the response that
            # follows an install); before the run pauses, every install is confirmed.
            self.datapath.settle()
        step = Step(len(self.steps), kind, label, first, len(self.trace.events))
        self.steps.append(step)
        return step

    def _install(self, peer: str, child: ChildSa) -> None:
        install_child(self.trace, self.clock, self.datapath, self.namespaces, peer, child)

    def _apply(self, peer: str, effects: list) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._queue.append(effect)
            elif isinstance(effect, InstallChildSa):
                self.outcome.children[peer].append(effect.child)
                self._install(peer, effect.child)
            elif isinstance(effect, DeleteChildSa):
                if effect.child in self.outcome.children[peer]:
                    self.outcome.children[peer].remove(effect.child)
                if self.datapath is not None:
                    self.datapath.remove(peer, effect.child)
            elif isinstance(effect, IkeSaUp):
                self.outcome.ike_up[peer] = True
            elif isinstance(effect, IkeSaFailed):
                self.outcome.ike_up[peer] = False
                self.outcome.failures[peer] = effect
