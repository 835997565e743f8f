"""What main mode and aggressive mode share: cookies, vendor IDs, NAT discovery, Diffie-Hellman,
identities, refusals before keys exist, and the end of phase 1. How each side proves its identity
(HASH, or CERT and SIG) is in `authentication`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.crypto.dh import DhGroup, DhKeyPair
from ikelab.effects import Endpoint, IkeSaUp
from ikelab.esp.udp_encap import NAT_T_PORT
from ikelab.ikev1 import proposals
from ikelab.ikev1.exchanges import authentication
from ikelab.ikev1.nat import nat_d
from ikelab.ikev1.sa import Exchange, IsakmpSa, State
from ikelab.ikev1.signatures import SignatureError
from ikelab.ikev2.config import Identity
from ikelab.pki.validation import same_identity
from ikelab.trace import DhKeyPairEvent, DhSharedEvent, IkeSaEvent, ProposalEvent
from ikelab.wire.isakmp import IdPayload, NatDPayload, NotifyPayload, Payload, Proposal, SaPayload, VendorPayload
from ikelab.wire.isakmp_constants import DPD_VENDOR_ID, NAT_T_VENDOR_ID, NotifyType, ProtocolId, name_of
from ikelab.wire.isakmp_sa import describe_transform

if TYPE_CHECKING:
    from ikelab.ikev1.engine import Ikev1Peer

NONCE_LENGTH = 32  # RFC 2409 §5 allows 8 to 256 bytes; strongSwan sends 32
EXCHANGE_NAMES = {"main": "Main Mode", "aggressive": "Aggressive Mode"}


def start(peer: "Ikev1Peer", remote: Endpoint) -> None:
    from ikelab.ikev1.exchanges import aggressive_mode, main_mode

    mode = peer.config.mode
    cky_i = new_cookie(peer, "CKY-I")
    sa = IsakmpSa("initiator", mode, cky_i, bytes(8), peer.local, remote, State.SA_SENT, Exchange(EXCHANGE_NAMES[mode], 0))
    peer.sas[cky_i] = sa
    peer.note("info", f"initiating an ISAKMP SA in {mode} mode to {remote}, initiator cookie {cky_i.hex()}")
    (main_mode if mode == "main" else aggressive_mode).start(peer, sa)


def new_cookie(peer: "Ikev1Peer", purpose: str) -> bytes:
    """8 random bytes; never all zeros, which means "no cookie yet" (RFC 2408 §2.5.3)."""
    while True:
        cookie = peer.random(8, purpose)
        if any(cookie):
            return cookie


def new_responder_sa(peer: "Ikev1Peer", mode: str, cky_i: bytes, src: Endpoint, dst: Endpoint, exchange: Exchange) -> IsakmpSa:
    sa = IsakmpSa("responder", mode, cky_i, new_cookie(peer, "CKY-R"), dst, src, State.SA_REPLIED, exchange)
    peer.sas[cky_i] = sa
    return sa


# --- proposals -------------------------------------------------------------------------------


def offered_descriptions(offer: SaPayload) -> list[str]:
    return [f"#{p.number} transform #{t.number}: {describe_transform(t, p.protocol)}" for p in offer.proposals for t in p.transforms]


def choose_offer(peer: "Ikev1Peer", offer: SaPayload, cky_i: bytes, local: Endpoint, remote: Endpoint) -> proposals.Selection | None:
    """The responder's choice from the initiator's phase 1 offer, traced; None once it has refused the
    offer (no transform of ours matches, or our certificate cannot make the kind of signature)."""
    try:
        method = authentication.own_auth_method(peer)
    except SignatureError as e:
        refuse(peer, cky_i, bytes(8), NotifyType.NO_PROPOSAL_CHOSEN, f"cannot authenticate with our certificate: {e}", local, remote)
        return None
    selection = proposals.phase1_select(offer, peer.config.ike_proposals, method)
    trace_choice(peer, offer, selection)
    if selection.negotiated is None:
        refuse(peer, cky_i, bytes(8), NotifyType.NO_PROPOSAL_CHOSEN, "no offered ISAKMP transform matches ours", local, remote)
        return None
    return selection


def trace_choice(peer: "Ikev1Peer", offer: SaPayload, selection: proposals.Selection) -> None:
    chosen = describe_transform(selection.transform, ProtocolId.ISAKMP) if selection.transform else None
    peer.emit(
        ProposalEvent,
        protocol="ISAKMP",
        offered=offered_descriptions(offer),
        configured=[s.keywords() for s in peer.config.ike_proposals],
        chosen=chosen,
        reasons=selection.reasons,
    )


def reply_sa(offer: SaPayload, selection: proposals.Selection) -> SaPayload:
    """The responder's SA: the chosen transform, as offered, in the proposal it came from."""
    proposal = next(p for p in offer.proposals if any(t is selection.transform for t in p.transforms))
    return SaPayload([Proposal(proposal.number, proposal.protocol, proposal.spi, [selection.transform])], offer.doi, offer.situation)


