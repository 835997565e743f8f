"""Signature AUTH: methods 1, 9, 10, 11, 14 — cross-checked with cryptography's own verify API."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.crypto.prf import prf
from ikelab.ikev2.auth import psk_auth
from ikelab.pki import asn1
from ikelab.pki import signature_auth as sa
from ikelab.pki.keys import generate_key
from ikelab.rng import SeededRandom
from ikelab.wire.ikev2_constants import AuthMethod, PrfId

M = AuthMethod
OCTETS = b"RealMessage" * 20 + b"N" * 32 + b"prf(SK_p, ID')" * 2


@pytest.fixture(scope="module")
def key_set() -> dict:
    return {
        "rsa2048": generate_key("rsa2048"),
        "ecdsa256": generate_key("ecdsa256"),
        "ecdsa384": generate_key("ecdsa384"),
        "ecdsa521": generate_key("ecdsa521"),
        "ed25519": generate_key("ed25519"),
    }


def _tamper(data: bytes) -> bytes:
    b = bytearray(data)
    b[7] ^= 0x80
    return bytes(b)


# --------------------------------------------------------------------------- classic methods


def test_method_1_is_pkcs1_v15_with_sha1(key_set) -> None:
    key = key_set["rsa2048"]
    auth = sa.sign(M.RSA_DIGITAL_SIGNATURE, key, OCTETS)
    assert len(auth) == 256
    key.public_key().verify(auth, OCTETS, padding.PKCS1v15(), hashes.SHA1())  # cryptography's own check
    ok = sa.verify(M.RSA_DIGITAL_SIGNATURE, key.public_key(), OCTETS, auth)
    assert ok.ok and ok.algorithm == "RSASSA-PKCS1-v1_5 with SHA-1" and ok.hash == sa.HashAlgorithm.SHA1
    bad = sa.verify(M.RSA_DIGITAL_SIGNATURE, key.public_key(), _tamper(OCTETS), auth)
    assert not bad.ok and "does not verify with the certificate's RSA-2048 public key" in bad.reason


@pytest.mark.parametrize(
    ("method", "key_type", "hash_cls", "size"),
    [
        (M.ECDSA_SHA256_P256, "ecdsa256", hashes.SHA256, 32),
        (M.ECDSA_SHA384_P384, "ecdsa384", hashes.SHA384, 48),
        (M.ECDSA_SHA512_P521, "ecdsa521", hashes.SHA512, 66),
    ],
)
def test_ecdsa_methods_are_raw_r_s(key_set, method, key_type, hash_cls, size) -> None:
    key = key_set[key_type]
    auth = sa.sign(method, key, OCTETS)
    assert len(auth) == 2 * size  # RFC 4754 §7: r and s, fixed length, no DER
    r, s = int.from_bytes(auth[:size], "big"), int.from_bytes(auth[size:], "big")
    key.public_key().verify(encode_dss_signature(r, s), OCTETS, ec.ECDSA(hash_cls()))
    assert sa.verify(method, key.public_key(), OCTETS, auth).ok
    assert not sa.verify(method, key.public_key(), _tamper(OCTETS), auth).ok
    short = sa.verify(method, key.public_key(), OCTETS, auth[:-1])
    assert not short.ok and f"r|s of {2 * size} bytes, this one has {2 * size - 1}" in short.reason


def test_ecdsa_signatures_are_deterministic_rfc6979(key_set) -> None:
    key = key_set["ecdsa256"]
    assert sa.sign(M.ECDSA_SHA256_P256, key, OCTETS) == sa.sign(M.ECDSA_SHA256_P256, key, OCTETS)
    seeded = generate_key("ecdsa256", SeededRandom(5, "x"), "k")
    assert sa.sign(M.DIGITAL_SIGNATURE, seeded, OCTETS) == sa.sign(M.DIGITAL_SIGNATURE, seeded, OCTETS)
    assert sa.sign(M.ECDSA_SHA256_P256, key, OCTETS, deterministic=False) != sa.sign(
        M.ECDSA_SHA256_P256, key, OCTETS, deterministic=False
    )


def test_key_and_method_mismatches_are_explained(key_set) -> None:
    with pytest.raises(sa.SignatureError, match=r"ECDSA_SHA384_P384 \(10\) needs an ECDSA P-384 key, not ECDSA P-256"):
        sa.sign(M.ECDSA_SHA384_P384, key_set["ecdsa256"], OCTETS)
    with pytest.raises(sa.SignatureError, match="needs an RSA key, not Ed25519"):
        sa.sign(M.RSA_DIGITAL_SIGNATURE, key_set["ed25519"], OCTETS)
    with pytest.raises(sa.SignatureError, match="SHARED_KEY_MIC"):
        sa.sign(M.SHARED_KEY_MIC, key_set["rsa2048"], OCTETS)
    auth = sa.sign(M.ECDSA_SHA256_P256, key_set["ecdsa256"], OCTETS)
    wrong = sa.verify(M.ECDSA_SHA256_P256, key_set["rsa2048"].public_key(), OCTETS, auth)
    assert wrong.reason == "AUTH method ECDSA_SHA256_P256 (9) but the certificate holds an RSA-2048 key"
    rsa_auth = sa.sign(M.DIGITAL_SIGNATURE, key_set["rsa2048"], OCTETS)
    wrong14 = sa.verify(M.DIGITAL_SIGNATURE, key_set["ecdsa256"].public_key(), OCTETS, rsa_auth)
    assert wrong14.reason == (
        "AUTH method DIGITAL_SIGNATURE (14) uses sha256WithRSAEncryption, but the certificate holds an ECDSA P-256 key"
    )
    psk = sa.verify(M.SHARED_KEY_MIC, key_set["rsa2048"].public_key(), OCTETS, b"x" * 32)
    assert not psk.ok and "not a signature method" in psk.reason


# --------------------------------------------------------------------------- RFC 7427


# RFC 7427 Appendix A: the AlgorithmIdentifier bytes, typed in from the RFC.
RFC7427_A = {
    "sha1WithRSAEncryption": "300d06092a864886f70d0101050500",
    "sha256WithRSAEncryption": "300d06092a864886f70d01010b0500",
    "sha384WithRSAEncryption": "300d06092a864886f70d01010c0500",
    "sha512WithRSAEncryption": "300d06092a864886f70d01010d0500",
    "ecdsa-with-SHA1": "300906072a8648ce3d0401",
    "ecdsa-with-SHA256": "300a06082a8648ce3d040302",
    "ecdsa-with-SHA384": "300a06082a8648ce3d040303",
    "ecdsa-with-SHA512": "300a06082a8648ce3d040304",
    "Ed25519": "300506032b6570",  # RFC 8420 §2
    "Ed448": "300506032b6571",
}


def test_algorithm_identifiers_match_rfc7427_appendix_a() -> None:
    by_name = {s.name: s for s in sa.SCHEMES}
    for name, hex_bytes in RFC7427_A.items():
        assert by_name[name].algorithm_identifier.hex() == hex_bytes
        assert sa.parse_algorithm_identifier(bytes.fromhex(hex_bytes)) == by_name[name]


def test_pss_algorithm_identifier_matches_independent_encoding() -> None:
    # RSASSA-PSS SHA-256, MGF1-SHA-256, salt 10: Chromium's verify_signed_data test data
    # (rsa-pss-sha256-salt10.pem, "ALGORITHM" block).
    chromium = base64.b64decode(
        "MEEGCSqGSIb3DQEBCjA0oA8wDQYJYIZIAWUDBAIBBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAIBBQCiAwIBCg=="
    )
    assert sa.pss_algorithm_identifier(sa.HashAlgorithm.SHA2_256, 10) == chromium
    scheme = sa.parse_algorithm_identifier(chromium)
    assert scheme.pss_salt == 10 and scheme.hash == sa.HashAlgorithm.SHA2_256
    # RFC 4055 defaults (empty parameters) mean SHA-1, MGF1-SHA-1, salt 20
    default = sa.parse_algorithm_identifier(bytes.fromhex("300d06092a864886f70d01010a3000"))
    assert (default.hash, default.pss_salt) == (sa.HashAlgorithm.SHA1, 20)


@pytest.mark.parametrize(
    ("key_type", "hash_choice", "scheme"),
    [
        ("rsa2048", None, "sha256WithRSAEncryption"),
        ("rsa2048", "sha384", "sha384WithRSAEncryption"),
        ("rsa2048", sa.HashAlgorithm.SHA2_512, "sha512WithRSAEncryption"),
        ("ecdsa256", None, "ecdsa-with-SHA256"),
        ("ecdsa384", None, "ecdsa-with-SHA384"),
        ("ecdsa521", 4, "ecdsa-with-SHA512"),
        ("ecdsa256", "SHA2_384", "ecdsa-with-SHA384"),
        ("ed25519", None, "Ed25519"),
    ],
)
def test_method_14_roundtrip_and_cryptography_crosscheck(key_set, key_type, hash_choice, scheme) -> None:
    key = key_set[key_type]
    auth = sa.sign(M.DIGITAL_SIGNATURE, key, OCTETS, hash_choice)
    algid, signature = sa.split_rfc7427(auth)
    assert auth[0] == len(algid)
    parsed = sa.parse_algorithm_identifier(algid)
    assert parsed.name == scheme
    # cryptography's own verify on the bare signature accepts it, and refuses tampered octets
    public = key.public_key()
    if parsed.key == "ecdsa":
        asn1.read_one(signature, asn1.SEQUENCE, "Ecdsa-Sig-Value")  # DER, not raw r|s
    _crypto_verify(public, parsed, signature, OCTETS)
    with pytest.raises(InvalidSignature):
        _crypto_verify(public, parsed, signature, _tamper(OCTETS))
    result = sa.verify(M.DIGITAL_SIGNATURE, public, OCTETS, auth)
    assert result.ok and result.algorithm == scheme and result.signature == signature
    assert not sa.verify(M.DIGITAL_SIGNATURE, public, _tamper(OCTETS), auth).ok


_HASH_CLS = {2: hashes.SHA256, 3: hashes.SHA384, 4: hashes.SHA512}


def _crypto_verify(public, scheme: sa.Scheme, signature: bytes, octets: bytes) -> None:
    if scheme.key == "rsa":
        public.verify(signature, octets, padding.PKCS1v15(), _HASH_CLS[scheme.hash]())
    elif scheme.key == "ecdsa":
        public.verify(signature, octets, ec.ECDSA(_HASH_CLS[scheme.hash]()))
    else:
        public.verify(signature, octets)


def test_method_14_rsassa_pss(key_set) -> None:
    key = key_set["rsa2048"]
    auth = sa.sign(M.DIGITAL_SIGNATURE, key, OCTETS, "sha256", pss=True)
    algid, signature = sa.split_rfc7427(auth)
    assert algid == sa.pss_algorithm_identifier(sa.HashAlgorithm.SHA2_256)
    key.public_key().verify(signature, OCTETS, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    result = sa.verify(M.DIGITAL_SIGNATURE, key.public_key(), OCTETS, auth)
    assert result.ok and result.algorithm == "RSASSA-PSS(SHA-256, salt 32)"
    assert not sa.verify(M.DIGITAL_SIGNATURE, key.public_key(), _tamper(OCTETS), auth).ok
    with pytest.raises(sa.SignatureError, match="RSASSA-PSS needs an RSA key"):
        sa.sign(M.DIGITAL_SIGNATURE, key_set["ecdsa256"], OCTETS, pss=True)


@pytest.mark.parametrize(
    ("auth_data", "reason"),
    [
        (b"", "empty Authentication Data"),
        (b"\x20\x30\x0d", "ASN.1 length octet says 32 bytes, only 2 follow"),
        (bytes([7]) + bytes.fromhex("300506032b6571")[:-1] + b"\x00" + b"sig", "unknown signature algorithm"),
        (bytes([4]) + bytes.fromhex("30820005") + b"sig", "not minimally encoded"),
        (bytes([3]) + bytes.fromhex("040100") + b"sig", "expected tag 0x30"),
    ],
)
def test_malformed_rfc7427_data_gives_reasons_not_tracebacks(key_set, auth_data: bytes, reason: str) -> None:
    result = sa.verify(M.DIGITAL_SIGNATURE, key_set["rsa2048"].public_key(), OCTETS, auth_data)
    assert not result.ok and reason in result.reason


def test_describe_auth() -> None:
    auth = bytes([15]) + bytes.fromhex(RFC7427_A["sha256WithRSAEncryption"]) + b"\x00" * 256
    assert sa.describe_auth(14, auth) == "DIGITAL_SIGNATURE (14, RFC 7427: sha256WithRSAEncryption)"
    assert sa.describe_auth(9) == "ECDSA_SHA256_P256 (9)"
    assert sa.describe_auth(14, b"\x05junk") == "DIGITAL_SIGNATURE (14, RFC 7427: unreadable AlgorithmIdentifier)"


# --------------------------------------------------------------------------- choosing and the notify


def test_choose_follows_rfc7427_negotiation(key_set) -> None:
    rsa_key, p256, p384, ed = key_set["rsa2048"], key_set["ecdsa256"], key_set["ecdsa384"], key_set["ed25519"]
    assert sa.choose(rsa_key, None) == (M.RSA_DIGITAL_SIGNATURE, None)
    assert sa.choose(p256, ()) == (M.ECDSA_SHA256_P256, None)
    assert sa.choose(p384, None) == (M.ECDSA_SHA384_P384, None)
    assert sa.choose(rsa_key, (2, 3, 4, 5)) == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.SHA2_256)
    assert sa.choose(p384, (2, 3, 4)) == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.SHA2_384)
    assert sa.choose(p384, (4,)) == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.SHA2_512)
    assert sa.choose(p256, (1,)) == (M.ECDSA_SHA256_P256, None)  # nothing usable: classic method
    assert sa.choose(ed, (2, 5)) == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.IDENTITY)
    assert sa.choose(ed, None) == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.IDENTITY)  # EdDSA has no classic method
    assert sa.choose(rsa_key, (2, 3), prefer="classic") == (M.RSA_DIGITAL_SIGNATURE, None)
    assert sa.choose(p256, None, prefer="rfc7427") == (M.DIGITAL_SIGNATURE, sa.HashAlgorithm.SHA2_256)
    with pytest.raises(sa.SignatureError, match="no classic auth method"):
        sa.choose(ed, None, prefer="classic")


def test_signature_hash_algorithms_notify_data() -> None:
    assert sa.encode_signature_hash_algorithms() == bytes.fromhex("0002000300040005")
    assert sa.decode_signature_hash_algorithms(bytes.fromhex("00020004")) == (2, 4)
    assert sa.decode_signature_hash_algorithms(b"") == ()
    assert sa.hash_names((1, 5, 9)) == ["SHA1", "IDENTITY", "UNKNOWN(9)"]
    with pytest.raises(ValueError, match="3 bytes is odd"):
        sa.decode_signature_hash_algorithms(b"\x00\x02\x00")
    assert sa.hash_algorithm("sha-256") == sa.HashAlgorithm.SHA2_256
    with pytest.raises(sa.SignatureError, match="unknown hash 'md5'"):
        sa.hash_algorithm("md5")


def test_signed_octets_are_the_psk_octets() -> None:
    """The same RealMessage | Nonce | prf(SK_p, ID') as ikelab.ikev2.auth for PSK (RFC 7296 §2.15)."""
    p = prf(PrfId.PRF_HMAC_SHA2_256)
    message, nonce, sk_p, id_body = b"\x01" * 300, b"\x02" * 32, b"\x03" * 32, b"\x02\x00\x00\x00a.example"
    octets = sa.signed_octets(p, message, nonce, sk_p, id_body)
    assert octets.octets == psk_auth(p, b"secret", message, nonce, sk_p, id_body).signed_octets
    assert octets.maced_id == p(sk_p, id_body) and octets.octets == message + nonce + octets.maced_id


def test_the_ike_auth_flow_with_lab_certificates() -> None:
    """What ike_auth does with certificates, end to end, without the engine."""
    import datetime as dt

    from ikelab.pki.ca import LabCa, der
    from ikelab.pki.validation import validate
    from ikelab.wire.ikev2 import AuthPayload, CertPayload, IdPayload
    from ikelab.wire.ikev2_constants import CertEncoding, IdType

    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    ca = LabCa.create(key="ecdsa256", now=now, rng=SeededRandom(1, "pki"))
    cert, key = ca.issue("a.example", san_dns=["a.example"], key_type="ecdsa384")
    p = prf(PrfId.PRF_HMAC_SHA2_256)
    id_i = IdPayload(True, IdType.ID_FQDN, b"a.example")
    real_message_1, nr, sk_pi = b"\x00" * 400, b"\x11" * 32, b"\x22" * 32
    # sender: the peer announced SHA2_256..IDENTITY in IKE_SA_INIT, so RFC 7427 with SHA-384 fits P-384
    method, hash_choice = sa.choose(key, sa.decode_signature_hash_algorithms(sa.encode_signature_hash_algorithms()))
    octets = sa.signed_octets(p, real_message_1, nr, sk_pi, id_i.id_body())
    auth = AuthPayload(method, sa.sign(method, key, octets.octets, hash_choice))
    cert_payload = CertPayload(CertEncoding.X509_CERT_SIGNATURE, der(cert))
    # receiver: validate the certificate for the ID, then verify AUTH with its key
    checked = validate(cert_payload.data, ca, now=now, identity=id_i)
    assert checked.ok, checked.reason
    expected = sa.signed_octets(p, real_message_1, nr, sk_pi, id_i.id_body()).octets
    result = sa.verify(auth.method, checked.public_key, expected, auth.data)
    assert result.ok and result.algorithm == "ecdsa-with-SHA384" and result.hash in sa.SUPPORTED_HASHES


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from([1, 2, 9, 10, 11, 14, 200]), data=st.binary(max_size=300))
def test_verify_never_raises_on_hostile_auth_data(key_set, method: int, data: bytes) -> None:
    for key in (key_set["rsa2048"], key_set["ecdsa256"], key_set["ed25519"]):
        result = sa.verify(method, key.public_key(), OCTETS, data)
        assert not result.ok and result.reason


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=120))
def test_verify_method_14_with_random_algorithm_identifier(key_set, body: bytes) -> None:
    algid = asn1.encode(asn1.SEQUENCE, body)
    data = bytes([len(algid) & 0xFF]) + algid + b"\x00" * 64
    assert not sa.verify(M.DIGITAL_SIGNATURE, key_set["ecdsa256"].public_key(), OCTETS, data).ok
