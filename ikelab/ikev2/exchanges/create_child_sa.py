"""CREATE_CHILD_SA (RFC 7296 §1.3): another Child SA, a Child SA rekey, or an IKE SA rekey.

    HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr}  -->      new or rekeyed Child SA
                              <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
    HDR, SK {SA, Ni, KEi}  -->                                  IKE SA rekey
                              <--  HDR, SK {SA, Nr, KEr}

A KE payload in a Child SA exchange gives perfect forward secrecy: the new keys mix in a fresh
g^ir. After a rekey, the initiator deletes the old SA with an INFORMATIONAL exchange. When both
peers rekey the same Child SA at once (RFC 7296 §2.8.1), the SA from the exchange with the lowest
of the four nonces is redundant and its initiator deletes it; the other initiator deletes the old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ikelab.crypto.dh import DhError, DhGroup, DhKeyPair
from ikelab.effects import InstallChildSa
from ikelab.esp.sa import ChildSa
from ikelab.ikev2 import proposals, selectors
from ikelab.ikev2.exchanges import error_notifies, notify_name
from ikelab.ikev2.ike_sa import IkeSa, State
from ikelab.ikev2.keys import derive_child_sa, derive_rekeyed_ike_keys
from ikelab.trace import DhKeyPairEvent, DhSharedEvent, IkeSaEvent, TrafficSelectorEvent
from ikelab.wire.ikev2 import KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, TsPayload
from ikelab.wire.ikev2_constants import ExchangeType, NotifyType, ProtocolId

if TYPE_CHECKING:
    from ikelab.ikev2.engine import Ikev2Peer, Received

NONCE_LENGTH = 32
RETRY_AFTER_BUSY = 1.0  # seconds before asking again when the peer was busy (TEMPORARY_FAILURE)


@dataclass
class ChildRequest:
    """What we sent in a CREATE_CHILD_SA request for a Child SA, kept until the response."""

    spi: bytes
    nonce: bytes
    dh: DhKeyPair | None
    offered: list
    rekeying: ChildSa | None
    collision: tuple[bytes, bytes, ChildSa] | None = None  # the peer's rekey of the same SA: (Ni, Nr, its new SA)
    tried_groups: list[int] = field(default_factory=list)


def _keypair(peer: "Ikev2Peer", group: DhGroup | None) -> DhKeyPair | None:
    if group is None:
        return None
    pair = group.generate(peer.rng, f"{peer.config.name} DH {group.name} private (CREATE_CHILD_SA)")
    peer.emit(DhKeyPairEvent, group=group.number, group_name=group.name, private=pair.private, public=pair.public)
    return pair


def _shared(peer: "Ikev2Peer", pair: DhKeyPair, peer_public: bytes) -> bytes:
    shared = pair.shared_secret(peer_public)
    g = pair.group
    peer.emit(DhSharedEvent, group=g.number, group_name=g.name, own_public=pair.public, peer_public=peer_public, shared=shared)
    return shared


def _trace_choice(peer: "Ikev2Peer", protocol: str, offered: list, configured, selection) -> None:
    peer.record(proposals.choice_event(peer.config.name, peer.now, protocol, offered, configured, selection))


def _install(peer: "Ikev2Peer", sa: IkeSa, child: ChildSa) -> None:
    sa.children.append(child)
    peer.effect(InstallChildSa(child))
    peer.schedule(sa, peer.config.rekey_child_after, f"rekey-child {child.inbound.spi.hex()}")


# ------------------------------------------------------------------------- Child SA, initiator


def create_child(peer: "Ikev2Peer", sa: IkeSa) -> None:
    _request_child(peer, sa, None)


def rekey_child(peer: "Ikev2Peer", sa: IkeSa, child: ChildSa | None = None, spi: str = "") -> None:
    """Rekey `child`, else the one whose inbound SPI is `spi` (hex: a retry names it), else the first."""
    if spi:
        child = next((c for c in sa.children if c.inbound.spi.hex() == spi), None)
        if child is None:
            peer.note("info", f"the Child SA with inbound SPI 0x{spi} is gone meanwhile (rekeyed or deleted): no rekey needed")
            return
    child = child or (sa.children[0] if sa.children else None)
    if child is None:
        peer.note("warning", "no Child SA to rekey")
        return
    peer.note("info", f"rekeying Child SA {child.name} (inbound SPI 0x{child.inbound.spi.hex()})")
    _request_child(peer, sa, child)


def _request_child(peer: "Ikev2Peer", sa: IkeSa, rekeying: ChildSa | None, group: DhGroup | None = None, tried=None) -> None:
    cfg = peer.config
    specs = cfg.esp_proposals
    if group is None and specs[0].dh:
        group = specs[0].dh[0]
    ctx = ChildRequest(peer.new_child_spi(), peer.random(NONCE_LENGTH, "Ni (CREATE_CHILD_SA)"), None, [], rekeying,
                       tried_groups=list(tried or []))
    ctx.dh = _keypair(peer, group)
    ctx.offered = proposals.offer(specs, ProtocolId.ESP, spi=ctx.spi, dh_first=group.number if group else None)
    payloads = []
    if rekeying is not None:
        payloads.append(NotifyPayload(NotifyType.REKEY_SA, protocol=ProtocolId.ESP, spi=rekeying.inbound.spi))
    payloads += [SaPayload(ctx.offered), NoncePayload(ctx.nonce)]
    if ctx.dh is not None:
        payloads.append(KePayload(group.number, ctx.dh.public))
    local = list(rekeying.local_ts) if rekeying else list(cfg.local_ts)
    remote = list(rekeying.remote_ts) if rekeying else list(cfg.remote_ts)
    payloads += [TsPayload(True, [selectors.from_network(n) for n in local]),
                 TsPayload(False, [selectors.from_network(n) for n in remote])]
    if rekeying is not None:
        sa.rekeying[rekeying.inbound.spi] = ctx
    peer.send_request(sa, ExchangeType.CREATE_CHILD_SA, payloads, lambda r: _child_response(peer, sa, ctx, r))


def _child_response(peer: "Ikev2Peer", sa: IkeSa, ctx: ChildRequest, response: "Received") -> None:
    if ctx.rekeying is not None:
        sa.rekeying.pop(ctx.rekeying.inbound.spi, None)
    payloads = response.inner
    errors = error_notifies(payloads)
    for n in errors:
        if n.notify_type == NotifyType.INVALID_KE_PAYLOAD and len(n.data) >= 2:
            wanted = int.from_bytes(n.data[:2], "big")
            group = next((g for s in peer.config.esp_proposals for g in s.dh if g.number == wanted), None)
            tried = ctx.tried_groups + ([ctx.dh.group.number] if ctx.dh else [])
            if group is not None and wanted not in tried:
                peer.note("info", f"the responder wants DH group {group.name} for PFS: retrying")
                # On the IKE SA holding the Child SAs when it runs: a rekey may have replaced this one by then.
                peer.start_request(sa.current(), lambda: _request_child(peer, sa.current(), ctx.rekeying, group, tried))
                return
    # If the IKE SA was rekeyed while our request was in flight, its Child SAs (and the one we
    # rekey) moved to the new IKE SA: that one takes the result (RFC 7296 §2.8).
    holder = sa.current()
    if errors and _busy(peer, sa, errors, "rekey-child" if ctx.rekeying is not None else "create-child",
                        gone=ctx.rekeying is not None and ctx.rekeying not in holder.children,
                        spi=ctx.rekeying.inbound.spi.hex() if ctx.rekeying is not None else ""):
        return
    if errors:
        peer.note("error", f"the responder refused the Child SA with {notify_name(errors[0])}")
        return
    sa_r = next((p for p in payloads if isinstance(p, SaPayload)), None)
    nonce = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    tsi = next((p for p in payloads if isinstance(p, TsPayload) and p.initiator), None)
    tsr = next((p for p in payloads if isinstance(p, TsPayload) and not p.initiator), None)
    if None in (sa_r, nonce, tsi, tsr) or len(sa_r.proposals) != 1 or len(sa_r.proposals[0].spi) != 4:
        peer.note("error", "the CREATE_CHILD_SA response lacks SA, Nonce, TSi or TSr: no Child SA")
        return
    selection = proposals.accept_reply(sa_r.proposals[0], ctx.offered, peer.config.esp_proposals, ProtocolId.ESP)
    _trace_choice(peer, "ESP", ctx.offered, peer.config.esp_proposals, selection)
    if selection.negotiated is None:
        peer.note("error", f"unacceptable Child SA reply: {selection.reasons[-1]}")
        return
    g_ir = None
    if selection.negotiated.dh is not None:
        if ctx.dh is None or ke is None or ke.group != ctx.dh.group.number:
            peer.note("error", "the responder chose PFS with a group our KE does not match: no Child SA")
            return
        try:
            g_ir = _shared(peer, ctx.dh, ke.data)
        except DhError as e:
            peer.note("error", f"the responder's KE value is invalid: {e}")
            return
    child = derive_child_sa(
        peer, sa, selection.negotiated,
        spi_from_initiator=ctx.spi, spi_from_responder=sa_r.proposals[0].spi,
        local_ts=[n for t in tsi.selectors for n in selectors.to_networks(t)],
        remote_ts=[n for t in tsr.selectors for n in selectors.to_networks(t)],
        ni=ctx.nonce, nr=nonce.data, g_ir=g_ir, we_initiated=True,
    )
    _install(peer, holder, child)
    if ctx.rekeying is not None:
        _finish_rekey(peer, holder, ctx, child, nonce.data)


def _finish_rekey(peer: "Ikev2Peer", sa: IkeSa, ctx: ChildRequest, new: ChildSa, nr: bytes) -> None:
    from ikelab.ikev2.exchanges import informational

    if ctx.collision is not None:
        their_ni, their_nr, theirs = ctx.collision
        lowest = min(ctx.nonce, nr, their_ni, their_nr)
        if lowest in (ctx.nonce, nr):
            peer.note("info", "both peers rekeyed the same Child SA: ours holds the lowest nonce, so it is redundant and we delete it (RFC 7296 §2.8.1)")
            peer.start_request(sa, lambda: informational.delete_child(peer, sa, new))
            return
        peer.note("info", "both peers rekeyed the same Child SA: the peer's exchange holds the lowest nonce, so the peer deletes its new SA; we delete the old one")
    peer.start_request(sa, lambda: informational.delete_child(peer, sa, ctx.rekeying))


# ------------------------------------------------------------------------- IKE SA rekey, initiator


def rekey_ike(peer: "Ikev2Peer", sa: IkeSa) -> None:
    cfg = peer.config
    group = cfg.ike_proposals[0].dh[0]
    new_spi = peer.random(8, "IKE SPIi (rekey)")
    nonce = peer.random(NONCE_LENGTH, "Ni (IKE rekey)")
    pair = _keypair(peer, group)
    offered = proposals.offer(cfg.ike_proposals, ProtocolId.IKE, spi=new_spi, dh_first=group.number)
    peer.note("info", f"rekeying IKE SA {sa.label}")
    sa.rekeying_ike = True  # until the answer: the peer's Child SA requests get TEMPORARY_FAILURE meanwhile
    payloads = [SaPayload(offered), NoncePayload(nonce), KePayload(group.number, pair.public)]
    peer.send_request(sa, ExchangeType.CREATE_CHILD_SA, payloads,
                      lambda r: _ike_rekey_response(peer, sa, new_spi, nonce, pair, offered, r))


def _busy(peer: "Ikev2Peer", sa: IkeSa, errors: list, action: str, gone: bool, spi: str = "") -> bool:
    """TEMPORARY_FAILURE: the peer is in the middle of a colliding exchange on this IKE SA (a rekey
    of its own, RFC 7296 §2.25); ours is tried again shortly, unless the peer's replaced the SA.
    The retry goes to the IKE SA that holds the Child SAs by then: the old one's timers never fire
    once it is rekeyed (and a timer set while our own IKE rekey is in flight moves with the Child SAs).
    A Child SA rekey's retry names that Child SA (`spi`, its inbound SPI in hex), not "the first one"."""
    if not any(n.notify_type == NotifyType.TEMPORARY_FAILURE for n in errors):
        return False
    if gone:
        peer.note("info", f"the peer answered TEMPORARY_FAILURE and has replaced that SA meanwhile: no {action} needed")
    else:
        holder = sa.current()
        moved = f" on the rekeyed IKE SA {holder.label}" if holder is not sa else ""
        peer.note("info", f"the peer answered TEMPORARY_FAILURE, busy with another exchange (RFC 7296 §2.25): "
                          f"{action} again in {RETRY_AFTER_BUSY:.0f} s{moved}")
        peer.schedule(holder, RETRY_AFTER_BUSY, f"{action} {spi}" if spi else action)
    return True