# --- vendor IDs and NAT discovery ------------------------------------------------------------


def vendor_ids(peer: "Ikev1Peer") -> list[VendorPayload]:
    """RFC 3947 NAT-T (NAT-D follows only if both sides send it) and RFC 3706 DPD."""
    return ([VendorPayload(NAT_T_VENDOR_ID)] if peer.config.nat_detection else []) + [VendorPayload(DPD_VENDOR_ID)]


def learn_vendor_ids(sa: IsakmpSa, payloads: list[Payload]) -> None:
    sa.peer_nat_t = any(isinstance(p, VendorPayload) and p.data == NAT_T_VENDOR_ID for p in payloads)
    sa.peer_dpd = sa.peer_dpd or any(isinstance(p, VendorPayload) and p.data == DPD_VENDOR_ID for p in payloads)


def nat_d_payloads(peer: "Ikev1Peer", sa: IsakmpSa) -> list[NatDPayload]:
    """First the hash of the address we send to, then of the one we send from (RFC 3947 §3.2)."""
    if not (peer.config.nat_detection and sa.peer_nat_t):
        return []
    prf = sa.ike.prf
    source = nat_d(prf, sa.cky_i, sa.cky_r, sa.local)
    if peer.config.force_encap:
        # strongSwan's `encap = yes`: a source hash that cannot match makes both sides believe in a
        # NAT, so IKE floats to port 4500 and ESP is UDP-encapsulated.
        source = peer.random(len(source), "fake NAT-D hash")
    return [NatDPayload(nat_d(prf, sa.cky_i, sa.cky_r, sa.remote)), NatDPayload(source)]


def check_nat(peer: "Ikev1Peer", sa: IsakmpSa, payloads: list[Payload], src: Endpoint, dst: Endpoint) -> None:
    """Compare the peer's NAT-D hashes with the addresses this datagram really carried."""
    hashes = [p.data for p in payloads if isinstance(p, NatDPayload)]
    if not (peer.config.nat_detection and sa.peer_nat_t):
        return
    if len(hashes) < 2:
        peer.note("info", "the peer sent no NAT-D payloads: NAT traversal is off")
        return
    prf = sa.ike.prf
    # With force_encap we faked our own hash: we act as if a NAT were in front of us.
    sa.nat_local = peer.config.force_encap or nat_d(prf, sa.cky_i, sa.cky_r, dst) != hashes[0]
    sa.nat_remote = nat_d(prf, sa.cky_i, sa.cky_r, src) not in hashes[1:]
    if sa.nat_local or sa.nat_remote:
        where = " and ".join(w for w, on in (("in front of us", sa.nat_local), ("in front of the peer", sa.nat_remote)) if on)
        peer.note("info", f"NAT detected {where}: the NAT-D hashes differ from {src} -> {dst}")
    else:
        peer.note("info", f"no NAT: the peer's NAT-D hashes match {src} -> {dst}")


