"""Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): one message, not acknowledged.

    HDR*, HASH(1), N/D      with HASH(1) = prf(SKEYID_a, M-ID | N/D)

Once phase 1 is done they are encrypted (IV from the last phase 1 block and their own M-ID) and
authenticated by HASH(1); before that, a failure can only be reported in the clear, and such a
notify is a hint, not proof: anyone could have sent it. Dead peer detection (RFC 3706, module
`dpd`) rides on them: R-U-THERE, answered by R-U-THERE-ACK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.effects import DeleteChildSa
from ikelab.ikev1.keys import informational_hash, phase2_iv, trace_child
from ikelab.ikev1.exchanges import dpd
from ikelab.ikev1.sa import Exchange, IsakmpSa, State
from ikelab.trace import IkeSaEvent
from ikelab.wire.errors import DecodeError
from ikelab.wire.isakmp import DeletePayload, HashPayload, NotifyPayload, Payload, encode_payloads
from ikelab.wire.isakmp_constants import ExchangeType, NotifyType, ProtocolId, name_of

if TYPE_CHECKING:
    from ikelab.effects import Endpoint
    from ikelab.ikev1.engine import Ikev1Peer
    from ikelab.wire.isakmp import Header

INFORMATIONAL = ExchangeType.INFORMATIONAL


def send(peer: "Ikev1Peer", sa: IsakmpSa, payloads: list[Payload]) -> None:
    """A protected Informational exchange carrying these Notification or Delete payloads."""
    exchange = Exchange("Informational", peer.new_message_id(sa))
    phase2_iv(peer, sa, exchange)
    hash_1, _ = informational_hash(peer, sa, exchange.message_id_bytes, encode_payloads(payloads)[1])
    peer.send(sa, exchange, INFORMATIONAL, [HashPayload(hash_1)] + payloads, encrypt=True, expect_reply=False, sender_is_initiator=sa.is_initiator)


def delete_child(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Delete the oldest IPsec SA pair: the Delete names our inbound SPI, the one the peer sends to."""
    if not sa.children:
        peer.note("warning", "no IPsec SA to delete")
        return
    child = sa.children.pop(0)
    send(peer, sa, [DeletePayload(ProtocolId.IPSEC_ESP, 4, [child.inbound.spi])])
    trace_child(peer, child, "deleted")
    peer.effect(DeleteChildSa(child))