def _ike_rekey_response(peer, sa: IkeSa, new_spi: bytes, nonce: bytes, pair: DhKeyPair, offered, response: "Received") -> None:
    from ikelab.ikev2.exchanges import informational

    sa.rekeying_ike = False
    payloads = response.inner
    errors = error_notifies(payloads)
    if errors and _busy(peer, sa, errors, "rekey-ike", gone=sa.state is not State.ESTABLISHED):
        return
    if errors:
        peer.note("error", f"the responder refused the IKE SA rekey with {notify_name(errors[0])}; the old IKE SA stays")
        return
    sa_r = next((p for p in payloads if isinstance(p, SaPayload)), None)
    nr = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    if None in (sa_r, nr, ke) or len(sa_r.proposals) != 1 or len(sa_r.proposals[0].spi) != 8:
        peer.note("error", "the IKE rekey response lacks SA (with an 8-byte SPI), Nonce or KE")
        return
    selection = proposals.accept_reply(sa_r.proposals[0], offered, peer.config.ike_proposals, ProtocolId.IKE)
    _trace_choice(peer, "IKE", offered, peer.config.ike_proposals, selection)
    if selection.negotiated is None or ke.group != pair.group.number:
        peer.note("error", "unacceptable IKE rekey reply; the old IKE SA stays")
        return
    new = IkeSa("initiator", new_spi, sa_r.proposals[0].spi, sa.local, sa.remote, State.ESTABLISHED,
                ni=nonce, nr=nr.data, dh=pair, ike=selection.negotiated, peer_id=sa.peer_id)
    try:
        new.shared_secret = _shared(peer, pair, ke.data)
    except DhError as e:
        peer.note("error", f"the responder's KE value is invalid: {e}")
        return
    _take_over(peer, sa, new)
    peer.start_request(sa, lambda: informational.delete_ike_sa(peer, sa))


