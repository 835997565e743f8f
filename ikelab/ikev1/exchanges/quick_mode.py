"""Quick mode (RFC 2409 §5.5): a pair of IPsec SAs under the protection of the ISAKMP SA.

    1  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->
    2                 <--  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr]
    3  HDR*, HASH(3)                                -->

All three are encrypted with Ka; their IVs start from hash(last phase 1 block | M-ID). The HASH
payloads, keyed with SKEYID_a, authenticate each message and bind it to the exchange. KE payloads
(PFS) appear when the ESP proposal has a DH group; IDci/IDcr are the proxy IDs: which traffic.
Each direction's KEYMAT mixes in the SPI its receiver chose, so the two directions' keys differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.crypto.dh import DhError
from ikelab.effects import InstallChildSa
from ikelab.ikev1 import proposals, selectors
from ikelab.ikev1.exchanges import dpd, informational, phase1
from ikelab.ikev1.keys import derive_child, phase2_iv, quick_hash, trace_child
from ikelab.ikev1.sa import Exchange, IsakmpSa, QuickMode, State
from ikelab.trace import ProposalEvent, TrafficSelectorEvent
from ikelab.wire.errors import DecodeError
from ikelab.wire.isakmp import (
    HashPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    encode_payloads,
)
from ikelab.wire.isakmp_constants import EncapsulationMode, ExchangeType, NotifyType, ProtocolId, name_of
from ikelab.wire.isakmp_sa import describe_transform

if TYPE_CHECKING:
    from ikelab.effects import Endpoint
    from ikelab.ikev1.engine import Ikev1Peer
    from ikelab.wire.isakmp import DecodedChain, Header

QUICK = ExchangeType.QUICK_MODE


def _send(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, payloads: list, *, expect_reply: bool) -> None:
    peer.send(sa, qm.exchange, QUICK, payloads, encrypt=True, expect_reply=expect_reply, sender_is_initiator=qm.is_initiator)


def _trace_choice(peer: "Ikev1Peer", offered: list, selection: proposals.Selection) -> None:
    peer.emit(
        ProposalEvent,
        protocol="ESP",
        offered=[f"transform #{t.number}: {describe_transform(t, ProtocolId.IPSEC_ESP)}" for t in offered],
        configured=[s.keywords() for s in peer.config.esp_proposals],
        chosen=describe_transform(selection.transform, ProtocolId.IPSEC_ESP) if selection.transform else None,
        reasons=selection.reasons,
    )


def _trace_ids(peer: "Ikev1Peer", id_ci: IdPayload, id_cr: IdPayload, local: list[str], remote: list[str], reason: str, accepted: bool) -> None:
    chosen = [selectors.describe(id_ci)], [selectors.describe(id_cr)]
    peer.emit(
        TrafficSelectorEvent,
        offered_tsi=chosen[0],
        offered_tsr=chosen[1],
        local=local,
        remote=remote,
        chosen_tsi=chosen[0] if accepted else [],
        chosen_tsr=chosen[1] if accepted else [],
        reason=reason,
    )


def _networks(p: IdPayload) -> list[str]:
    return [str(n) for n in selectors.to_networks(p) or []]


# ------------------------------------------------------------------------- initiator


def start(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    cfg = peer.config
    qm = QuickMode(Exchange("Quick Mode", peer.new_message_id(sa)), "initiator")
    sa.quick[qm.exchange.message_id] = qm
    phase2_iv(peer, sa, qm.exchange)
    qm.ni, qm.spi_i = peer.random(phase1.NONCE_LENGTH, "quick mode Ni"), peer.new_child_spi()
    # RFC 3947 §5.1: behind a NAT, ask for UDP-encapsulated tunnel mode.
    mode = EncapsulationMode.UDP_ENCAPSULATED_TUNNEL if sa.nat_local or sa.nat_remote else EncapsulationMode.TUNNEL
    qm.offered = proposals.esp_transforms(cfg.esp_proposals, cfg.esp_lifetime, mode)
    if len(cfg.local_ts) > 1 or len(cfg.remote_ts) > 1:
        peer.note("info", "IKEv1 quick mode negotiates one pair of networks: proposing the first local and remote ones")
    qm.id_ci, qm.id_cr = selectors.to_id(cfg.local_ts[0]), selectors.to_id(cfg.remote_ts[0])
    rest = [SaPayload([Proposal(1, ProtocolId.IPSEC_ESP, qm.spi_i, qm.offered)]), NoncePayload(qm.ni)]
    group = proposals.pfs_group(cfg.esp_proposals)
    if group is not None:
        qm.dh = phase1.generate_dh(peer, group, "quick mode DH (PFS)")
        rest.append(KePayload(qm.dh.public))
    rest += [qm.id_ci, qm.id_cr]
    hash_1, _ = quick_hash(peer, sa, 1, qm.exchange.message_id_bytes, rest=encode_payloads(rest)[1])
    peer.note("info", f"starting quick mode 0x{qm.exchange.message_id:08x}: " + ("with PFS" if group else "without PFS"))
    _send(peer, sa, qm, [HashPayload(hash_1)] + rest, expect_reply=True)


def receive(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, header: "Header", src: "Endpoint", dst: "Endpoint") -> None:
    if sa.state is not State.ESTABLISHED:
        peer.note("warning", f"dropped quick mode 0x{header.message_id:08x}: phase 1 is not finished ({sa.state.value})")
        return
    qm = sa.quick.get(header.message_id)
    if qm is None:
        _message_1(peer, sa, data, header, src, dst)
    elif qm.is_initiator and qm.exchange.count == 1:
        _message_2(peer, sa, qm, data, src, dst)
    elif not qm.is_initiator and qm.exchange.count == 2:
        _message_3(peer, sa, qm, data, src, dst)
    else:
        peer.note("warning", f"dropped an unexpected message of quick mode 0x{header.message_id:08x}: the exchange is over")


def _open(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, data: bytes, src: "Endpoint", dst: "Endpoint", number: int) -> "DecodedChain | None":
    """Decrypt a quick mode message and check it starts with the HASH payload; None if it is dropped."""
    chain = peer.open(sa, qm.exchange, data, src, dst, sender_is_initiator=not qm.is_initiator)
    if isinstance(chain, DecodeError):
        peer.note("error", f"dropped quick mode message {number}: it does not decrypt with the ISAKMP SA's Ka")
        return None
    if chain is not None and not (chain.payloads and isinstance(chain.payloads[0], HashPayload)):
        peer.note("error", f"dropped quick mode message {number}: it must start with HASH({number}) (RFC 2409 §5.5)")
        return None
    return chain


def _verify(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, chain: "DecodedChain", number: int, src: "Endpoint", dst: "Endpoint", **inputs) -> bool:
    _, ok = quick_hash(peer, sa, number, qm.exchange.message_id_bytes, received=chain.payloads[0].data, **inputs)
    if not ok:
        peer.note("error", f"HASH({number}) of quick mode 0x{qm.exchange.message_id:08x} does not match: the message was altered or is not from our peer; dropped")
        return False
    peer.follow(sa, src, dst)
    dpd.heard_from(peer, sa)  # an authenticated message: the peer is alive, DPD may wait
    return True


def _message_2(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    chain = _open(peer, sa, qm, data, src, dst, 2)
    if chain is None:
        return
    payloads = chain.payloads[1:]
    nonce = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    if nonce is None:
        peer.note("error", "dropped quick mode message 2: it has no Nonce payload")
        return
    qm.nr = nonce.data
    if not _verify(peer, sa, qm, chain, 2, src, dst, ni=qm.ni, rest=b"".join(chain.raw[1:])):
        return
    mid = qm.exchange.message_id
    reply = next((p for p in payloads if isinstance(p, SaPayload)), None)
    selection = proposals.esp_accept(reply.proposals[0], qm.offered) if reply and len(reply.proposals) == 1 else proposals.Selection(None, None, ["the reply must hold exactly one proposal"])
    _trace_choice(peer, qm.offered, selection)
    if selection.negotiated is None:
        _abandon(peer, sa, qm, selection.reasons[-1])
        return
    qm.esp, qm.spi_r = selection.negotiated, reply.proposals[0].spi
    ids = [p for p in payloads if isinstance(p, IdPayload)]
    if ids and (len(ids) != 2 or (ids[0], ids[1]) != (qm.id_ci, qm.id_cr)):
        _abandon(peer, sa, qm, "the responder's IDci/IDcr differ from ours (IKEv1 has no narrowing)")
        return
    if not _pfs(peer, qm, payloads):
        _abandon(peer, sa, qm, "the responder's KE payload does not fit the PFS group we offered")
        return
    local, remote = _networks(qm.id_ci), _networks(qm.id_cr)
    _trace_ids(peer, qm.id_ci, qm.id_cr, list(peer.config.local_ts), list(peer.config.remote_ts), "the responder accepted our proxy IDs", True)
    child = derive_child(peer, sa, qm, local, remote)
    hash_3, _ = quick_hash(peer, sa, 3, qm.exchange.message_id_bytes, ni=qm.ni, nr=qm.nr)
    _install(peer, sa, qm, child)
    _send(peer, sa, qm, [HashPayload(hash_3)], expect_reply=False)
    peer.note("info", f"quick mode 0x{mid:08x} done: IPsec SAs in 0x{qm.spi_i.hex()} / out 0x{qm.spi_r.hex()}")


def _pfs(peer: "Ikev1Peer", qm: QuickMode, payloads: list) -> bool:
    """With PFS, g(qm)^xy from the peer's KE; False if PFS was agreed and the KE is missing or unusable."""
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    if qm.esp.dh is None:
        return ke is None
    if ke is None:
        return False
    if qm.dh is None:
        qm.dh = phase1.generate_dh(peer, qm.esp.dh, "quick mode DH (PFS)")
    try:
        qm.g_qm = phase1.shared_secret(peer, qm.dh, ke.data)
    except DhError as e:
        peer.note("error", f"the quick mode KE value is unusable: {e}")
        return False
    return True


