"""The run behind a lesson screen: a lesson's peers on a transport, stepped on demand.

Going back is replaying: with the seed, a fresh Session stepped k-1 times is byte for byte the run
that was on screen one step earlier.

Every job runs on one thread the Runner owns, alive until `close()`. One thread keeps the jobs in
order, so `close()` (on every exit path, from any thread) waits for a step or a ping in flight
instead of racing it, and nothing is set up after a close. What a run is made of (transport,
session, ping stage) comes from ikelab.lab.runs, as for `ikelab run`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ikelab.lab.runs import STAND_IN_TEXT, TransportChoice, TransportUnavailable, choose_transport  # noqa: F401 (the TUI's names for them)
from ikelab.lessons import Lesson
from ikelab.trace import Trace

# The engines and the lab are imported on the run's thread when the run opens, so loading them
# does not delay the first screen.
if TYPE_CHECKING:
    from ikelab.lab.lab import Lab
    from ikelab.lab.manual import ManualSession
    from ikelab.lab.session import Session, Step

PING_COUNT = 5
T = TypeVar("T")


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
        from ikelab.lab.runs import plain_transport

        if self.transport_choice.name == "netns":
            lab = Lab(self.lesson)
            lab.__enter__()
            self.lab, self._transport = lab, lab.transport
        else:
            self._transport = plain_transport(self.lesson, self.transport_choice.name)
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
        from ikelab.lab.runs import new_session

        if self.session is not None and self.lab is not None:
            # The replay installs the same Child SAs again: take the previous run's out first.
            for peer, children in self.session.outcome.children.items():
                for child in children:
                    self.lab.datapath.remove(peer, child)
        session = new_session(self.lesson, self.seed, lab=self.lab, transport=self._transport)
        self.session = ManualStepper(session) if self.lesson.manual else session

    # ------------------------------------------------------------------ the ping stage

    @property
    def ping_ready(self) -> bool:
        """The lab is up and both sides have their Child SAs."""
        outcome = self.session.outcome if self.session else None
        return self.lab is not None and self.finished and outcome.success and all(outcome.children.values())

    def ping(self, on_line: Callable[[str], None], count: int = PING_COUNT) -> None:
        """Real pings through the tunnel; each line becomes a PingEvent with both sides' ESP counters."""
        from ikelab.lab.runs import ping_stage

        def ping() -> None:
            if self.ping_ready:
                session = self.session.session if isinstance(self.session, ManualStepper) else self.session
                ping_stage(session, self.lab, count, on_line)

        self._on_thread(ping)

    # ------------------------------------------------------------------ export

    def export(self, path: Path) -> None:
        # Imported here: the export pulls in scapy, which a run that never exports need not load.
        from ikelab.export.capture import export_capture

        self._on_thread(lambda: export_capture(path, self.session.trace, self.lesson))