def _take_over(peer: "Ikev2Peer", old: IkeSa, new: IkeSa) -> None:
    """The rekeyed IKE SA inherits the Child SAs; the old one only waits to be deleted."""
    derive_rekeyed_ike_keys(peer, old, new)
    new.children, old.children = old.children, []
    # The NAT is still there: the new IKE SA keeps following it, encapsulating and keeping it alive.
    new.nat_local, new.nat_remote = old.nat_local, old.nat_remote
    new.fragmentation = old.fragmentation  # negotiated once in IKE_SA_INIT, for the IKE SA and its rekeyed successors
    # The keepalives are for the NAT's mapping, which the new IKE SA shares, and the Child SAs keep
    # their own lifetimes (as in strongSwan): both keep their rhythm rather than start again.
    new.timers += [t for t in old.timers if t[1].partition(" ")[0] in ("nat-keepalive", "rekey-child", "create-child")]
    old.state = State.REKEYED
    old.successor = new  # exchanges still in flight on the old IKE SA hand their Child SAs to the new one
    old.timers.clear()
    peer.sas[new.local_spi] = new
    peer.emit(IkeSaEvent, state="established", spi_i=new.spi_i, spi_r=new.spi_r, algorithms=new.ike.keywords(),
              reason=f"rekeyed from {old.label}")
    peer.schedule(new, peer.config.rekey_ike_after, "rekey-ike")
    peer.schedule(new, peer.config.liveness_every, "liveness")


