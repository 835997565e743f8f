"""IKE_SA_INIT (RFC 7296 §1.2): negotiate the IKE SA's algorithms, exchange DH values and nonces.

    HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*)  -->
                                   <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*)

The responder answers NO_PROPOSAL_CHOSEN when nothing matches, and INVALID_KE_PAYLOAD when the
KE payload is for another group than the one chosen; the initiator then retries with that group.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes

from ikelab.crypto.dh import DhError, DhGroup, dh_group
from ikelab.effects import Endpoint, Send
from ikelab.esp.udp_encap import NAT_T_PORT
from ikelab.ikev2 import proposals
from ikelab.ikev2.exchanges import error_notifies, ike_auth, notify_name
from ikelab.ikev2.ike_sa import IkeSa, Received, State
from ikelab.ikev2.keys import derive_ike_keys
from ikelab.ikev2.nat import nat_hash
from ikelab.pki.signature_auth import decode_signature_hash_algorithms, encode_signature_hash_algorithms, hash_names
from ikelab.trace import DhKeyPairEvent, DhSharedEvent
from ikelab.wire.ikev2 import Header, KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload
from ikelab.wire.ikev2_constants import ExchangeType, NotifyType, ProtocolId

if TYPE_CHECKING:
    from ikelab.ikev2.engine import Ikev2Peer

# Enum members read once: one read from its class goes through a Python-level lookup (EnumType has
# __getattr__), and the notify scans below test each notify against them.
NAT_SOURCE, NAT_DESTINATION = NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP
FRAGMENTATION_SUPPORTED, SIGNATURE_HASHES = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.SIGNATURE_HASH_ALGORITHMS
COOKIE, INVALID_KE_PAYLOAD = NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD
IKE, IKE_SA_INIT = ProtocolId.IKE, ExchangeType.IKE_SA_INIT
NONCE_LENGTH = 32  # RFC 7296 §2.10: at least half the PRF key size and at least 16 bytes


def start(peer: "Ikev2Peer", remote: Endpoint) -> None:
    cfg = peer.config
    spi_i = peer.random(8, "IKE SPIi")
    local = peer.local
    if cfg.ike_port == NAT_T_PORT and local.port != NAT_T_PORT:
        # Starting on 4500 (e.g. where port 500 is blocked): both ends of the exchange use it.
        local, remote = Endpoint(local.host, cfg.ike_port), Endpoint(remote.host, cfg.ike_port)
    sa = IkeSa("initiator", spi_i, bytes(8), local, remote, State.INIT_SENT)
    sa.ni = peer.random(NONCE_LENGTH, "Ni")
    peer.sas[spi_i] = sa
    peer.note("info", f"initiating IKE SA {spi_i.hex()} to {remote}")
    _send_request(peer, sa, cfg.ike_proposals[0].dh[0])


def prepare(peer: "Ikev2Peer") -> None:
    """The key pair of the DH group we offer first (and would choose first as responder), made before
    any message, so neither our request nor our response waits for it. It is drawn under the purpose
    it is used with, so a seeded run gets the same values as without it."""
    groups = peer.config.ike_proposals[0].dh if peer.config.ike_proposals else ()
    if groups and _dh_purpose(peer, groups[0]) not in peer.spare_dh:
        purpose = _dh_purpose(peer, groups[0])
        peer.spare_dh[purpose] = groups[0].generate(peer.rng, purpose)


def _dh_purpose(peer: "Ikev2Peer", group: DhGroup) -> str:
    return f"{peer.config.name} DH {group.name} private"


def _generate_dh(peer: "Ikev2Peer", sa: IkeSa, group: DhGroup) -> None:
    purpose = _dh_purpose(peer, group)
    sa.dh = peer.spare_dh.pop(purpose, None) or group.generate(peer.rng, purpose)
    peer.record(DhKeyPairEvent(peer.config.name, peer.now, group.number, group.name, sa.dh.private, sa.dh.public))


def _nat_notifies(peer: "Ikev2Peer", sa: IkeSa, spi_r: bytes, local: Endpoint, remote: Endpoint) -> list[NotifyPayload]:
    source = nat_hash(sa.spi_i, spi_r, local)
    if peer.config.force_encap:
        # strongSwan's `encap = yes`: a source hash that cannot match makes both sides believe in a
        # NAT, so IKE floats to port 4500 and ESP is UDP-encapsulated.
        source = peer.random(len(source), "fake NAT detection hash")
    return [
        NotifyPayload(NAT_SOURCE, data=source),
        NotifyPayload(NAT_DESTINATION, data=nat_hash(sa.spi_i, spi_r, remote)),
    ]


def _send_request(peer: "Ikev2Peer", sa: IkeSa, group: DhGroup, cookie: bytes = b"") -> None:
    if sa.dh is None or sa.dh.group != group:
        _generate_dh(peer, sa, group)
    sa.offered_ike = proposals.offer(peer.config.ike_proposals, IKE, dh_first=group.number)
    payloads = [NotifyPayload(COOKIE, data=cookie)] if cookie else []
    payloads += [SaPayload(sa.offered_ike), KePayload(group.number, sa.dh.public), NoncePayload(sa.ni)]
    if peer.config.nat_detection:
        payloads += _nat_notifies(peer, sa, bytes(8), sa.local, sa.remote)
    payloads += _fragmentation_supported(peer.config.fragmentation)
    payloads += _signature_hashes(peer)
    sa.next_request_id = 0  # a retried IKE_SA_INIT keeps message ID 0
    peer.send_request(sa, IKE_SA_INIT, payloads, lambda r: _receive_response(peer, sa, r))
    sa.init_request = sa.pending.data


def _fragmentation_supported(offer: bool) -> list[NotifyPayload]:
    """RFC 7383 §2.3: we can send and receive SKF fragments."""
    return [NotifyPayload(FRAGMENTATION_SUPPORTED)] if offer else []


def _notifies_by_type(payloads: list) -> dict[int, list[NotifyPayload]]:
    """A message's notifies by type, in order: read once for the cookie, NAT detection, signature
    hashes and fragmentation, rather than scanned for each."""
    by_type: dict[int, list[NotifyPayload]] = {}
    for p in payloads:
        if isinstance(p, NotifyPayload):
            by_type.setdefault(p.notify_type, []).append(p)
    return by_type


def _negotiate_fragmentation(peer: "Ikev2Peer", sa: IkeSa, notifies: dict[int, list[NotifyPayload]]) -> None:
    """Fragmentation is on for this IKE SA when both peers announced it (RFC 7383 §2.3)."""
    offered = FRAGMENTATION_SUPPORTED in notifies
    sa.fragmentation = offered and peer.config.fragmentation
    if sa.fragmentation:
        peer.note("info", f"both peers support IKE fragmentation (RFC 7383): encrypted messages bigger than fragment_size "
                          f"{peer.config.fragment_size} go out as SKF fragments")
    elif offered:
        peer.note("info", "the peer supports IKE fragmentation, but we do not offer it (fragmentation = false)")
    elif peer.config.fragmentation:
        peer.note("info", "the peer does not support IKE fragmentation: large messages will rely on IP fragmentation")


def _signature_hashes(peer: "Ikev2Peer") -> list[NotifyPayload]:
    """RFC 7427 §4: the hashes we accept in signatures; sent when we authenticate with certificates."""
    if peer.config.auth != "pubkey":
        return []
    return [NotifyPayload(SIGNATURE_HASHES, data=encode_signature_hash_algorithms())]


def _peer_hashes(peer: "Ikev2Peer", sa: IkeSa, notifies: dict[int, list[NotifyPayload]]) -> None:
    if SIGNATURE_HASHES not in notifies:
        return
    notify = notifies[SIGNATURE_HASHES][0]
    try:
        sa.peer_hashes = decode_signature_hash_algorithms(notify.data)
        peer.note("info", f"the peer accepts signatures with {', '.join(hash_names(sa.peer_hashes))} (RFC 7427)")
    except ValueError as e:
        peer.note("warning", f"ignored a malformed SIGNATURE_HASH_ALGORITHMS notify: {e}")


def _check_nat(peer: "Ikev2Peer", sa: IkeSa, received: "Received", notifies: dict[int, list[NotifyPayload]]) -> None:
    """Compare the peer's NAT detection hashes with the addresses this datagram really carried."""
    h = received.header
    sources = [n.data for n in notifies.get(NAT_SOURCE, ())]
    dests = [n.data for n in notifies.get(NAT_DESTINATION, ())]
    if not sources or not dests:
        peer.note("info", "the peer sent no NAT detection notifies: NAT traversal is off")
        return
    sa.nat_remote = nat_hash(h.spi_i, h.spi_r, received.src) not in sources
    # With force_encap we faked our own hash: we act as if a NAT were in front of us.
    sa.nat_local = peer.config.force_encap or nat_hash(h.spi_i, h.spi_r, received.dst) not in dests
    if sa.nat_local or sa.nat_remote:
        where = " and ".join(w for w, on in (("in front of us", sa.nat_local), ("in front of the peer", sa.nat_remote)) if on)
        peer.note("info", f"NAT detected {where}: the hashes of the addresses differ from what arrived")
    else:
        peer.note("info", f"no NAT: the peer's NAT detection hashes match {received.src} -> {received.dst}")


