"""IKEv1 key derivation and HASH payloads as the engine runs them, each step recorded in the trace
(RFC 2409 §5, §5.5, appendix B)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from ikelab.crypto import ikev1_kdf as kdf
from ikelab.ikev1 import signatures
from ikelab.esp.sa import ChildSa, EspSa
from ikelab.trace import ChildSaEvent, Ikev1HashEvent, Ikev1IvEvent, Ikev1KeysEvent, PrfEvent, PrfPlusEvent
from ikelab.wire.isakmp_constants import ProtocolId

if TYPE_CHECKING:
    from ikelab.ikev1.engine import Ikev1Peer
    from ikelab.ikev1.sa import Exchange, IsakmpSa, QuickMode


def _blocks(expansion: kdf.Expansion) -> list[dict]:
    return [{"index": b.index, "input": b.input, "output": b.output} for b in expansion.blocks]


def derive_phase1_keys(peer: "Ikev1Peer", sa: "IsakmpSa") -> None:
    """SKEYID, SKEYID_d/a/e, the encryption key Ka and the phase 1 IV, once g^xy and both nonces are known."""
    prf, c = sa.ike.prf, sa.ike.cipher
    if sa.ike.signatures:
        # No secret goes in: the nonces key the prf over g^xy, and the signatures prove who is who.
        sa.skeyid = kdf.skeyid_signature(prf, sa.ni, sa.nr, sa.g_xy)
        formula, key, data = "SKEYID = prf(Ni_b | Nr_b, g^xy) (signature authentication)", sa.ni + sa.nr, sa.g_xy
    else:
        sa.skeyid = kdf.skeyid_psk(prf, peer.config.psk, sa.ni, sa.nr)
        formula, key, data = "SKEYID = prf(pre-shared-key, Ni_b | Nr_b)", peer.config.psk, sa.ni + sa.nr
    peer.emit(PrfEvent, label="SKEYID", formula=formula, prf=prf.description, key=key, data=data, output=sa.skeyid)
    children = kdf.skeyid_children(prf, sa.skeyid, sa.g_xy, sa.cky_i, sa.cky_r)
    formulas = {
        "SKEYID_d": "SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)",
        "SKEYID_a": "SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)",
        "SKEYID_e": "SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)",
    }
    for step in (children.d, children.a, children.e):
        data = kdf.joined(step.parts)
        peer.emit(PrfEvent, label=step.name, formula=formulas[step.name], prf=prf.description, key=step.key, data=data, output=step.output)
    sa.skeyid_d, sa.skeyid_a, sa.skeyid_e = children.d.output, children.a.output, children.e.output
    expansion = kdf.encryption_key(prf, sa.skeyid_e, c.key_length)
    sa.ka = expansion.output
    if expansion.blocks:
        formula = f"Ka = K1 | K2 | ... with K1 = prf(SKEYID_e, 0), Ki = prf(SKEYID_e, K(i-1)): SKEYID_e is shorter than the {c.key_length}-byte key"
    else:
        formula = f"Ka = the first {c.key_length} bytes of SKEYID_e (long enough, so no expansion: RFC 2409 appendix B)"
    peer.emit(
        PrfPlusEvent,
        label="encryption key Ka",
        formula=formula,
        prf=prf.description,
        key=sa.skeyid_e,
        seed=b"",
        blocks=_blocks(expansion),
        output=sa.ka,
        split={"Ka": sa.ka},
    )
    iv = kdf.phase1_iv(prf, sa.ke_i, sa.ke_r, c.block_size)
    peer.emit(
        Ikev1IvEvent,
        label="phase 1 IV",
        formula=f"IV = {sa.ike.hash_name}(g^xi | g^xr), first {c.block_size} bytes",
        inputs={"g^xi": sa.ke_i, "g^xr": sa.ke_r},
        output=iv,
    )
    sa.exchange.iv, sa.exchange.iv_origin = iv, "the phase 1 IV, hash(g^xi | g^xr)"
    keys = {"SKEYID": sa.skeyid, "SKEYID_d": sa.skeyid_d, "SKEYID_a": sa.skeyid_a, "SKEYID_e": sa.skeyid_e, "Ka": sa.ka, "IV": iv}
    peer.emit(Ikev1KeysEvent, cky_i=sa.cky_i, cky_r=sa.cky_r, cipher=c.name, hash=sa.ike.hash_name, keys=keys)


def phase2_iv(peer: "Ikev1Peer", sa: "IsakmpSa", exchange: "Exchange") -> None:
    """The first IV of a quick mode or informational exchange, from the last phase 1 block and its M-ID."""
    prf, c = sa.ike.prf, sa.ike.cipher
    mid = exchange.message_id_bytes
    exchange.iv = kdf.phase2_iv(prf, sa.last_phase1_block, mid, c.block_size)
    exchange.iv_origin = "hash(last phase 1 CBC block | M-ID)"
    peer.emit(
        Ikev1IvEvent,
        label=f"IV of {exchange.name} 0x{exchange.message_id:08x}",
        formula=f"IV = {sa.ike.hash_name}(last phase 1 CBC block | M-ID), first {c.block_size} bytes",
        inputs={"last phase 1 CBC block": sa.last_phase1_block, "M-ID": mid},
        output=exchange.iv,
    )


def _hash(peer: "Ikev1Peer", sa: "IsakmpSa", label: str, formula: str, key_label: str, key: bytes, parts: kdf.Parts, received: bytes | None, prf=None) -> tuple[bytes, bool | None]:
    """Compute a HASH payload value (ours, or the one we expect from the peer) and trace every input."""
    prf = prf or sa.ike.prf
    value = prf(key, kdf.joined(parts))
    ok = None if received is None else hmac.compare_digest(value, received)
    peer.emit(
        Ikev1HashEvent,
        label=label,
        formula=formula,
        prf=prf.description,
        key_label=key_label,
        key=key,
        parts=dict(parts),
        output=value,
        action="computed" if received is None else "verified",
        received=received,
        ok=ok,
    )
    return value, ok


def auth_hash(peer: "Ikev1Peer", sa: "IsakmpSa", *, of_initiator: bool, id_b: bytes, received: bytes | None = None) -> tuple[bytes, bool | None]:
    """HASH_I or HASH_R (RFC 2409 §5): with a PSK, proof of the key is that SKEYID comes out right."""
    if of_initiator:
        parts = kdf.hash_i_parts(sa.ke_i, sa.ke_r, sa.cky_i, sa.cky_r, sa.sa_i_b, id_b)
        formula = "HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)"
    else:
        parts = kdf.hash_r_parts(sa.ke_i, sa.ke_r, sa.cky_i, sa.cky_r, sa.sa_i_b, id_b)
        formula = "HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)"
    label = "HASH_I" if of_initiator else "HASH_R"
    prf = signatures.hash_prf(sa.ike.auth_method, sa.ike.prf)
    if prf is not sa.ike.prf:
        formula += f", with {prf.description}: the hash of the ECDSA method, not the negotiated prf (RFC 4754)"
    return _hash(peer, sa, label, formula, "SKEYID", sa.skeyid, parts, received, prf)


QUICK_FORMULAS = {
    1: "HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr])",
    2: "HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])",
    3: "HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)",
}


def quick_hash(peer: "Ikev1Peer", sa: "IsakmpSa", number: int, mid: bytes, *, rest: bytes = b"", ni: bytes = b"", nr: bytes = b"", received: bytes | None = None) -> tuple[bytes, bool | None]:
    """HASH(1), HASH(2) or HASH(3) of quick mode (RFC 2409 §5.5)."""
    parts = {1: lambda: kdf.quick_hash_1_parts(mid, rest), 2: lambda: kdf.quick_hash_2_parts(mid, ni, rest), 3: lambda: kdf.quick_hash_3_parts(mid, ni, nr)}[number]()
    return _hash(peer, sa, f"HASH({number})", QUICK_FORMULAS[number], "SKEYID_a", sa.skeyid_a, parts, received)


def informational_hash(peer: "Ikev1Peer", sa: "IsakmpSa", mid: bytes, rest: bytes, received: bytes | None = None) -> tuple[bytes, bool | None]:
    """HASH(1) = prf(SKEYID_a, M-ID | N/D) of an informational exchange (RFC 2409 §5.7)."""
    formula = "HASH(1) = prf(SKEYID_a, M-ID | N/D)"
    return _hash(peer, sa, "HASH(1)", formula, "SKEYID_a", sa.skeyid_a, kdf.quick_hash_1_parts(mid, rest), received)


def _keymat(peer: "Ikev1Peer", sa: "IsakmpSa", qm: "QuickMode", spi: bytes, direction: str, encr_len: int, integ_len: int) -> tuple[bytes, bytes]:
    """(encryption key, integrity key) of one direction: KEYMAT is split in that order."""
    seed = kdf.keymat_seed(ProtocolId.IPSEC_ESP, spi, qm.ni, qm.nr, qm.g_qm)
    expansion = kdf.keymat(sa.ike.prf, sa.skeyid_d, seed, encr_len + integ_len)
    encryption, integrity = expansion.output[:encr_len], expansion.output[encr_len:]
    split = {"encryption key": encryption} | ({"integrity key": integrity} if integ_len else {})
    pfs = "g(qm)^xy | " if qm.g_qm else ""
    peer.emit(
        PrfPlusEvent,
        label=f"KEYMAT {direction} (SPI {spi.hex()})",
        formula=f"KEYMAT = K1 | K2 | ... with K1 = prf(SKEYID_d, {pfs}protocol | SPI | Ni_b | Nr_b), Ki = prf(SKEYID_d, K(i-1) | {pfs}protocol | SPI | Ni_b | Nr_b)",
        prf=sa.ike.prf.description,
        key=sa.skeyid_d,
        seed=kdf.joined(seed),
        blocks=_blocks(expansion),
        output=expansion.output,
        split=split,
    )
    return encryption, integrity


def derive_child(peer: "Ikev1Peer", sa: "IsakmpSa", qm: "QuickMode", local_ts: list[str], remote_ts: list[str]) -> ChildSa:
    """Both directions' KEYMAT: each uses the SPI its receiver chose, so the two keys differ (§5.5)."""
    esp = qm.esp
    encr_len = esp.cipher.key_length
    integ_len = esp.integrity.key_length if esp.integrity else 0
    keys = {
        direction: _keymat(peer, sa, qm, spi, direction, encr_len, integ_len)
        for direction, spi in (("initiator->responder", qm.spi_r), ("responder->initiator", qm.spi_i))
    }
    local, remote = sa.local.host, sa.remote.host
    out_dir, in_dir = ("initiator->responder", "responder->initiator") if qm.is_initiator else ("responder->initiator", "initiator->responder")
    out_spi, in_spi = (qm.spi_r, qm.spi_i) if qm.is_initiator else (qm.spi_i, qm.spi_r)
    common = dict(cipher=esp.cipher, integrity=esp.integrity, esn=False)
    # Behind a NAT, ESP travels inside UDP between the ports IKE uses now (RFC 3948).
    nat = sa.nat_local or sa.nat_remote
    out_ports, in_ports = ((sa.local.port, sa.remote.port), (sa.remote.port, sa.local.port)) if nat else (None, None)
    outbound = EspSa(spi=out_spi, src=local, dst=remote, encryption_key=keys[out_dir][0], integrity_key=keys[out_dir][1], encap=out_ports, **common)
    inbound = EspSa(spi=in_spi, src=remote, dst=local, encryption_key=keys[in_dir][0], integrity_key=keys[in_dir][1], encap=in_ports, **common)
    return ChildSa(peer.config.child_name, inbound, outbound, tuple(local_ts), tuple(remote_ts))


def trace_child(peer: "Ikev1Peer", child: ChildSa, action: str) -> None:
    peer.emit(
        ChildSaEvent,
        action=action,
        name=child.name,
        mode=child.mode,
        protocol="ESP",
        algorithms=child.inbound.algorithms,
        inbound=child.inbound.describe(),
        outbound=child.outbound.describe(),
        local_ts=list(child.local_ts),
        remote_ts=list(child.remote_ts),
    )
