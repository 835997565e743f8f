"""INFORMATIONAL (RFC 7296 §1.4): notifies, deletes, and the empty request that checks liveness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.effects import DeleteChildSa
from ikelab.ikev2.ike_sa import IkeSa, State
from ikelab.trace import ChildSaEvent, IkeSaEvent
from ikelab.wire.ikev2 import DeletePayload, NotifyPayload, SaPayload
from ikelab.wire.ikev2_constants import ExchangeType, NotifyType, ProtocolId, name_of

if TYPE_CHECKING:
    from ikelab.ikev2.engine import Ikev2Peer, Received


def send_notify(peer: "Ikev2Peer", sa: IkeSa, notify_type: int) -> None:
    peer.send_request(sa, ExchangeType.INFORMATIONAL, [NotifyPayload(notify_type)], lambda r: None)


def delete_ike_sa(peer: "Ikev2Peer", sa: IkeSa) -> None:
    """Ask the peer to delete the IKE SA (and with it every Child SA); done when it answers."""
    peer.send_request(sa, ExchangeType.INFORMATIONAL, [DeletePayload(ProtocolId.IKE, 0, [])], lambda r: _deleted(peer, sa, "we deleted it"))


def delete_child(peer: "Ikev2Peer", sa: IkeSa, child=None) -> None:
    """Delete a Child SA: we name our inbound SPI; the peer answers with its own (RFC 7296 §1.4.1)."""
    sa = sa.current()  # queued before an IKE SA rekey moved the Child SAs: it runs on the IKE SA holding them
    child = child or (sa.children[0] if sa.children else None)
    if child is None or child not in sa.children:
        peer.note("warning", "no such Child SA to delete")
        return
    peer.send_request(sa, ExchangeType.INFORMATIONAL, [DeletePayload(ProtocolId.ESP, 4, [child.inbound.spi])],
                      lambda r: _child_deleted(peer, sa, child))


def _child_deleted(peer: "Ikev2Peer", sa: IkeSa, child) -> None:
    holder = sa.current()  # an IKE SA rekey answered meanwhile moved the Child SA to the new IKE SA
    if child in holder.children:
        holder.children.remove(child)
        _trace_child_deleted(peer, child)
        peer.effect(DeleteChildSa(child))


def check_liveness(peer: "Ikev2Peer", sa: IkeSa) -> None:
    """An empty INFORMATIONAL request: the answer proves the peer is alive (RFC 7296 §1.4)."""

    def answered(response) -> None:
        peer.note("info", "the peer answered the liveness check")
        peer.schedule(sa.current(), peer.config.liveness_every, "liveness")

    peer.send_request(sa, ExchangeType.INFORMATIONAL, [], answered)


def _deleted(peer: "Ikev2Peer", sa: IkeSa, why: str) -> None:
    _hand_over(peer, sa)
    for child in sa.children:
        _trace_child_deleted(peer, child)
        peer.effect(DeleteChildSa(child))
    sa.children.clear()
    sa.state = State.DELETED
    sa.pending = None
    peer.sas.pop(sa.local_spi, None)
    peer.emit(IkeSaEvent, state="deleted", spi_i=sa.spi_i, spi_r=sa.spi_r, algorithms=sa.ike.keywords(), reason=why)


def _hand_over(peer: "Ikev2Peer", old: IkeSa) -> None:
    """A rekeyed IKE SA is deleted: our request still in flight on it (no answer can arrive now) and
    those waiting behind it go to the IKE SA that replaced it, as strongSwan's IKE rekey adopts the old
    IKE SA's tasks. A request about the old IKE SA itself (its Delete or rekey) ends with it."""
    new = old.current()
    if new is old:
        return
    pending, old.pending = old.pending, None
    if pending is not None and not _about_ike_sa(pending.payloads):
        peer.note("info", f"{pending.label} (message ID {pending.message_id}) was unanswered when IKE SA {old.label} "
                          f"was deleted: sent again on the IKE SA that replaced it, {new.label}")
        peer.start_request(new, lambda: peer.send_request(new, pending.exchange, pending.payloads, pending.on_response))
    new.queued.extend(old.queued)
    old.queued.clear()
    if new.pending is None and new.queued and new.state is State.ESTABLISHED:
        new.queued.popleft()()


def _about_ike_sa(payloads) -> bool:
    return any(isinstance(p, DeletePayload) and p.protocol == ProtocolId.IKE for p in payloads) or any(
        isinstance(p, SaPayload) and p.proposals and p.proposals[0].protocol == ProtocolId.IKE for p in payloads)


def _trace_child_deleted(peer: "Ikev2Peer", child) -> None:
    peer.emit(
        ChildSaEvent,
        action="deleted",
        name=child.name,
        mode=child.mode,
        protocol="ESP",
        algorithms=child.inbound.algorithms,
        inbound=child.inbound.describe(),
        outbound=child.outbound.describe(),
        local_ts=list(child.local_ts),
        remote_ts=list(child.remote_ts),
    )


def receive_request(peer: "Ikev2Peer", sa: IkeSa, request: "Received") -> None:
    payloads = request.inner
    for n in payloads:
        if isinstance(n, NotifyPayload) and n.notify_type == NotifyType.AUTHENTICATION_FAILED:
            peer.send_response(sa, request.header, [])
            from ikelab.ikev2.exchanges.ike_auth import rejected

            peer.fail(sa, rejected(peer, "initiator"), "AUTHENTICATION_FAILED")
            return
    deletes = [p for p in payloads if isinstance(p, DeletePayload)]
    if any(d.protocol == ProtocolId.IKE for d in deletes):
        peer.send_response(sa, request.header, [])
        _deleted(peer, sa, "the peer deleted it")
        return
    reply = []
    for d in deletes:
        if d.protocol != ProtocolId.ESP:
            peer.note("warning", f"ignored a Delete for protocol {name_of(ProtocolId, d.protocol)}")
            continue
        ours = []
        holder = sa.current()  # a Delete sent before the peer saw our IKE SA rekey names a Child SA that moved
        for spi in d.spis:
            child = next((c for c in holder.children if c.outbound.spi == spi), None)
            if child is None:
                peer.note("warning", f"the peer deleted ESP SPI {spi.hex()}, which we do not know")
                continue
            holder.children.remove(child)
            _trace_child_deleted(peer, child)
            peer.effect(DeleteChildSa(child))
            ours.append(child.inbound.spi)
        if ours:
            reply.append(DeletePayload(ProtocolId.ESP, 4, ours))
    if not payloads:
        peer.note("info", "empty INFORMATIONAL request: a liveness check, answered")
    peer.send_response(sa, request.header, reply)