def _compute_shared(peer: "Ikev2Peer", sa: IkeSa, peer_public: bytes) -> None:
    sa.shared_secret = sa.dh.shared_secret(peer_public)
    g = sa.dh.group
    peer.record(DhSharedEvent(peer.config.name, peer.now, g.number, g.name, sa.dh.public, peer_public, sa.shared_secret))


# ------------------------------------------------------------------------- responder

HALF_OPEN_LIFETIME = 30.0  # seconds a half-open IKE SA waits for IKE_AUTH before it is dropped


def _cookie(peer: "Ikev2Peer", ni: bytes, src: Endpoint, spi_i: bytes) -> bytes:
    """RFC 7296 §2.6: <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>); stateless to check."""
    if not peer.cookie_secret:
        peer.cookie_secret = peer.random(32, "cookie secret")
    digest = hashes.Hash(hashes.SHA256())
    digest.update(ni + ipaddress.ip_address(src.host).packed + spi_i + peer.cookie_secret)
    return b"\x01" + digest.finalize()


def _cookie_ok(peer: "Ikev2Peer", message, src: Endpoint, dst: Endpoint, header: Header) -> bool:
    """Above the half-open threshold, only requests that return our cookie create state."""
    threshold = peer.config.cookie_threshold
    if threshold is None:
        return True
    half_open = sum(1 for sa in peer.sas.values() if sa.role == "responder" and sa.state is State.INIT_DONE)
    if half_open < threshold:
        return True
    nonce = message.find(NoncePayload)
    expected = _cookie(peer, nonce.data if nonce else b"", src, header.spi_i)
    first = message.payloads[0] if message.payloads else None
    if isinstance(first, NotifyPayload) and first.notify_type == COOKIE:
        if first.data == expected:
            peer.note("info", f"{half_open} half-open IKE SAs, but this request returns our cookie: accepted")
            return True
        peer.note("warning", "the request carries a cookie that is not ours (or is stale): asking again")
    else:
        peer.note("warning", f"{half_open} half-open IKE SAs (threshold {threshold}): answering with a COOKIE and keeping no state")
    peer.send_bare_response(header, [NotifyPayload(COOKIE, data=expected)], src, dst)
    return False


