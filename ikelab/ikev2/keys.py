"""Key derivation as the engines run it, each step recorded in the trace (RFC 7296 §2.13-2.17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.crypto import ikev2_kdf
from ikelab.esp.sa import ChildSa, EspSa
from ikelab.ikev2.proposals import Negotiated
from ikelab.trace import ChildSaEvent, DeferredList, IkeKeysEvent, PrfEvent, PrfPlusEvent

if TYPE_CHECKING:
    from ikelab.ikev2.engine import Ikev2Peer
    from ikelab.ikev2.ike_sa import IkeSa


def _blocks(result) -> DeferredList:
    """prf+'s blocks as the trace shows them, written when first read (the blocks are tuples)."""
    return DeferredList(lambda: [{"index": b.index, "input": b.input, "output": b.output} for b in result.blocks])


# The events below are built with their fields by position, in each event's order: a class called with
# keywords gets them as a dict, some 450 instructions a keyword, and every handshake derives keys four times.


def derive_ike_keys(peer: "Ikev2Peer", sa: "IkeSa") -> None:
    """SKEYSEED and the seven SK_* of a new IKE SA."""
    prf = sa.ike.prf
    skeyseed = ikev2_kdf.skeyseed(prf, sa.ni, sa.nr, sa.shared_secret)
    peer.record(PrfEvent(
        peer.config.name, peer.now, "SKEYSEED", "SKEYSEED = prf(Ni | Nr, g^ir)", prf.description,
        sa.ni + sa.nr, sa.shared_secret, skeyseed,
    ))
    _sa_keys(peer, sa, skeyseed, "IKE SA keys")


def derive_rekeyed_ike_keys(peer: "Ikev2Peer", old: "IkeSa", new: "IkeSa") -> None:
    """The keys of an IKE SA made by rekeying: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)."""
    skeyseed = ikev2_kdf.rekey_skeyseed(old.ike.prf, old.keys.sk_d, new.shared_secret, new.ni, new.nr)
    peer.record(PrfEvent(
        peer.config.name, peer.now, "SKEYSEED (rekeyed IKE SA)", "SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)",
        old.ike.prf.description, old.keys.sk_d, new.shared_secret + new.ni + new.nr, skeyseed,
    ))
    _sa_keys(peer, new, skeyseed, "rekeyed IKE SA keys")


def _sa_keys(peer: "Ikev2Peer", sa: "IkeSa", skeyseed: bytes, label: str) -> None:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)."""
    prf, cipher, integ = sa.ike.prf, sa.ike.cipher, sa.ike.integrity
    keys, stream = ikev2_kdf.ike_sa_keys(
        prf, skeyseed, sa.ni, sa.nr, sa.spi_i, sa.spi_r, cipher.key_length, integ.key_length if integ else 0
    )
    split = keys.as_dict()
    seed = sa.ni + sa.nr + sa.spi_i + sa.spi_r
    peer.record(PrfPlusEvent(
        peer.config.name, peer.now, label, IKE_KEYS_FORMULA, prf.description, skeyseed, seed, _blocks(stream), stream.output,
        split,
    ))
    sa.keys = keys
    peer.record(IkeKeysEvent(
        peer.config.name, peer.now, sa.spi_i, sa.spi_r, cipher.name, integ.name if integ else "", prf.name, dict(split),
    ))


IKE_KEYS_FORMULA = "{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)"


def derive_child_sa(
    peer: "Ikev2Peer",
    sa: "IkeSa",
    esp: Negotiated,
    spi_from_initiator: bytes,
    spi_from_responder: bytes,
    local_ts: list[str],
    remote_ts: list[str],
    ni: bytes,
    nr: bytes,
    g_ir: bytes | None = None,
    we_initiated: bool | None = None,
) -> ChildSa:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), split i->r first, encryption before integrity.

    "Initiator" is the initiator of the exchange that creates the Child SA (IKE_AUTH or
    CREATE_CHILD_SA), which `we_initiated` says (default: our role in the IKE SA). Each side puts its
    own inbound SPI in its SA payload: the initiator sends to the responder's SPI.
    """
    if we_initiated is None:
        we_initiated = sa.is_initiator
    prf = sa.ike.prf
    encr_len = esp.cipher.key_length
    integ_len = esp.integrity.key_length if esp.integrity else 0
    seed = (g_ir or b"") + ni + nr
    stream = ikev2_kdf.child_keymat(prf, sa.keys.sk_d, ni, nr, 2 * (encr_len + integ_len), g_ir)
    material = stream.output
    ei, ai = material[:encr_len], material[encr_len : encr_len + integ_len]
    rest = material[encr_len + integ_len :]
    er, ar = rest[:encr_len], rest[encr_len : encr_len + integ_len]
    split = {"encryption key i->r": ei}
    if integ_len:
        split["integrity key i->r"] = ai
    split["encryption key r->i"] = er
    if integ_len:
        split["integrity key r->i"] = ar
    formula = "KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)" if g_ir else "KEYMAT = prf+(SK_d, Ni | Nr)"
    peer.record(PrfPlusEvent(
        peer.config.name, peer.now, f"Child SA {peer.config.child_name} keys", formula, prf.description, sa.keys.sk_d, seed,
        _blocks(stream), material, split,
    ))
    local, remote = sa.local.host, sa.remote.host
    # Behind a NAT, ESP travels inside UDP between the ports IKE uses now (RFC 3948).
    nat = sa.nat_local or sa.nat_remote
    out_ports = (sa.local.port, sa.remote.port) if nat else None
    in_ports = (sa.remote.port, sa.local.port) if nat else None

    def esp_sa(spi: bytes, src: str, dst: str, encryption_key: bytes, integrity_key: bytes, encap) -> EspSa:
        # EspSa's fields by position (spi, src, dst, cipher, integrity, encryption_key, integrity_key, esn, encap):
        # keywords would reach the class as a dict.
        return EspSa(spi, src, dst, esp.cipher, esp.integrity, encryption_key, integrity_key, esp.esn, encap)

    if we_initiated:
        outbound = esp_sa(spi_from_responder, local, remote, ei, ai, out_ports)  # i->r keys
        inbound = esp_sa(spi_from_initiator, remote, local, er, ar, in_ports)
    else:
        outbound = esp_sa(spi_from_initiator, local, remote, er, ar, out_ports)  # r->i keys
        inbound = esp_sa(spi_from_responder, remote, local, ei, ai, in_ports)
    child = ChildSa(peer.config.child_name, inbound, outbound, tuple(local_ts), tuple(remote_ts))
    peer.record(ChildSaEvent(  # both SAs described when the trace is read (trace.Deferred)
        peer.config.name, peer.now, "installed", child.name, child.mode, "ESP", esp.keywords(), inbound.describe,
        outbound.describe, list(local_ts), list(remote_ts),
    ))
    return child