# ------------------------------------------------------------------------- responder


def receive_request(peer: "Ikev2Peer", sa: IkeSa, request: "Received") -> None:
    payloads = request.inner
    sa_i = next((p for p in payloads if isinstance(p, SaPayload)), None)
    nonce = next((p for p in payloads if isinstance(p, NoncePayload)), None)
    if sa_i is None or nonce is None or not sa_i.proposals:
        peer.note("warning", "CREATE_CHILD_SA request lacks SA or Nonce: answering INVALID_SYNTAX")
        peer.send_response(sa, request.header, [NotifyPayload(NotifyType.INVALID_SYNTAX)])
        return
    if sa.state is not State.ESTABLISHED:
        peer.note("warning", f"CREATE_CHILD_SA while the IKE SA is {sa.state.value}: TEMPORARY_FAILURE")
        peer.send_response(sa, request.header, [NotifyPayload(NotifyType.TEMPORARY_FAILURE)])
        return
    if sa.rekeying_ike and sa_i.proposals[0].protocol != ProtocolId.IKE:
        # RFC 7296 §2.25.1: a Child SA asked for while we rekey the IKE SA would land on the IKE SA
        # about to go; the peer retries on the new one (a Child SA rekey counts: it creates one).
        peer.note("info", "CREATE_CHILD_SA for a Child SA while our own IKE SA rekey is in flight: TEMPORARY_FAILURE (RFC 7296 §2.25.1)")
        peer.send_response(sa, request.header, [NotifyPayload(NotifyType.TEMPORARY_FAILURE)])
        return
    if sa_i.proposals[0].protocol == ProtocolId.IKE:
        peer.send_response(sa, request.header, _answer_ike_rekey(peer, sa, payloads, sa_i, nonce))
    else:
        peer.send_response(sa, request.header, _answer_child(peer, sa, payloads, sa_i, nonce))