def receive_request(peer: "Ikev2Peer", data: bytes, header: Header, src: Endpoint, dst: Endpoint) -> None:
    for sa in peer.sas.values():
        if sa.role == "responder" and sa.spi_i == header.spi_i and sa.remote == src:
            if data == sa.init_request and sa.last_response:
                peer.note("info", "IKE_SA_INIT request arrived again: retransmitting our response")
                _, response, _ = sa.last_response
                peer.emit_message("retransmitted", response, sa.local, sa.remote)
                peer.effect(Send(response, sa.local, sa.remote, "IKE_SA_INIT response (retransmission)"))
            else:
                peer.note("warning", f"dropped a second, different IKE_SA_INIT for IKE SA {header.spi_i.hex()}")
            return
    if header.message_id != 0:
        peer.note("warning", f"dropped IKE_SA_INIT request with message ID {header.message_id}: it must be 0")
        return
    message = peer.decode_or_answer(data, header, src, dst)
    if message is None:
        return
    peer.emit_message("received", data, src, dst, header=header, summary=message.summary)  # written when read
    request = Received(data, message, [], src, dst)
    notifies = _notifies_by_type(message.payloads)
    cfg = peer.config
    if not _cookie_ok(peer, message, src, dst, header):
        return
    sa_payload, ke, nonce = message.find(SaPayload), message.find(KePayload), message.find(NoncePayload)
    if sa_payload is None or ke is None or nonce is None:
        missing = ", ".join(n for n, p in (("SA", sa_payload), ("KE", ke), ("Nonce", nonce)) if p is None)
        peer.note("warning", f"IKE_SA_INIT request lacks {missing}: answering INVALID_SYNTAX")
        peer.send_bare_response(header, [NotifyPayload(NotifyType.INVALID_SYNTAX)], src, dst)
        return
    if not 16 <= len(nonce.data) <= 256:
        peer.note("warning", f"nonce of {len(nonce.data)} bytes is outside 16..256 (RFC 7296 §3.9): answering INVALID_SYNTAX")
        peer.send_bare_response(header, [NotifyPayload(NotifyType.INVALID_SYNTAX)], src, dst)
        return

    selection = proposals.select(sa_payload.proposals, cfg.ike_proposals, IKE)
    peer.record(proposals.choice_event(peer.config.name, peer.now, "IKE", sa_payload.proposals, cfg.ike_proposals, selection))
    if selection.proposal is None:
        peer.note("error", "no offered IKE proposal matches ours: answering NO_PROPOSAL_CHOSEN")
        peer.send_bare_response(header, [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)], src, dst)
        return
    chosen = selection.negotiated
    if ke.group != chosen.dh.number:
        peer.note(
            "warning",
            f"the KE payload is for group {ke.group} but we chose {chosen.dh.name} ({chosen.dh.number}): "
            "answering INVALID_KE_PAYLOAD so the initiator retries with our group",
        )
        notify = NotifyPayload(INVALID_KE_PAYLOAD, data=chosen.dh.number.to_bytes(2, "big"))
        peer.send_bare_response(header, [notify], src, dst)
        return

    sa = IkeSa("responder", header.spi_i, peer.random(8, "IKE SPIr"), dst, src, State.INIT_DONE)
    sa.ni, sa.nr, sa.ike = nonce.data, peer.random(NONCE_LENGTH, "Nr"), chosen
    _generate_dh(peer, sa, chosen.dh)
    try:
        _compute_shared(peer, sa, ke.data)
    except DhError as e:
        peer.note("error", f"the initiator's KE value is invalid: {e}; answering INVALID_SYNTAX")
        peer.send_bare_response(header, [NotifyPayload(NotifyType.INVALID_SYNTAX)], src, dst)
        return
    if cfg.nat_detection:
        _check_nat(peer, sa, request, notifies)
    _peer_hashes(peer, sa, notifies)
    _negotiate_fragmentation(peer, sa, notifies)
    derive_ike_keys(peer, sa)
    sa.init_request = data
    sa.expected_request_id = 1
    peer.sas[sa.spi_r] = sa
    sa.timers.append((peer.now + HALF_OPEN_LIFETIME, "expire-half-open"))
    chosen_proposal = selection.proposal
    reply = Proposal(chosen_proposal.number, chosen_proposal.protocol, b"", chosen_proposal.transforms)  # no SPI in IKE_SA_INIT
    payloads = [SaPayload([reply]), KePayload(chosen.dh.number, sa.dh.public), NoncePayload(sa.nr)]
    if cfg.nat_detection:
        payloads += _nat_notifies(peer, sa, sa.spi_r, sa.local, sa.remote)
    payloads += ike_auth.certificate_request(peer) + _fragmentation_supported(sa.fragmentation) + _signature_hashes(peer)
    peer.send_response(sa, header, payloads)
    sa.init_response = sa.last_response[1]


