"""strongSwan's certificate handshake (a capture ikelab did not make) checked with ikelab.pki.

tests/vectors/wire/ikev2-cert.pcap: two strongSwan 5.9.8 daemons, RSA-2048 certificates, IKE_AUTH
fragmented (RFC 7383) and encrypted with AES-CBC-128 + HMAC-SHA2-256-128. keys.json holds every
key strongSwan logged. Here the SKF fragments are opened with SK_ei/SK_er, reassembled, and the
CERT, AUTH and ID payloads checked: the signed octets are rebuilt from RealMessage1/2, the nonces
and prf(SK_p, ID'), and verify() must accept strongSwan's signatures with its certificates' keys.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ikelab.crypto.cipher import cipher
from ikelab.crypto.integrity import integrity
from ikelab.crypto.prf import prf
from ikelab.pki import signature_auth as sa
from ikelab.pki.ca import LabCa, der
from ikelab.pki.validation import (
    cert_payloads,
    check_identity,
    requested_cas,
    split_certreq,
    validate,
)
from ikelab.wire.ikev2 import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    EncryptedFragmentPayload,
    IdPayload,
    NoncePayload,
    NotifyPayload,
    decode_message,
    decode_payloads,
)
from ikelab.wire.ikev2_constants import (
    AuthMethod,
    CertEncoding,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    NotifyType,
    PrfId,
)

WIRE = Path(__file__).parent / "vectors" / "wire"
PKI = Path(__file__).parent / "vectors" / "pki"
NON_ESP_MARKER = b"\x00\x00\x00\x00"
WHEN = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # inside the certificates' validity


def _udp_payloads(path: Path) -> list[tuple[int, bytes]]:
    from scapy.all import UDP, rdpcap

    out = []
    for packet in rdpcap(str(path)):
        udp = packet[UDP]
        out.append((udp.dport, bytes(udp.payload)))
    return out


@dataclass
class AuthSide:
    id_payload: IdPayload
    auth: AuthPayload
    certs: list[CertPayload]
    certreqs: list[CertReqPayload]


@dataclass
class Handshake:
    init_request: bytes  # RealMessage1
    init_response: bytes  # RealMessage2
    ni: bytes
    nr: bytes
    init_notifies: tuple[list[NotifyPayload], list[NotifyPayload]]
    init_certreq: CertReqPayload | None
    keys: dict
    initiator: AuthSide
    responder: AuthSide
    fragments: int


def _open_fragment(data: bytes, fragment: EncryptedFragmentPayload, sk_e: bytes, sk_a: bytes) -> bytes:
    """Check the ICV over the whole message, decrypt, drop padding (RFC 7296 §3.14, RFC 7383 §2.5)."""
    integ = integrity(IntegId.AUTH_HMAC_SHA2_256_128)
    enc = cipher(EncrId.ENCR_AES_CBC, 128)
    icv = fragment.body[-integ.icv_length :]
    assert integ.verify(sk_a, data[: -integ.icv_length], icv), "SKF integrity check failed"
    iv, ciphertext = fragment.body[: enc.iv_length], fragment.body[enc.iv_length : -integ.icv_length]
    plain = enc.decrypt(sk_e, iv, ciphertext)
    return plain[: -plain[-1] - 1]


@cache
def handshake() -> Handshake:
    keys = json.loads((WIRE / "ikev2-cert.keys.json").read_text())["ike_sas"][0]
    datagrams = []
    for port, data in _udp_payloads(WIRE / "ikev2-cert.pcap"):
        if port == 4500:
            if not data.startswith(NON_ESP_MARKER):
                continue  # ESP in UDP
            data = data[4:]
        datagrams.append(data)
    init_req, init_resp = datagrams[0], datagrams[1]
    m1, m2 = decode_message(init_req).message, decode_message(init_resp).message
    assert m1.header.exchange == m2.header.exchange == ExchangeType.IKE_SA_INIT
    ni = next(p for p in m1.payloads if isinstance(p, NoncePayload)).data
    nr = next(p for p in m2.payloads if isinstance(p, NoncePayload)).data
    sides: dict[bool, AuthSide] = {}
    pending: dict[bool, list[tuple[EncryptedFragmentPayload, bytes]]] = {True: [], False: []}
    fragments = 0
    for data in datagrams[2:]:
        msg = decode_message(data).message
        if msg.header.exchange != ExchangeType.IKE_AUTH:
            continue
        skf = msg.payloads[-1]
        assert isinstance(skf, EncryptedFragmentPayload), "strongSwan fragments its certificate IKE_AUTH"
        fragments += 1
        side = "i" if msg.header.is_initiator else "r"
        plain = _open_fragment(data, skf, bytes.fromhex(keys[f"sk_e{side}"]), bytes.fromhex(keys[f"sk_a{side}"]))
        frags = pending[msg.header.is_initiator]
        frags.append((skf, plain))
        if len(frags) < skf.total_fragments:
            continue
        frags.sort(key=lambda f: f[0].fragment_number)
        first_inner = frags[0][0].first_inner
        payloads, _ = decode_payloads(
            b"".join(p for _, p in frags), first_inner, sender_is_initiator=msg.header.is_initiator
        )
        own = msg.header.is_initiator
        sides[own] = AuthSide(
            next(p for p in payloads if isinstance(p, IdPayload) and p.initiator == own),
            next(p for p in payloads if isinstance(p, AuthPayload)),
            [p for p in payloads if isinstance(p, CertPayload)],
            [p for p in payloads if isinstance(p, CertReqPayload)],
        )
    notifies = (
        [p for p in m1.payloads if isinstance(p, NotifyPayload)],
        [p for p in m2.payloads if isinstance(p, NotifyPayload)],
    )
    certreq = next((p for p in m2.payloads if isinstance(p, CertReqPayload)), None)
    return Handshake(init_req, init_resp, ni, nr, notifies, certreq, keys, sides[True], sides[False], fragments)


def _octets(h: Handshake, initiator: bool) -> bytes:
    prf_sha256 = prf(PrfId.PRF_HMAC_SHA2_256)
    if initiator:
        return sa.signed_octets(
            prf_sha256, h.init_request, h.nr, bytes.fromhex(h.keys["sk_pi"]), h.initiator.id_payload.id_body()
        ).octets
    return sa.signed_octets(
        prf_sha256, h.init_response, h.ni, bytes.fromhex(h.keys["sk_pr"]), h.responder.id_payload.id_body()
    ).octets


def _cert(side: AuthSide) -> x509.Certificate:
    bundle = cert_payloads(side.certs)
    assert bundle.end_entity is not None and not bundle.notes
    return x509.load_der_x509_certificate(bundle.end_entity)


# --------------------------------------------------------------------------- tests


def test_ike_auth_is_fragmented_and_carries_ids_certs_and_rfc7427_auth() -> None:
    h = handshake()
    assert h.fragments == 4  # two SKF fragments each way
    assert h.initiator.id_payload.id_type == IdType.ID_FQDN and h.initiator.id_payload.data == b"a.example"
    assert h.responder.id_payload.id_type == IdType.ID_FQDN and h.responder.id_payload.data == b"b.example"
    for side in (h.initiator, h.responder):
        assert [c.encoding for c in side.certs] == [CertEncoding.X509_CERT_SIGNATURE]
        assert side.auth.method == AuthMethod.DIGITAL_SIGNATURE  # strongSwan uses RFC 7427 when both support it
        assert sa.describe_auth(side.auth.method, side.auth.data) == "DIGITAL_SIGNATURE (14, RFC 7427: sha256WithRSAEncryption)"


def test_both_peers_announced_signature_hash_algorithms() -> None:
    h = handshake()
    for notifies in h.init_notifies:
        data = next(n.data for n in notifies if n.notify_type == NotifyType.SIGNATURE_HASH_ALGORITHMS)
        assert sa.decode_signature_hash_algorithms(data) == (2, 3, 4, 5)
        assert sa.encode_signature_hash_algorithms(sa.SUPPORTED_HASHES) == data  # we announce the same list
        assert sa.hash_names(sa.decode_signature_hash_algorithms(data)) == ["SHA2_256", "SHA2_384", "SHA2_512", "IDENTITY"]


@pytest.mark.parametrize("initiator", [True, False], ids=["initiator", "responder"])
def test_verify_accepts_strongswans_rsa_signature(initiator: bool) -> None:
    h = handshake()
    side = h.initiator if initiator else h.responder
    cert = _cert(side)
    result = sa.verify(side.auth.method, cert.public_key(), _octets(h, initiator), side.auth.data)
    assert result.ok, result.reason
    assert result.algorithm == "sha256WithRSAEncryption"
    assert result.hash == sa.HashAlgorithm.SHA2_256
    assert len(result.signature) == 256  # RSA-2048
    # Independent check with cryptography's API directly on the split-off signature.
    algid, signature = sa.split_rfc7427(side.auth.data)
    assert algid == bytes.fromhex("300d06092a864886f70d01010b0500")  # RFC 7427 A.1.2
    cert.public_key().verify(signature, _octets(h, initiator), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("initiator", [True, False], ids=["initiator", "responder"])
def test_verify_rejects_tampered_octets_wrong_key_and_wrong_method(initiator: bool) -> None:
    h = handshake()
    side, other = (h.initiator, h.responder) if initiator else (h.responder, h.initiator)
    octets = _octets(h, initiator)
    key = _cert(side).public_key()
    tampered = bytearray(octets)
    tampered[len(octets) // 2] ^= 0x01
    bad = sa.verify(side.auth.method, key, bytes(tampered), side.auth.data)
    assert not bad.ok and "does not verify with the certificate's RSA-2048 public key" in bad.reason
    assert not sa.verify(side.auth.method, _cert(other).public_key(), octets, side.auth.data).ok
    # The other side's nonce instead of ours: the octets a reflection attack would need.
    wrong_nonce = (h.init_request + h.ni if initiator else h.init_response + h.nr) + octets[-32:]
    assert not sa.verify(side.auth.method, key, wrong_nonce, side.auth.data).ok
    # The same signature presented as method 1 (PKCS#1 v1.5 with SHA-1) must not pass.
    _, signature = sa.split_rfc7427(side.auth.data)
    as_method_1 = sa.verify(AuthMethod.RSA_DIGITAL_SIGNATURE, key, octets, signature)
    assert not as_method_1.ok and "SHA-1" in as_method_1.algorithm


def test_strongswan_certificates_match_their_ids_but_not_our_lab_ca() -> None:
    h = handshake()
    lab = LabCa.create(key="ecdsa256", now=WHEN)
    for side, address in ((h.initiator, "192.0.2.1"), (h.responder, "192.0.2.2")):
        cert = _cert(side)
        assert der(cert) == side.certs[0].data
        assert check_identity(cert, side.id_payload.id_type, side.id_payload.data).ok
        assert check_identity(cert, IdType.ID_IPV4_ADDR, bytes(int(o) for o in address.split("."))).ok
        result = validate(side.certs[0].data, lab, now=WHEN, identity=side.id_payload)
        assert not result.ok and result.failed_check == "issuer"
        name = side.id_payload.data.decode()
        assert result.reason == f"certificate for {name} is signed by 'IKE Interop Test CA', not by the lab CA 'ikelab Lab CA'"
        identity = next(c for c in result.checks if c.name == "identity")
        assert identity.ok
    # The other peer's ID is not in this certificate.
    wrong = check_identity(_cert(h.initiator), IdType.ID_FQDN, b"b.example")
    assert wrong.detail == "ID b.example is not in the certificate's subjectAltName (has: a.example, 192.0.2.1)"


def test_strongswan_certificates_checked_against_time() -> None:
    h = handshake()
    cert = _cert(h.responder)
    lab = LabCa.create(key="ecdsa256", now=WHEN)
    early = validate(cert, lab, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    late = validate(cert, lab, now=dt.datetime(2027, 6, 1, tzinfo=dt.UTC))
    early_validity = next(c for c in early.checks if c.name == "validity")
    late_validity = next(c for c in late.checks if c.name == "validity")
    assert "certificate for b.example is not valid before 2026-11-26 21:14:17 UTC" in early_validity.detail
    assert "certificate for b.example expired on 2026-12-26 21:14:17 UTC" in late_validity.detail


def test_strongswan_certreq_is_sha1_hashes_and_does_not_name_our_ca() -> None:
    h = handshake()
    lab = LabCa.create(key="ecdsa256", now=WHEN)
    for certreq in [h.init_certreq, *h.initiator.certreqs]:
        assert certreq is not None and certreq.encoding == CertEncoding.X509_CERT_SIGNATURE
        assert len(split_certreq(certreq.data)) == 1
        assert requested_cas(certreq.data, lab) == []


def test_extracted_certificates_match_the_stored_vectors() -> None:
    """tests/vectors/pki/strongswan-{a,b}.example.pem were extracted from this capture by this code."""
    h = handshake()
    for side in (h.initiator, h.responder):
        name = side.id_payload.data.decode()
        stored = x509.load_pem_x509_certificate((PKI / f"strongswan-{name}.pem").read_bytes())
        assert der(stored) == side.certs[0].data
