"""One run of a lesson, as `ikelab run`, `ikelab peer` and the TUI all make it.

Which transport a run gets, which kind of session drives it (two ikelab peers, ikelab against
strongSwan, static SAs), and the ping stage with the session following the wall clock meanwhile.
The command line and the TUI only decide what to show.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ikelab.trace import CommandEvent, NoteEvent, PingEvent

if TYPE_CHECKING:
    from ikelab.lab.lab import Lab, PingResult
    from ikelab.lessons import Lesson

T = TypeVar("T")


@dataclass(frozen=True)
class TransportChoice:
    name: str  # "netns", "loopback" or "memory"
    lab_unavailable: str | None = None  # why the lab could not be used: `name` stands in


class TransportUnavailable(Exception):
    """The transport asked for cannot run here; str() says why."""


def choose_transport(requested: str | None, lesson: Lesson | None = None) -> TransportChoice:
    """The lab where it can start, else loopback with the reason (memory for a lesson with a
    [router], which loopback cannot model); an explicit choice is kept, if it can run the lesson."""
    from ikelab.lab.lab import missing_privileges

    if requested == "loopback" and lesson is not None and lesson.router:
        raise TransportUnavailable(loopback_without_router(lesson))
    if requested in ("memory", "loopback"):
        return TransportChoice(requested)
    problem = missing_privileges()
    if problem is None:
        return TransportChoice("netns")
    if requested == "netns":
        raise TransportUnavailable(f"the lab cannot start: {problem}")
    return stand_in(problem, lesson)


def stand_in(problem: str, lesson: Lesson | None) -> TransportChoice:
    """What runs when the lab cannot start (`problem` says why): loopback UDP, or memory for a
    lesson with a [router], which loopback cannot model."""
    return TransportChoice("memory" if lesson is not None and lesson.router else "loopback", problem)


STAND_IN_TEXT = {"loopback": "over loopback UDP", "memory": "in memory"}  # "running ... instead"


def loopback_without_router(lesson: Lesson) -> str:
    return (f"{lesson.slug} puts a [router] between the peers (NAT, blocked ports), which loopback UDP cannot "
            "model: use --transport memory, or the lab (netns, as root)")


def plain_transport(lesson: Lesson, name: str):
    """The transport of a run outside the lab: UDP on 127.0.0.1, or in memory. Raises TransportError."""
    from ikelab.lab.transports import LoopbackTransport, MemoryTransport, TransportError

    if name == "loopback":
        if lesson.router:  # loopback would carry what the router drops or rewrites, and the lesson would lie
            raise TransportError(loopback_without_router(lesson))
        return LoopbackTransport([p.name for p in lesson.peers])
    return MemoryTransport.for_lesson(lesson)


def new_session(lesson: Lesson, seed: int | None, *, lab: Lab | None = None, transport=None):
    """The session that drives this lesson: static SAs, ikelab against strongSwan, or two ikelab
    peers. In the lab, its trace starts with the commands that built the lab and the datapath chosen."""
    from ikelab.lab.manual import ManualSession
    from ikelab.lab.session import Session

    datapath = lab.datapath if lab else None
    namespaces = lab.namespaces if lab else None
    if lesson.manual:
        session = ManualSession(lesson, datapath=datapath, namespaces=namespaces)
    elif lesson.external and lab is not None:
        from ikelab.lab.peer_session import strongswan_session

        session = strongswan_session(lesson, lab, seed)
    else:
        session = Session(lesson, lab.transport if lab else transport, seed=seed, datapath=datapath, namespaces=namespaces)
    if lab is not None:
        session.trace.emit(CommandEvent("lab", 0.0, "build the lab: two namespaces joined by a veth pair", list(lab.commands), True))
        session.trace.emit(NoteEvent("lab", 0.0, "info", f"datapath: {lab.datapath.name} ({lab.datapath.reason})"))
    return session


def plain_ike_sockets(local: str) -> list:
    """UDP sockets on ports 500 and 4500 at `local` in a namespace ikelab did not make (no ESP
    worker joins port 4500 there, unlike lab.lab_ike_sockets), or OSError (both closed) saying why not."""
    from ikelab.esp.udp_encap import NAT_T_PORT
    from ikelab.lab.transports import IKE_PORT, bound_udp_socket

    sockets = [bound_udp_socket(local, IKE_PORT)]
    try:
        sockets.append(bound_udp_socket(local, NAT_T_PORT))
    except OSError:
        sockets[0].close()
        raise
    return sockets


def one_peer(lesson: Lesson, ours: str, sockets: list, remote: str, seed: int | None):
    """Our side alone, in the current namespace, against another implementation at `remote`, run
    until it settles. The sockets (from plain_ike_sockets) are closed at the end."""
    from ikelab.effects import Endpoint
    from ikelab.lab.peer_session import PeerSession
    from ikelab.lab.transports import IKE_PORT, UdpTransport

    transport = UdpTransport({ours: sockets})
    try:
        session = PeerSession(lesson, transport, ours=ours, remote=Endpoint(remote, IKE_PORT), seed=seed)
        session.run()
    finally:
        transport.close()
    return session


def while_live(session, work: Callable[[], T]) -> T:
    """Do `work` (a ping) while the session follows the wall clock, so the lesson's rekeys and
    actions happen while the packets flow; then finish any exchange still in flight."""
    if not hasattr(session, "run_live"):  # static SAs: nothing to follow
        return work()
    stop = threading.Event()
    live = threading.Thread(target=session.run_live, args=(stop,), name="ikelab-live")
    live.start()
    try:
        return work()
    finally:
        stop.set()
        live.join()
        session.run()


def ping_stage(session, lab: Lab, count: int, on_line: Callable[[str], None] | None = None) -> PingResult:
    """Real pings through the tunnel. Each line becomes a PingEvent with both sides' ESP counters,
    and the trace ends the stage with how many replies came back."""
    trace = session.trace

    def now() -> float:
        # While live, `until` follows the wall clock; `clock` moves only when something happens.
        return max(session.clock, getattr(session, "until", 0.0) or 0.0)

    def line(text: str) -> None:
        counters = {side: lab.datapath.counters(side) for side in lab.namespaces}
        trace.emit(PingEvent("lab", now(), text, counters))
        if on_line is not None:
            on_line(text)

    result = while_live(session, lambda: lab.ping(count, line))
    level = "info" if result.received == result.transmitted else "warning"
    trace.emit(NoteEvent("lab", now(), level, f"ping: {result.received} of {result.transmitted} replies through the tunnel"))
    return result


def handshake_then_ping(session, lab, count: int, on_line: Callable[[str], None] | None = None) -> None:
    """Run the session to the end; then, if every side it drives has its Child SAs, `count` pings
    through them (the trace says why not otherwise); then stop the lab's capture."""
    session.run()
    outcome = session.outcome
    if count and outcome.success and all(outcome.children.values()):
        ping_stage(session, lab, count, on_line)
    elif count:
        session.trace.emit(NoteEvent("lab", session.clock, "warning", "no ping: the Child SAs are not up on both sides"))
    lab.stop_capture()