# ------------------------------------------------------------------------- initiator


def _receive_response(peer: "Ikev2Peer", sa: IkeSa, response: "Received") -> None:
    cfg = peer.config
    message = response.message
    errors = error_notifies(message.payloads)
    for n in errors:
        if n.notify_type == INVALID_KE_PAYLOAD:
            _retry_with_group(peer, sa, n)
            return
    notifies = _notifies_by_type(message.payloads)
    if COOKIE in notifies:
        _retry_with_cookie(peer, sa, notifies[COOKIE][0].data)
        return
    if errors:
        name = notify_name(errors[0])
        peer.fail(sa, f"the responder refused IKE_SA_INIT with {name}", name)
        return
    sa_payload, ke, nonce = message.find(SaPayload), message.find(KePayload), message.find(NoncePayload)
    if sa_payload is None or ke is None or nonce is None or len(sa_payload.proposals) != 1:
        peer.fail(sa, "the IKE_SA_INIT response lacks SA (with exactly one proposal), KE or Nonce", "INVALID_SYNTAX")
        return
    selection = proposals.accept_reply(sa_payload.proposals[0], sa.offered_ike, cfg.ike_proposals, IKE)
    peer.record(proposals.choice_event(peer.config.name, peer.now, "IKE", sa.offered_ike, cfg.ike_proposals, selection))
    if selection.negotiated is None:
        peer.fail(sa, selection.reasons[-1], "NO_PROPOSAL_CHOSEN")
        return
    if selection.negotiated.dh != sa.dh.group or ke.group != sa.dh.group.number:
        peer.fail(sa, f"the responder chose DH group {selection.negotiated.dh.number} / KE {ke.group}, but our KE used {sa.dh.group.number}", "INVALID_KE_PAYLOAD")
        return
    sa.spi_r = message.header.spi_r
    sa.nr, sa.ike = nonce.data, selection.negotiated
    try:
        _compute_shared(peer, sa, ke.data)
    except DhError as e:
        peer.fail(sa, f"the responder's KE value is invalid: {e}", "INVALID_SYNTAX")
        return
    if cfg.nat_detection:
        _check_nat(peer, sa, response, notifies)
    _peer_hashes(peer, sa, notifies)
    _negotiate_fragmentation(peer, sa, notifies)
    derive_ike_keys(peer, sa)
    sa.init_response = response.data
    sa.state = State.INIT_DONE
    if (sa.nat_local or sa.nat_remote) and sa.local.port != NAT_T_PORT:
        # RFC 7296 §2.23: behind a NAT, continue on port 4500 (where ESP-in-UDP will go too).
        sa.local, sa.remote = Endpoint(sa.local.host, NAT_T_PORT), Endpoint(sa.remote.host, NAT_T_PORT)
        peer.note("info", f"NAT in the path: IKE floats to UDP {NAT_T_PORT} ({sa.local} -> {sa.remote}) with the non-ESP marker, and ESP will be UDP-encapsulated (RFC 3948)")
    ike_auth.start(peer, sa)