def _answer_child(peer: "Ikev2Peer", sa: IkeSa, payloads, sa_i: SaPayload, nonce: NoncePayload) -> list:
    cfg = peer.config
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    tsi = next((p for p in payloads if isinstance(p, TsPayload) and p.initiator), None)
    tsr = next((p for p in payloads if isinstance(p, TsPayload) and not p.initiator), None)
    rekey = next((p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == NotifyType.REKEY_SA), None)
    if tsi is None or tsr is None:
        peer.note("warning", "CREATE_CHILD_SA request lacks TSi or TSr: answering INVALID_SYNTAX")
        return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    old = None
    if rekey is not None:
        # The peer names the SA by its inbound SPI, which is our outbound SPI.
        old = next((c for c in sa.children if c.outbound.spi == rekey.spi), None)
        if old is None:
            peer.note("warning", f"the peer rekeys ESP SPI {rekey.spi.hex()}, which we do not have: CHILD_SA_NOT_FOUND")
            return [NotifyPayload(NotifyType.CHILD_SA_NOT_FOUND, protocol=ProtocolId.ESP, spi=rekey.spi)]
        peer.note("info", f"the peer rekeys Child SA {old.name} (our inbound SPI 0x{old.inbound.spi.hex()})")
    selection = proposals.select(sa_i.proposals, cfg.esp_proposals, ProtocolId.ESP)
    _trace_choice(peer, "ESP", sa_i.proposals, cfg.esp_proposals, selection)
    if selection.proposal is None:
        peer.note("error", "no offered ESP proposal matches ours: NO_PROPOSAL_CHOSEN")
        return [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)]
    chosen = selection.negotiated
    if chosen.dh is not None and (ke is None or ke.group != chosen.dh.number):
        peer.note("warning", f"PFS with {chosen.dh.name} chosen but the KE payload is for group {ke.group if ke else 'none'}: INVALID_KE_PAYLOAD")
        return [NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, data=chosen.dh.number.to_bytes(2, "big"))]
    narrowed = selectors.responder_narrow(tsi.selectors, tsr.selectors, list(cfg.local_ts), list(cfg.remote_ts))
    peer.emit(
        TrafficSelectorEvent,
        offered_tsi=[selectors.to_text(t) for t in tsi.selectors],
        offered_tsr=[selectors.to_text(t) for t in tsr.selectors],
        local=list(cfg.local_ts), remote=list(cfg.remote_ts),
        chosen_tsi=[selectors.to_text(t) for t in narrowed.tsi],
        chosen_tsr=[selectors.to_text(t) for t in narrowed.tsr],
        reason=narrowed.reason,
    )
    if not narrowed.ok:
        peer.note("error", f"{narrowed.reason}: TS_UNACCEPTABLE")
        return [NotifyPayload(NotifyType.TS_UNACCEPTABLE)]
    nr = peer.random(NONCE_LENGTH, "Nr (CREATE_CHILD_SA)")
    pair = _keypair(peer, chosen.dh)
    g_ir = None
    if pair is not None:
        try:
            g_ir = _shared(peer, pair, ke.data)
        except DhError as e:
            peer.note("error", f"the initiator's KE value is invalid: {e}: INVALID_SYNTAX")
            return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    our_spi = peer.new_child_spi()
    child = derive_child_sa(
        peer, sa, chosen,
        spi_from_initiator=selection.proposal.spi, spi_from_responder=our_spi,
        local_ts=[n for t in narrowed.tsr for n in selectors.to_networks(t)],
        remote_ts=[n for t in narrowed.tsi for n in selectors.to_networks(t)],
        ni=nonce.data, nr=nr, g_ir=g_ir, we_initiated=False,
    )
    _install(peer, sa, child)
    if old is not None and old.inbound.spi in sa.rekeying:
        sa.rekeying[old.inbound.spi].collision = (nonce.data, nr, child)
        peer.note("info", "we are rekeying this Child SA too: a rekey collision, settled by the nonces when both exchanges end")
    reply = Proposal(selection.proposal.number, ProtocolId.ESP, our_spi, selection.proposal.transforms)
    out = [SaPayload([reply]), NoncePayload(nr)]
    if pair is not None:
        out.append(KePayload(pair.group.number, pair.public))
    return out + [TsPayload(True, narrowed.tsi), TsPayload(False, narrowed.tsr)]


