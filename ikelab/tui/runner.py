"""The run behind a lesson screen: a lesson's peers on a transport, stepped on demand.

Going back is replaying: with the seed, a fresh Session stepped k-1 times is byte for byte the run
that was on screen one step earlier.

Every job runs on one thread the Runner owns, alive until `close()`: the lab's ESP workers die
with the thread that started them (PR_SET_PDEATHSIG), so they must not be started from a pooled
worker thread that may end first. One thread also keeps the jobs in order, so `close()` (on every
exit path, from any thread) waits for a step or a ping in flight instead of racing it, and
nothing is set up after a close.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ikelab.lessons import Lesson
from ikelab.trace import CommandEvent, NoteEvent, PingEvent, Trace

# The engines and the lab are imported on the run's thread when the run opens, so loading them
# does not delay the first screen.
if TYPE_CHECKING:
    from ikelab.lab.lab import Lab
    from ikelab.lab.manual import ManualSession
    from ikelab.lab.session import Session, Step

PING_COUNT = 5
T = TypeVar("T")


@dataclass(frozen=True)
class TransportChoice:
    name: str  # "netns", "loopback" or "memory"
    lab_unavailable: str | None = None  # why the lab could not be used, for the banner


class TransportUnavailable(Exception):
    """The transport asked for cannot run here; str() says why."""


def choose_transport(requested: str | None) -> TransportChoice:
    """The lab where it can start, else loopback with the reason; an explicit choice is kept."""
    from ikelab.lab.lab import missing_privileges

    if requested in ("memory", "loopback"):
        return TransportChoice(requested)
    problem = missing_privileges()
    if problem is None:
        return TransportChoice("netns")
    if requested == "netns":
        raise TransportUnavailable(f"the lab cannot start: {problem}")
    return TransportChoice("loopback", problem)


class ManualStepper:
    """A manually keyed lesson as a one-step run, so the screen treats both kinds alike."""

    def __init__(self, session: ManualSession) -> None:
        self.session = session
        self.trace: Trace = session.trace
        self.outcome = session.outcome
        self.steps: list[Step] = []

    @property
    def finished(self) -> bool:
        return bool(self.steps)

    @property
    def clock(self) -> float:
        return self.session.clock

    def step(self) -> Step | None:
        from ikelab.lab.session import Step

        if self.steps:
            return None
        first = len(self.trace)
        self.session.run()
        self.steps.append(Step(0, "install", "both sides install the static SAs", first, len(self.trace)))
        return self.steps[-1]


class Runner:
    def __init__(self, lesson: Lesson, seed: int | None, transport: TransportChoice) -> None:
        self.lesson = lesson
        self.seed_given = seed is not None
        # Without a seed the run is still seeded (randomly), so going back can replay it.
        self.seed = seed if seed is not None else secrets.randbelow(1_000_000)
        self.transport_choice = transport
        self.lab: Lab | None = None
        self.session: Session | ManualStepper | None = None
        self._transport = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ikelab-run")
        self._closing = threading.Lock()
        self._closed = False

    def _on_thread(self, job: Callable[[], T]) -> T | None:
        """Run `job` on the run's own thread and wait for it; nothing runs once closed."""
        with self._closing:
            if self._closed:
                return None
            future = self._thread.submit(job)
        return future.result()

    # ------------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Make the transport (in the lab: namespaces, veth, datapath) and the first session."""
        self._on_thread(self._open)

    def _open(self) -> None:
        from ikelab.lab.lab import Lab
        from ikelab.lab.transports import LoopbackTransport, MemoryTransport

        name = self.transport_choice.name
        if name == "netns":
            lab = Lab(self.lesson)
            lab.__enter__()
            self.lab, self._transport = lab, lab.transport
        elif name == "loopback":
            self._transport = LoopbackTransport([p.name for p in self.lesson.peers])
        else:
            self._transport = MemoryTransport.for_lesson(self.lesson)
        self._new_session()

    def close(self) -> None:
        """Tear everything down; safe to call twice, and from any thread."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            future = self._thread.submit(self._teardown)
        try:
            future.result()
        finally:
            self._thread.shutdown()

    def _teardown(self) -> None:
        lab, self.lab = self.lab, None
        if lab is not None:
            try:
                lab.close()
            finally:
                lab.topology.down()  # should the datapath fail to stop, the namespaces must still go
        elif self._transport is not None:
            self._transport.close()
        self._transport = None

    # ------------------------------------------------------------------ stepping

    @property
    def steps(self) -> list[Step]:
        return self.session.steps if self.session else []

    @property
    def finished(self) -> bool:
        return self.session is not None and self.session.finished

    def step(self) -> Step | None:
        return self._on_thread(lambda: self.session.step() if self.session else None)

    def run_to_end(self, max_steps: int = 1000) -> None:
        def run() -> None:
            for _ in range(max_steps):
                if self.session is None or self.session.step() is None:
                    return

        self._on_thread(run)

    def back(self) -> None:
        """Replay from the seed to the step before the current one."""
        def replay() -> None:
            if self.session is None:
                return
            target = len(self.session.steps) - 1
            self._new_session()
            for _ in range(max(target, 0)):
                self.session.step()

        self._on_thread(replay)

    def restart(self) -> None:
        self._on_thread(lambda: self._new_session() if self.session else None)

    def _new_session(self) -> None:
        from ikelab.lab.manual import ManualSession
        from ikelab.lab.session import Session

        if self.session is not None and self.lab is not None:
            # The replay installs the same Child SAs again: take the previous run's out first.
            for peer, children in self.session.outcome.children.items():
                for child in children:
                    self.lab.datapath.remove(peer, child)
        lab = self.lab
        datapath = lab.datapath if lab else None
        namespaces = lab.namespaces if lab else None
        if self.lesson.manual:
            session = ManualStepper(ManualSession(self.lesson, datapath=datapath, namespaces=namespaces))
        elif self.lesson.external and lab is not None:
            from ikelab.lab.peer_session import strongswan_session

            session = strongswan_session(self.lesson, lab, self.seed)
        else:
            session = Session(self.lesson, self._transport, seed=self.seed, datapath=datapath, namespaces=namespaces)
        if lab is not None:
            session.trace.emit(CommandEvent("lab", 0.0, "build the lab: two namespaces joined by a veth pair", list(lab.commands), True))
            session.trace.emit(NoteEvent("lab", 0.0, "info", f"datapath: {lab.datapath.name} ({lab.datapath.reason})"))
        self.session = session

    # ------------------------------------------------------------------ the ping stage

    @property
    def ping_ready(self) -> bool:
        """The lab is up and both sides have their Child SAs."""
        outcome = self.session.outcome if self.session else None
        return self.lab is not None and self.finished and outcome.success and all(outcome.children.values())

    def ping(self, on_line: Callable[[str], None], count: int = PING_COUNT) -> None:
        """Real pings through the tunnel; each line becomes a PingEvent with both sides' ESP counters."""
        def ping() -> None:
            if not self.ping_ready:
                return
            lab, session = self.lab, self.session
            trace, clock = session.trace, session.clock

            def line(text: str) -> None:
                counters = {side: lab.datapath.counters(side) for side in lab.namespaces}
                trace.emit(PingEvent("lab", clock, text, counters))
                on_line(text)

            result = self._ping_while_live(lambda: lab.ping(count, line))
            level = "info" if result.received == result.transmitted else "warning"
            trace.emit(NoteEvent("lab", clock, level, f"ping: {result.received} of {result.transmitted} replies through the tunnel"))

        self._on_thread(ping)

    def _ping_while_live(self, ping: Callable[[], T]) -> T:
        """Meanwhile the session follows the wall clock, so the lesson's rekeys and actions happen
        while the packets flow (as `ikelab run --ping` does)."""
        session = self.session
        if isinstance(session, ManualStepper):
            return ping()
        stop = threading.Event()
        live = threading.Thread(target=session.run_live, args=(stop,), name="ikelab-live")
        live.start()
        try:
            return ping()
        finally:
            stop.set()
            live.join()
            session.run()  # finish any exchange still in flight

    # ------------------------------------------------------------------ export

    def export(self, path: Path) -> None:
        # Imported here: the export pulls in scapy, which a run that never exports need not load.
        from ikelab.export.capture import export_capture

        self._on_thread(lambda: export_capture(path, self.session.trace, self.lesson))