MAX_COOKIE_RETRIES = 3


def _retry_with_cookie(peer: "Ikev2Peer", sa: IkeSa, cookie: bytes) -> None:
    """RFC 7296 §2.6: send the same IKE_SA_INIT again, with the cookie as its first payload."""
    sa.cookie_retries += 1
    if sa.cookie_retries > MAX_COOKIE_RETRIES or not 1 <= len(cookie) <= 64:
        peer.fail(sa, "the responder keeps demanding a cookie", "COOKIE")
        return
    peer.note("info", f"the responder is under load and demands a cookie ({len(cookie)} bytes): sending IKE_SA_INIT again with N(COOKIE) first")
    _send_request(peer, sa, sa.dh.group, cookie)


def _retry_with_group(peer: "Ikev2Peer", sa: IkeSa, notify: NotifyPayload) -> None:
    wanted = int.from_bytes(notify.data[:2], "big") if len(notify.data) >= 2 else 0
    ours = [g for spec in peer.config.ike_proposals for g in spec.dh]
    group = next((g for g in ours if g.number == wanted), None)
    if group is None or group == sa.dh.group:
        peer.fail(sa, f"the responder asked for DH group {wanted}, which we do not offer", "INVALID_KE_PAYLOAD")
        return
    peer.note("info", f"the responder wants DH group {group.name} ({wanted}): retrying IKE_SA_INIT with a new KE for that group")
    _send_request(peer, sa, dh_group(wanted))