def _answer_ike_rekey(peer: "Ikev2Peer", sa: IkeSa, payloads, sa_i: SaPayload, nonce: NoncePayload) -> list:
    cfg = peer.config
    ke = next((p for p in payloads if isinstance(p, KePayload)), None)
    selection = proposals.select(sa_i.proposals, cfg.ike_proposals, ProtocolId.IKE)
    _trace_choice(peer, "IKE", sa_i.proposals, cfg.ike_proposals, selection)
    if selection.proposal is None:
        return [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)]
    chosen = selection.negotiated
    if ke is None or ke.group != chosen.dh.number:
        return [NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, data=chosen.dh.number.to_bytes(2, "big"))]
    if len(selection.proposal.spi) != 8:
        return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    new = IkeSa("responder", selection.proposal.spi, peer.random(8, "IKE SPIr (rekey)"), sa.local, sa.remote,
                State.ESTABLISHED, ni=nonce.data, nr=peer.random(NONCE_LENGTH, "Nr (IKE rekey)"), ike=chosen, peer_id=sa.peer_id)
    new.dh = _keypair(peer, chosen.dh)
    try:
        new.shared_secret = _shared(peer, new.dh, ke.data)
    except DhError as e:
        peer.note("error", f"the initiator's KE value is invalid: {e}")
        return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    _take_over(peer, sa, new)
    reply = Proposal(selection.proposal.number, ProtocolId.IKE, new.spi_r, selection.proposal.transforms)
    return [SaPayload([reply]), NoncePayload(new.nr), KePayload(chosen.dh.number, new.dh.public)]