def delete_isakmp_sa(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Delete every IPsec SA, then the ISAKMP SA itself (its SPI is the cookie pair)."""
    payloads: list[Payload] = []
    if sa.children:
        payloads.append(DeletePayload(ProtocolId.IPSEC_ESP, 4, [c.inbound.spi for c in sa.children]))
    payloads.append(DeletePayload(ProtocolId.ISAKMP, 16, [sa.cookies]))
    send(peer, sa, payloads)
    _deleted(peer, sa, "we deleted it")


def _deleted(peer: "Ikev1Peer", sa: IsakmpSa, why: str) -> None:
    for child in sa.children:
        trace_child(peer, child, "deleted")
        peer.effect(DeleteChildSa(child))
    sa.children.clear()
    sa.state = State.DELETED
    peer.sas.pop(sa.cky_i, None)
    peer.emit(IkeSaEvent, state="deleted", spi_i=sa.cky_i, spi_r=sa.cky_r, algorithms=sa.ike.keywords(), reason=why)


def receive(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, header: "Header", src: "Endpoint", dst: "Endpoint") -> None:
    exchange = Exchange("Informational", header.message_id)
    if not header.encrypted:
        _receive_plain(peer, sa, exchange, data, src, dst)
        return
    if sa.state is not State.ESTABLISHED:
        peer.note("warning", f"dropped an encrypted Informational from {src}: phase 1 is not finished, so there is no IV for it")
        return
    phase2_iv(peer, sa, exchange)
    chain = peer.open(sa, exchange, data, src, dst, sender_is_initiator=not sa.is_initiator)
    if chain is None or isinstance(chain, DecodeError):
        peer.note("warning", "dropped an Informational that does not decrypt with the ISAKMP SA's keys")
        return
    if not chain.payloads or not isinstance(chain.payloads[0], HashPayload):
        peer.note("warning", "dropped an Informational that does not start with HASH(1) (RFC 2409 §5.7)")
        return
    _, ok = informational_hash(peer, sa, exchange.message_id_bytes, b"".join(chain.raw[1:]), received=chain.payloads[0].data)
    if not ok:
        peer.note("error", "dropped an Informational whose HASH(1) does not match: it was altered or is not from our peer")
        return
    peer.follow(sa, src, dst)
    dpd.heard_from(peer, sa)
    for payload in chain.payloads[1:]:
        if sa.state is State.DELETED:
            break
        if isinstance(payload, NotifyPayload):
            _notify(peer, sa, payload)
        elif isinstance(payload, DeletePayload):
            _delete(peer, sa, payload)


def _receive_plain(peer: "Ikev1Peer", sa: IsakmpSa, exchange: Exchange, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    decoded = peer.receive_plain(exchange, data, src, dst, sender_is_initiator=not sa.is_initiator)
    if decoded is None:
        return
    errors = [p for p in decoded.message.payloads if isinstance(p, NotifyPayload) and p.notify_type < 16384]
    if not errors:
        peer.note("info", "an unprotected Informational without an error notify: nothing to do")
        return
    name = name_of(NotifyType, errors[0].notify_type)
    if sa.state is State.ESTABLISHED:
        peer.note("warning", f"ignored an unprotected {name}: once phase 1 is done, only notifies under its protection count")
        return
    reason = f"the peer refused phase 1 with {name} (an unprotected notify: a hint, since anyone could send it)"
    if errors[0].notify_type == NotifyType.PAYLOAD_MALFORMED and sa.state is State.ID_SENT:
        reason += ". It could not read our main mode message 5: its Ka differs from ours, so its pre-shared key differs"
    peer.fail(sa, reason, name)


def _notify(peer: "Ikev1Peer", sa: IsakmpSa, n: NotifyPayload) -> None:
    name = name_of(NotifyType, n.notify_type)
    if n.notify_type == NotifyType.R_U_THERE:
        dpd.answer(peer, sa, n)
    elif n.notify_type == NotifyType.R_U_THERE_ACK:
        dpd.acknowledged(peer, sa, n)
    elif n.notify_type < 16384:
        waiting = [qm for qm in sa.quick.values() if qm.is_initiator and qm.exchange.deadline is not None and (not n.spi or n.spi == qm.spi_i)]
        for qm in waiting:
            sa.quick.pop(qm.exchange.message_id, None)
        what = f"; quick mode {', '.join(f'0x{q.exchange.message_id:08x}' for q in waiting)} abandoned" if waiting else ""
        peer.note("error", f"the peer reports {name}{what}; the ISAKMP SA stays up")
    else:
        peer.note("info", f"the peer sends status {name}")


def _delete(peer: "Ikev1Peer", sa: IsakmpSa, d: DeletePayload) -> None:
    if d.protocol == ProtocolId.ISAKMP:
        if sa.cookies in d.spis:
            _deleted(peer, sa, "the peer deleted it")
        else:
            peer.note("warning", "the peer deleted an ISAKMP SA with other cookies; ignored")
        return
    if d.protocol != ProtocolId.IPSEC_ESP:
        peer.note("warning", f"ignored a Delete for protocol {name_of(ProtocolId, d.protocol)}")
        return
    for spi in d.spis:
        child = next((c for c in sa.children if c.outbound.spi == spi), None)
        if child is None:
            peer.note("warning", f"the peer deleted ESP SPI {spi.hex()}, which we do not know")
            continue
        sa.children.remove(child)
        trace_child(peer, child, "deleted")
        peer.effect(DeleteChildSa(child))
