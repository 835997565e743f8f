"""Dead peer detection (RFC 3706): is the peer still there, although it has been quiet?

Both sides announce DPD with its vendor ID in phase 1. When the peer has been quiet for `dpd_every`
(an authenticated message resets the wait), we send R-U-THERE in a protected Informational with a
sequence number that starts at random and counts up; the peer answers R-U-THERE-ACK with the same
number. Unanswered, R-U-THERE is repeated with the next number on the retransmission schedule, and
after the last repetition the peer is declared dead: the ISAKMP SA fails and its IPsec SAs go.
The timers run on the engine's injected clock, like every other timer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.ikev1.exchanges import informational  # DPD messages are Informational exchanges
from ikelab.ikev1.sa import Dpd, IsakmpSa
from ikelab.wire.isakmp import NotifyPayload
from ikelab.wire.isakmp_constants import NotifyType, ProtocolId

if TYPE_CHECKING:
    from ikelab.ikev1.engine import Ikev1Peer


def start(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Phase 1 is up: schedule the first R-U-THERE, if DPD is configured and the peer speaks it."""
    every = peer.config.dpd_every
    if every is None:
        return
    if not sa.peer_dpd:
        peer.note("info", "dead peer detection is configured, but the peer sent no RFC 3706 vendor ID: it would not answer R-U-THERE, so none is sent")
        return
    # A random start (RFC 3706 §7) with room to count up before it wraps.
    sequence = int.from_bytes(peer.random(4, "DPD sequence number"), "big") >> 1
    sa.dpd = Dpd(due=peer.now + every, sequence=sequence)


def heard_from(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Any authenticated message proves the peer alive: the next R-U-THERE waits a full interval again."""
    if sa.dpd is not None and not sa.dpd.unanswered:
        sa.dpd.due = peer.now + peer.config.dpd_every


def are_you_there(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Send R-U-THERE with the next sequence number and wait for its ACK."""
    if not sa.peer_dpd:  # as in start(): unanswered, it would declare a live peer dead
        peer.note("warning", "no R-U-THERE sent: the peer sent no RFC 3706 vendor ID in phase 1, so it would not answer, and we would declare it dead")
        return
    if sa.dpd is None:  # asked for by a lesson or the TUI without a configured interval
        sa.dpd = Dpd(due=peer.now, sequence=int.from_bytes(peer.random(4, "DPD sequence number"), "big") >> 1)
    d = sa.dpd
    d.sequence = (d.sequence + 1) & 0xFFFFFFFF
    if not d.unanswered:
        d.first_sent = peer.now
    d.unanswered.append(d.sequence)
    d.attempt += 1
    d.due = peer.now + peer.config.retransmit.delay(d.attempt - 1)
    peer.note("info", f"dead peer detection: R-U-THERE #{d.sequence} (attempt {d.attempt}), an ACK is expected within {d.due - peer.now:.1f} s")
    informational.send(peer, sa, [NotifyPayload(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa.cookies, d.sequence.to_bytes(4, "big"))])


def due(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """The DPD timer fired: ask, ask again, or give the peer up for dead."""
    d, policy = sa.dpd, peer.config.retransmit
    if d.unanswered and d.attempt > policy.tries:
        waited = peer.now - d.first_sent  # measured: wall-clock timers may fire late
        peer.fail(sa, f"dead peer: no R-U-THERE-ACK to {d.attempt} R-U-THERE messages in {waited:.1f} s (RFC 3706); its IPsec SAs are removed")
        return
    are_you_there(peer, sa)


def acknowledged(peer: "Ikev1Peer", sa: IsakmpSa, n: NotifyPayload) -> None:
    """R-U-THERE-ACK: the peer lives if it names a sequence number we are waiting for (RFC 3706 §7)."""
    sequence = int.from_bytes(n.data, "big") if len(n.data) == 4 else None
    d = sa.dpd
    if d is None or sequence not in d.unanswered:
        peer.note("warning", f"dead peer detection: an R-U-THERE-ACK with sequence number {n.data.hex() or 'none'} answers no R-U-THERE of ours; ignored (RFC 3706 §7)")
        return
    peer.note("info", f"dead peer detection: the peer answered R-U-THERE #{sequence} with R-U-THERE-ACK, it is alive")
    d.unanswered.clear()
    d.attempt = 0
    d.first_sent = None
    if peer.config.dpd_every is None:
        sa.dpd = None
    else:
        d.due = peer.now + peer.config.dpd_every


def answer(peer: "Ikev1Peer", sa: IsakmpSa, n: NotifyPayload) -> None:
    """The peer asks R-U-THERE: the ACK carries the same sequence number (RFC 3706 §5.1)."""
    if len(n.data) != 4:
        peer.note("warning", f"dropped an R-U-THERE whose sequence number has {len(n.data)} bytes, not 4 (RFC 3706 §5.1)")
        return
    peer.note("info", f"dead peer detection: the peer asks R-U-THERE #{int.from_bytes(n.data, 'big')}; answering R-U-THERE-ACK with the same number")
    informational.send(peer, sa, [NotifyPayload(NotifyType.R_U_THERE_ACK, ProtocolId.ISAKMP, sa.cookies, n.data)])