def peer_session_here(lesson: Lesson, lab, remote: str, seed: int | None):
    """Our side alone in a namespace ikelab created (a PeerLab around it): the Child SAs go into our
    datapath there; the trace starts with what the PeerLab set up."""
    from ikelab.effects import Endpoint
    from ikelab.lab.peer_session import PeerSession
    from ikelab.lab.transports import IKE_PORT

    side = lab.side
    session = PeerSession(lesson, lab.transport, ours=side.name, remote=Endpoint(remote, IKE_PORT),
                          seed=seed, datapath=lab.datapath, namespaces=lab.namespaces)
    session.trace.emit(CommandEvent("lab", 0.0, f"our side in {side.namespace}, an ikelab namespace: the datapath is installed here",
                                    list(lab.commands), True))
    session.trace.emit(NoteEvent("lab", 0.0, "info", f"datapath: {lab.datapath.name} ({lab.datapath.reason})"))
    return session


def summary(session) -> str:
    """One line per peer: what it ended with."""
    outcome = session.outcome
    # IKEv1 names them differently (RFC 2409): the phase 1 SA and the IPsec SAs of quick mode.
    ikev1 = getattr(session.lesson, "ike_version", 2) == 1
    ike_sa, child_sas = ("ISAKMP SA", "IPsec SA pair(s)") if ikev1 else ("IKE SA", "Child SA(s)")
    lines = []
    for name in session.peers:
        if outcome.manual:
            lines.append(f"{name}: {len(outcome.children[name])} manually keyed Child SA(s) installed, no IKE")
        elif name in outcome.failures:
            f = outcome.failures[name]
            lines.append(f"{name}: {ike_sa} failed" + (f" ({f.notify})" if f.notify else "") + f": {f.reason}")
        elif outcome.ike_up.get(name):
            children = outcome.children[name]
            lines.append(f"{name}: {ike_sa} established, {len(children)} {child_sas} installed")
        else:
            lines.append(f"{name}: no {ike_sa}")
    return "\n".join(lines)