def _install(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, child) -> None:
    trace_child(peer, child, "installed")
    sa.children.append(child)
    peer.effect(InstallChildSa(child))


def _abandon(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, reason: str) -> None:
    peer.note("error", f"quick mode 0x{qm.exchange.message_id:08x} failed: {reason}; the ISAKMP SA stays up")
    sa.quick.pop(qm.exchange.message_id, None)


# ------------------------------------------------------------------------- responder


def _message_1(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, header: "Header", src: "Endpoint", dst: "Endpoint") -> None:
    cfg = peer.config
    qm = QuickMode(Exchange("Quick Mode", header.message_id), "responder")
    phase2_iv(peer, sa, qm.exchange)
    chain = _open(peer, sa, qm, data, src, dst, 1)
    if chain is None:
        return
    payloads = chain.payloads[1:]
    offer = next((p for p in payloads if isinstance(p, SaPayload)), None)
    nonce = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    ids = [p for p in payloads if isinstance(p, IdPayload)]
    if not _verify(peer, sa, qm, chain, 1, src, dst, rest=b"".join(chain.raw[1:])):
        return
    if offer is None or nonce is None or len(ids) not in (0, 2):
        _refuse(peer, sa, qm, NotifyType.PAYLOAD_MALFORMED, "quick mode message 1 needs SA, Nonce and none or two IDs", b"")
        return
    sa.quick[qm.exchange.message_id] = qm
    qm.ni = nonce.data
    selection, proposal = proposals.esp_select(offer, cfg.esp_proposals)
    _trace_choice(peer, [t for p in offer.proposals for t in p.transforms], selection)
    if selection.negotiated is None:
        _refuse(peer, sa, qm, NotifyType.NO_PROPOSAL_CHOSEN, "no offered ESP transform matches ours", offer.proposals[0].spi)
        return
    qm.esp, qm.spi_i = selection.negotiated, proposal.spi
    # Without IDs the IPsec SA covers the two peers' own addresses (RFC 2409 §5.5).
    qm.id_ci, qm.id_cr = ids if ids else (selectors.to_id(sa.remote.host), selectors.to_id(sa.local.host))
    accepted = selectors.inside(qm.id_ci, cfg.remote_ts) and selectors.inside(qm.id_cr, cfg.local_ts)
    reason = "inside our policy" if accepted else f"IDci/IDcr are not inside our remote {', '.join(cfg.remote_ts)} / local {', '.join(cfg.local_ts)}"
    _trace_ids(peer, qm.id_ci, qm.id_cr, list(cfg.local_ts), list(cfg.remote_ts), reason, accepted)
    if not accepted:
        _refuse(peer, sa, qm, NotifyType.INVALID_ID_INFORMATION, reason, qm.spi_i)
        return
    if not _pfs(peer, qm, payloads):
        _refuse(peer, sa, qm, NotifyType.INVALID_KEY_INFORMATION, "the KE payload is missing, unwanted or unusable for the chosen PFS setting", qm.spi_i)
        return
    qm.nr, qm.spi_r = peer.random(phase1.NONCE_LENGTH, "quick mode Nr"), peer.new_child_spi()
    rest = [SaPayload([Proposal(proposal.number, ProtocolId.IPSEC_ESP, qm.spi_r, [selection.transform])]), NoncePayload(qm.nr)]
    if qm.g_qm is not None:
        rest.append(KePayload(qm.dh.public))
    if ids:
        rest += ids
    hash_2, _ = quick_hash(peer, sa, 2, qm.exchange.message_id_bytes, ni=qm.ni, rest=encode_payloads(rest)[1])
    qm.child = derive_child(peer, sa, qm, _networks(qm.id_cr), _networks(qm.id_ci))
    _send(peer, sa, qm, [HashPayload(hash_2)] + rest, expect_reply=True)


def _refuse(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, notify_type: int, reason: str, spi: bytes) -> None:
    """Say no in a protected Informational exchange; the ISAKMP SA stays up (RFC 2408 §5.6)."""
    peer.note("error", f"refusing quick mode 0x{qm.exchange.message_id:08x}: {reason}; sending {name_of(NotifyType, notify_type)}")
    sa.quick.pop(qm.exchange.message_id, None)
    informational.send(peer, sa, [NotifyPayload(notify_type, ProtocolId.IPSEC_ESP, spi)])


def _message_3(peer: "Ikev1Peer", sa: IsakmpSa, qm: QuickMode, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    chain = _open(peer, sa, qm, data, src, dst, 3)
    if chain is None or not _verify(peer, sa, qm, chain, 3, src, dst, ni=qm.ni, nr=qm.nr):
        return
    qm.exchange.deadline = None
    # Installed only now: message 3 proves the initiator has the keys (RFC 2409 §5.5).
    _install(peer, sa, qm, qm.child)
    peer.note("info", f"quick mode 0x{qm.exchange.message_id:08x} done: IPsec SAs in 0x{qm.spi_r.hex()} / out 0x{qm.spi_i.hex()}")