def float_to_nat_t_port(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """RFC 3947 §4: behind a NAT the initiator moves IKE to UDP 4500 with its first encrypted
    message of phase 1 (main mode 5, aggressive mode 3); ESP will travel in UDP there too."""
    if (sa.nat_local or sa.nat_remote) and sa.local.port != NAT_T_PORT:
        sa.local, sa.remote = Endpoint(sa.local.host, NAT_T_PORT), Endpoint(sa.remote.host, NAT_T_PORT)
        peer.note("info", f"NAT in the path: IKE floats to UDP {NAT_T_PORT} ({sa.local} -> {sa.remote}) with the non-ESP marker, and ESP will be UDP-encapsulated (RFC 3948)")


# --- Diffie-Hellman --------------------------------------------------------------------------


def generate_dh(peer: "Ikev1Peer", group: DhGroup, purpose: str) -> DhKeyPair:
    keypair = group.generate(peer.rng, f"{peer.config.name} {purpose} {group.name} private")
    peer.emit(DhKeyPairEvent, group=group.number, group_name=group.name, private=keypair.private, public=keypair.public)
    return keypair


def shared_secret(peer: "Ikev1Peer", keypair: DhKeyPair, peer_public: bytes) -> bytes:
    """g^xy from the peer's KE data; raises DhError for an unusable public value."""
    shared = keypair.shared_secret(peer_public)
    g = keypair.group
    peer.emit(DhSharedEvent, group=g.number, group_name=g.name, own_public=keypair.public, peer_public=peer_public, shared=shared)
    return shared


# --- identities ---------------------------------------------------------------------------


def own_id(peer: "Ikev1Peer") -> IdPayload:
    """Protocol and port left at zero, as RFC 2407 §4.6.2 allows for phase 1 and strongSwan sends."""
    ident = peer.config.local_id
    return IdPayload(ident.id_type, ident.data)


def check_identity(peer: "Ikev1Peer", sa: IsakmpSa, id_payload: IdPayload, id_b: bytes) -> str | None:
    """Record who the peer says it is; the reason to refuse it, or None."""
    sa.peer_id, sa.peer_id_b = Identity.from_wire(id_payload.id_type, id_payload.data), id_b
    expected = peer.config.remote_id
    if expected is not None and not same_identity(expected.id_type, expected.data, sa.peer_id.id_type, sa.peer_id.data):
        return f"the peer says it is {sa.peer_id} but we expect {expected}"
    return None


# --- the end of phase 1 ----------------------------------------------------------------------


def refuse(peer: "Ikev1Peer", cky_i: bytes, cky_r: bytes, notify_type: int, reason: str, src: Endpoint, dst: Endpoint) -> None:
    """Tell the peer why in a clear-text Informational: before phase 1 ends there are no shared keys to use."""
    peer.note("error", f"{reason}: sending {name_of(NotifyType, notify_type)}")
    notify = NotifyPayload(notify_type, ProtocolId.ISAKMP, cky_i + cky_r)
    peer.send_unprotected(cky_i, cky_r, [notify], src, dst, "phase 1 has not produced keys the peer would share")


def refuse_and_fail(peer: "Ikev1Peer", sa: IsakmpSa, notify_type: int, reason: str) -> None:
    refuse(peer, sa.cky_i, sa.cky_r, notify_type, reason, sa.local, sa.remote)
    peer.fail(sa, reason, name_of(NotifyType, notify_type))


def established(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    """Phase 1 is done: its last CBC block seeds every later IV; the initiator goes on to quick mode."""
    from ikelab.ikev1.exchanges import dpd, quick_mode

    sa.state = State.ESTABLISHED
    sa.exchange.deadline = None
    sa.last_phase1_block = sa.exchange.iv
    peer.emit(IkeSaEvent, state="established", spi_i=sa.cky_i, spi_r=sa.cky_r, algorithms=sa.ike.keywords())
    peer.effect(IkeSaUp(sa.cky_i, sa.cky_r))
    dpd.start(peer, sa)
    if sa.is_initiator:
        quick_mode.start(peer, sa)


def payload_index(payloads: list, cls: type) -> int | None:
    """Where the first payload of `cls` sits in the chain (HASH_I/R covers the bytes around it)."""
    return next((i for i, p in enumerate(payloads) if isinstance(p, cls)), None)
