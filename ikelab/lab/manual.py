"""Manual keying: a tunnel from static SAs typed into both sides, with no IKE at all.

Both peers must hold the same SPIs and keys; nothing negotiates, authenticates or rekeys them.
"""

from __future__ import annotations

from ikelab.esp.sa import ChildSa, EspSa
from ikelab.lab.session import Outcome, install_child
from ikelab.lessons import Lesson, ManualDirection
from ikelab.trace import ChildSaEvent, NoteEvent, Trace


def manual_children(lesson: Lesson) -> dict[str, ChildSa]:
    keys = lesson.manual
    cipher = keys.esp.encryption[0]
    integ = keys.esp.integrity[0] if keys.esp.integrity else None
    left, right = lesson.left, lesson.right

    def sa(direction: ManualDirection, src: str, dst: str) -> EspSa:
        return EspSa(direction.spi, src, dst, cipher, integ, direction.encryption_key, direction.integrity_key)

    l2r = sa(keys.left_to_right, left.address, right.address)
    r2l = sa(keys.right_to_left, right.address, left.address)
    return {
        left.name: ChildSa("manual", inbound=r2l, outbound=l2r, local_ts=left.local_ts, remote_ts=left.remote_ts),
        right.name: ChildSa("manual", inbound=l2r, outbound=r2l, local_ts=right.local_ts, remote_ts=right.remote_ts),
    }


class ManualSession:
    """Installs the lesson's static SAs on both sides; the same shape of result as an IKE Session."""

    def __init__(self, lesson: Lesson, datapath=None, namespaces: dict[str, str] | None = None) -> None:
        self.lesson = lesson
        self.datapath = datapath
        self.namespaces = namespaces or {}
        self.trace = Trace()
        self.clock = 0.0
        self.peers = {p.name: None for p in lesson.peers}
        self.outcome = Outcome(manual=True, children={p.name: [] for p in lesson.peers})

    def run(self) -> Outcome:
        for side, child in manual_children(self.lesson).items():
            self.trace.emit(NoteEvent(side, self.clock, "info",
                                      "no IKE: the SPIs and keys come from the lesson file, typed identically on both sides"))
            self.trace.emit(ChildSaEvent(
                side, self.clock, action="installed", name=child.name, mode=child.mode, protocol="ESP",
                algorithms=child.outbound.algorithms, inbound=child.inbound.describe(), outbound=child.outbound.describe(),
                local_ts=list(child.local_ts), remote_ts=list(child.remote_ts),
            ))
            install_child(self.trace, self.clock, self.datapath, self.namespaces, side, child)
            self.outcome.children[side].append(child)
        if self.datapath is not None:
            self.datapath.settle()  # the installs were handed over without waiting
        return self.outcome
