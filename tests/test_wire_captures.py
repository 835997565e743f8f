"""Decode real strongSwan captures (traffic ikelab did not make) and re-encode them byte for byte.

The SK payloads are opened with the keys strongSwan logged, so the inner payloads (IDs, AUTH, CERT,
traffic selectors, REKEY_SA, Delete) of real messages go through decode_payloads as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import UDP, rdpcap
from test_wire_roundtrip import check_spans

from ikelab.wire.ikev2 import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    DeletePayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdPayload,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
    Transform,
    TsPayload,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ikelab.wire.ikev2_constants import (
    AuthMethod,
    CertEncoding,
    DhId,
    EncrId,
    EsnId,
    ExchangeType,
    IdType,
    IntegId,
    NotifyType,
    PrfId,
    ProtocolId,
    TransformType,
)

VECTORS = Path(__file__).parent / "vectors" / "wire"
CAPTURES = ["ikev2-psk", "ikev2-gcm", "ikev2-cert", "ikev2-natt", "ikev2-rekey"]
NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948: on port 4500, IKE is preceded by four zero bytes


@cache
def ike_datagrams(name: str) -> tuple[bytes, ...]:
    """IKE messages in capture order; ESP-in-UDP and NAT keepalives are skipped."""
    out = []
    for packet in rdpcap(str(VECTORS / f"{name}.pcap")):
        udp = packet[UDP]
        data = bytes(udp.payload)
        if 4500 in (udp.sport, udp.dport):
            if data == b"\xff" or not data.startswith(NON_ESP_MARKER):
                continue
            data = data[4:]
        out.append(data)
    return tuple(out)


def ike_keys(name: str) -> list[dict]:
    return json.loads((VECTORS / f"{name}.keys.json").read_text())["ike_sas"]


def transform_set(payload: SaPayload, proposal: int = 0) -> set[tuple[int, int, int | None]]:
    return {(t.type, t.id, t.key_length) for t in payload.proposals[proposal].transforms}


# --- opening SK payloads (test-only crypto, so the inner payloads of real messages can be checked) ---


def open_sk(data: bytes, msg: Message, name: str) -> bytes:
    """Plaintext of the SK/SKF payload (padding removed), after checking its ICV."""
    keys = next(
        k
        for k in ike_keys(name)
        if bytes.fromhex(k["spi_i"]) == msg.header.spi_i and bytes.fromhex(k["spi_r"]) == msg.header.spi_r
    )
    side = "i" if msg.header.is_initiator else "r"
    sk_e = bytes.fromhex(keys[f"sk_e{side}"])
    sk = msg.payloads[-1]
    body_start = len(data) - len(sk.body)
    if "GCM" in keys["ike_proposal"]:  # RFC 5282: 8-byte IV, AAD = everything before it
        iv, sealed = sk.body[:8], sk.body[8:]
        plain = AESGCM(sk_e[:-4]).decrypt(sk_e[-4:] + iv, sealed, data[:body_start])
    else:  # AES-CBC + HMAC-SHA2-256-128 over the whole message
        sk_a = bytes.fromhex(keys[f"sk_a{side}"])
        assert hmac.new(sk_a, data[:-16], hashlib.sha256).digest()[:16] == sk.body[-16:]
        iv, ciphertext = sk.body[:16], sk.body[16:-16]
        decryptor = Cipher(algorithms.AES(sk_e), modes.CBC(iv)).decryptor()
        plain = decryptor.update(ciphertext) + decryptor.finalize()
    return plain[: -plain[-1] - 1]  # pad length is the last octet


def inner_payloads(name: str) -> list[tuple[Message, bytes, list[Payload]]]:
    """(outer message, inner plaintext, inner payloads) for each SK message; fragments reassembled."""
    out, fragments = [], []
    for data in ike_datagrams(name):
        msg = decode_message(data).message
        sk = msg.payloads[-1] if msg.payloads else None
        if isinstance(sk, EncryptedFragmentPayload):
            fragments.append((sk, open_sk(data, msg, name)))
            if sk.fragment_number < sk.total_fragments:
                continue
            first_inner = fragments[0][0].first_inner
            plain = b"".join(p for _, p in sorted(fragments, key=lambda f: f[0].fragment_number))
            fragments = []
        elif isinstance(sk, EncryptedPayload):
            first_inner, plain = sk.first_inner, open_sk(data, msg, name)
        else:
            continue
        payloads, fields = decode_payloads(plain, first_inner, sender_is_initiator=msg.header.is_initiator)
        assert encode_payloads(payloads) == (first_inner, plain), "inner payloads must re-encode byte for byte"
        out.append((msg, plain, payloads))
    return out


# --- tests ---


@pytest.mark.parametrize("name", CAPTURES)
def test_every_message_decodes_and_reencodes_byte_for_byte(name: str) -> None:
    datagrams = ike_datagrams(name)
    assert len(datagrams) >= 4
    for data in datagrams:
        decoded = decode_message(data)
        assert encode_message(decoded.message) == data
        check_spans(decoded.tree, data)


@pytest.mark.parametrize("name", CAPTURES)
def test_ike_sa_init_request(name: str) -> None:
    msg = decode_message(ike_datagrams(name)[0]).message
    header = msg.header
    assert header.exchange == ExchangeType.IKE_SA_INIT and header.message_id == 0
    assert header.is_initiator and not header.is_response and header.spi_r == bytes(8)
    assert [type(p) for p in msg.payloads[:4]] == [SaPayload, KePayload, NoncePayload, NotifyPayload]
    sa, ke = msg.find(SaPayload), msg.find(KePayload)
    assert len(sa.proposals) == 1 and sa.proposals[0].protocol == ProtocolId.IKE and sa.proposals[0].spi == b""
    if name == "ikev2-gcm":  # aes256gcm16-prfsha256-ecp256: AEAD, so no INTEG transform
        assert ke.group == DhId.ECP_256 and len(ke.data) == 64
        assert transform_set(sa) == {
            (TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 256),
            (TransformType.PRF, PrfId.PRF_HMAC_SHA2_256, None),
            (TransformType.DH, DhId.ECP_256, None),
        }
    else:  # aes128-sha256-modp2048
        assert ke.group == DhId.MODP_2048 and len(ke.data) == 256
        assert transform_set(sa) == {
            (TransformType.ENCR, EncrId.ENCR_AES_CBC, 128),
            (TransformType.PRF, PrfId.PRF_HMAC_SHA2_256, None),
            (TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128, None),
            (TransformType.DH, DhId.MODP_2048, None),
        }
    assert len(msg.find(NoncePayload).data) == 32
    nat = [
        n
        for n in msg.notifies()
        if n.notify_type in (NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP)
    ]
    assert len(nat) == 2 and all(len(n.data) == 20 for n in nat)
    assert msg.summary().startswith("HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)")


def test_ike_sa_init_response_and_tree() -> None:
    decoded = decode_message(ike_datagrams("ikev2-psk")[1])
    msg = decoded.message
    assert msg.header.is_response and not msg.header.is_initiator and msg.header.spi_r != bytes(8)
    assert msg.summary().startswith("HDR, SA, KE, Nr, ")
    tree = decoded.tree
    assert [c.name for c in tree.children[:4]] == ["Header", "SA payload", "KE payload", "Nonce payload (Nr)"]
    assert tree.find("Proposal #1").find("Transform ENCR").display == "ENCR_AES_CBC 128"
    assert tree.find("Notify payload: NAT_DETECTION_SOURCE_IP") is not None
    ke_data = tree.find("Key Exchange Data")
    assert (ke_data.end - ke_data.start, ke_data.value) == (256, msg.find(KePayload).data)


@pytest.mark.parametrize("name", CAPTURES)
def test_ike_auth_is_encrypted(name: str) -> None:
    msg = decode_message(ike_datagrams(name)[2]).message
    assert msg.header.exchange == ExchangeType.IKE_AUTH and msg.header.message_id == 1
    expected = EncryptedFragmentPayload if name == "ikev2-cert" else EncryptedPayload
    assert [type(p) for p in msg.payloads] == [expected]
    if name == "ikev2-cert":
        assert (msg.payloads[0].fragment_number, msg.payloads[0].total_fragments) == (1, 2)
        assert msg.payloads[0].first_inner != 0
        second = decode_message(ike_datagrams(name)[3]).message.payloads[0]
        assert (second.fragment_number, second.first_inner) == (2, 0)


@pytest.mark.parametrize("name", ["ikev2-psk", "ikev2-gcm"])
def test_psk_ike_auth_contents(name: str) -> None:
    (request, _, inner_i), (response, _, inner_r) = inner_payloads(name)[:2]
    assert request.summary(inner_i).startswith("HDR, SK {IDi, ")
    idi = next(p for p in inner_i if isinstance(p, IdPayload))
    assert (idi.initiator, idi.id_type, idi.data) == (True, IdType.ID_FQDN, b"a.example")
    auth = next(p for p in inner_i if isinstance(p, AuthPayload))
    assert auth.method == AuthMethod.SHARED_KEY_MIC and len(auth.data) == 32  # prf = HMAC-SHA2-256
    esp = next(p for p in inner_i if isinstance(p, SaPayload)).proposals[0]
    assert esp.protocol == ProtocolId.ESP and len(esp.spi) == 4
    assert Transform(TransformType.ESN, EsnId.NO_ESN) in esp.transforms
    tsi, tsr = (p for p in inner_i if isinstance(p, TsPayload))
    assert (tsi.initiator, [str(s) for s in tsi.selectors]) == (True, ["198.51.100.0/24"])
    assert (tsr.initiator, [str(s) for s in tsr.selectors]) == (False, ["203.0.113.0/24"])
    idr = next(p for p in inner_r if isinstance(p, IdPayload))
    assert (idr.initiator, idr.data) == (False, b"b.example")
    assert response.summary(inner_r).startswith("HDR, SK {IDr, AUTH, ")


def test_certificate_ike_auth_reassembled_from_fragments() -> None:
    (request, plain, inner), (_, _, inner_r) = inner_payloads("ikev2-cert")[:2]
    cert = next(p for p in inner if isinstance(p, CertPayload))
    assert cert.encoding == CertEncoding.X509_CERT_SIGNATURE and cert.data[0] == 0x30  # DER SEQUENCE
    auth = next(p for p in inner if isinstance(p, AuthPayload))
    assert auth.method in (AuthMethod.RSA_DIGITAL_SIGNATURE, AuthMethod.DIGITAL_SIGNATURE)
    assert any(isinstance(p, CertReqPayload) for p in inner)
    assert any(isinstance(p, CertPayload) for p in inner_r)
    assert len(plain) > 1000  # did not fit one datagram, hence the fragments


def test_rekey_exchanges() -> None:
    exchanges = inner_payloads("ikev2-rekey")
    creates = [(m, p) for m, _, p in exchanges if m.header.exchange == ExchangeType.CREATE_CHILD_SA]
    assert creates
    child_rekey = next(
        p
        for m, p in creates
        if not m.header.is_response
        and any(isinstance(x, NotifyPayload) and x.notify_type == NotifyType.REKEY_SA for x in p)
    )
    rekey_sa = next(x for x in child_rekey if isinstance(x, NotifyPayload) and x.notify_type == NotifyType.REKEY_SA)
    assert rekey_sa.protocol == ProtocolId.ESP and len(rekey_sa.spi) == 4
    assert next(x for x in child_rekey if isinstance(x, KePayload)).group == DhId.MODP_2048  # PFS
    # the IKE SA rekey: an IKE proposal carrying the new 8-byte SPI
    ike_rekeys = [
        x for _, p in creates for x in p if isinstance(x, SaPayload) and x.proposals[0].protocol == ProtocolId.IKE
    ]
    assert ike_rekeys and all(len(sa.proposals[0].spi) == 8 for sa in ike_rekeys)
    deletes = [
        x
        for m, _, p in exchanges
        if m.header.exchange == ExchangeType.INFORMATIONAL
        for x in p
        if isinstance(x, DeletePayload)
    ]
    assert any(d.protocol == ProtocolId.ESP and d.spi_size == 4 and len(d.spis) == 1 for d in deletes)
    assert any(d.protocol == ProtocolId.IKE and d.spi_size == 0 and d.spis == [] for d in deletes)
