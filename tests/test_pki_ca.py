"""The lab CA: certificates with the right extensions, reproducible under a seed, files for swanctl."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ikelab.pki import keys
from ikelab.pki.ca import SEEDED_EPOCH, LabCa, der, load_certificate, pem, write_swanctl
from ikelab.rng import SeededRandom, SystemRandom

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def rsa_ca() -> LabCa:
    return LabCa.create(key="rsa2048", now=NOW)


@pytest.fixture(scope="module")
def seeded_rsa_ca() -> LabCa:
    return LabCa.create(key="rsa2048", now=SEEDED_EPOCH, rng=SeededRandom(7, "pki"))


def _ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_ca_certificate_is_a_self_signed_root(rsa_ca: LabCa) -> None:
    cert = rsa_ca.certificate
    assert rsa_ca.name == "ikelab Lab CA"
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ikelab"
    cert.verify_directly_issued_by(cert)
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert cert.not_valid_before_utc == NOW - dt.timedelta(hours=1)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048


@pytest.mark.parametrize(
    ("key_type", "check"),
    [
        ("rsa2048", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 2048),
        ("ecdsa256", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp256r1"),
        ("ecdsa384", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp384r1"),
        ("ecdsa521", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp521r1"),
        ("ed25519", lambda k: isinstance(k, ed25519.Ed25519PublicKey)),
    ],
)
def test_issue_end_entity(rsa_ca: LabCa, key_type: str, check) -> None:
    cert, key = rsa_ca.issue("a.example", san_dns=["a.example"], san_ip=["192.0.2.1", "2001:db8::1"], key_type=key_type)
    assert check(cert.public_key())
    assert keys.public_key_der(key) == keys.public_key_der(cert.public_key())
    cert.verify_directly_issued_by(rsa_ca.certificate)
    assert cert.issuer == rsa_ca.certificate.subject
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    assert not _ext(cert, x509.BasicConstraints).value.ca
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    ski = _ext(rsa_ca.certificate, x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.not_valid_before_utc == NOW - dt.timedelta(hours=1)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=1825)


def test_issue_validity_email_and_errors(rsa_ca: LabCa) -> None:
    start, end = dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1)  # naive = UTC
    cert, _ = rsa_ca.issue("c", san_email=["alice@example.com"], key_type="ecdsa256", not_before=start, not_after=end)
    assert cert.not_valid_before_utc == start.replace(tzinfo=dt.UTC)
    assert cert.not_valid_after_utc == end.replace(tzinfo=dt.UTC)
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    with pytest.raises(ValueError, match="must be after"):
        rsa_ca.issue("c", key_type="ecdsa256", not_before=end, not_after=start)
    with pytest.raises(ValueError, match="unknown key type 'dsa1024'"):
        rsa_ca.issue("c", key_type="dsa1024")


def test_one_bound_given_sets_the_other_where_the_default_would_contradict_it(rsa_ca: LabCa) -> None:
    past, future = NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=3650)
    expired, _ = rsa_ca.issue("c", key_type="ecdsa256", not_after=past)  # a lesson's expired certificate
    assert expired.not_valid_after_utc == past
    assert expired.not_valid_before_utc == past - dt.timedelta(days=1825)
    not_yet, _ = rsa_ca.issue("c", key_type="ecdsa256", not_before=future)
    assert not_yet.not_valid_before_utc == future
    assert not_yet.not_valid_after_utc == future + dt.timedelta(days=1825)
    usual, _ = rsa_ca.issue("c", key_type="ecdsa256", not_after=future)  # no contradiction: defaults as before
    assert usual.not_valid_before_utc == NOW - dt.timedelta(hours=1)
    earliest = dt.datetime(1950, 1, 1, tzinfo=dt.UTC)  # the bound set stays within what X.509 takes
    oldest, _ = rsa_ca.issue("c", key_type="ecdsa256", not_after=earliest + dt.timedelta(days=1))
    assert oldest.not_valid_before_utc == earliest
    latest = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    last, _ = rsa_ca.issue("c", key_type="ecdsa256", not_before=latest)
    assert last.not_valid_after_utc == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def test_unseeded_cas_differ() -> None:
    a = LabCa.create(key="ecdsa256", now=NOW)
    b = LabCa.create(key="ecdsa256", now=NOW, rng=SystemRandom())
    assert a.certificate.serial_number != b.certificate.serial_number
    assert keys.public_key_der(a.private_key) != keys.public_key_der(b.private_key)


@pytest.mark.parametrize("key", ["ecdsa256", "ecdsa384", "ed25519"])
def test_seeded_ca_is_byte_for_byte_reproducible(key: str) -> None:
    def build(seed: int) -> tuple[bytes, bytes]:
        ca = LabCa.create(key=key, now=SEEDED_EPOCH, rng=SeededRandom(seed, "pki"))
        cert, _ = ca.issue("a.example", san_dns=["a.example"], key_type="ecdsa256")
        return der(ca.certificate) + der(cert), ca.key_pem()

    assert build(1) == build(1)
    assert build(1) != build(2)


def test_seeded_rsa_key_is_derived_valid_and_reproducible(seeded_rsa_ca: LabCa) -> None:
    again = keys.generate_key("rsa2048", SeededRandom(7, "pki"), "lab CA 'ikelab Lab CA' key")
    assert keys.private_key_der(again) == keys.private_key_der(seeded_rsa_ca.private_key)
    numbers = seeded_rsa_ca.private_key.private_numbers()
    assert numbers.public_numbers.e == 65537 and numbers.public_numbers.n.bit_length() == 2048
    assert numbers.p.bit_length() == numbers.q.bit_length() == 1024
    # RSA PKCS#1 v1.5 certificate signatures are deterministic: the whole certificate repeats.
    ca2 = LabCa.create(key="rsa2048", now=SEEDED_EPOCH, rng=SeededRandom(7, "pki"))
    assert der(ca2.certificate) == der(seeded_rsa_ca.certificate)


def test_seeded_ecdsa_keys_are_valid_scalars() -> None:
    for key_type in ("ecdsa256", "ecdsa384", "ecdsa521"):
        a = keys.generate_key(key_type, SeededRandom(3, "x"), "k")
        b = keys.generate_key(key_type, SeededRandom(3, "x"), "k")
        assert a.private_numbers().private_value == b.private_numbers().private_value
        assert keys.key_type_of(a) == key_type


def test_pem_der_and_save_load_roundtrip(rsa_ca: LabCa, tmp_path) -> None:
    cert, key = rsa_ca.issue("a.example", key_type="ecdsa256")
    assert load_certificate(pem(cert)) == cert
    assert load_certificate(der(cert)) == cert
    assert pem(cert).startswith(b"-----BEGIN CERTIFICATE-----")
    assert keys.private_key_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert keys.public_key_der(keys.load_private_key(keys.private_key_pem(key))) == keys.public_key_der(key)
    cert_path, key_path = rsa_ca.save(tmp_path / "ca")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded = LabCa.load(cert_path.read_bytes(), key_path.read_bytes(), now=NOW)
    assert loaded.certificate == rsa_ca.certificate and loaded.name == "ikelab Lab CA"
    other = LabCa.create(key="ecdsa256", now=NOW)
    with pytest.raises(ValueError, match="does not belong"):
        LabCa.load(cert_path.read_bytes(), other.key_pem())


def test_write_swanctl_layout(rsa_ca: LabCa, tmp_path) -> None:
    cert, key = rsa_ca.issue("b.example", san_dns=["b.example"], key_type="ecdsa256")
    inter = rsa_ca.issue_ca("ikelab Intermediate CA", key="ecdsa256")
    files = write_swanctl(tmp_path, rsa_ca, cert, key, name="right", intermediates=[inter.certificate])
    assert files.ca_cert == tmp_path / "x509ca" / "ikelab-ca.pem"
    assert files.cert == tmp_path / "x509" / "right.pem" and files.cert_name == "right.pem"
    assert files.key == tmp_path / "private" / "right.pem"
    assert files.intermediates == (tmp_path / "x509" / "right-int1.pem",)
    assert load_certificate(files.ca_cert.read_bytes()) == rsa_ca.certificate
    assert load_certificate(files.cert.read_bytes()) == cert
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert keys.public_key_der(keys.load_private_key(files.key.read_bytes())) == keys.public_key_der(key)
    only_ca = write_swanctl(tmp_path / "responder", rsa_ca)
    assert only_ca.cert is None and only_ca.key is None and only_ca.ca_cert.exists()


def test_intermediate_ca(rsa_ca: LabCa) -> None:
    inter = rsa_ca.issue_ca("ikelab Intermediate CA", key="ecdsa256")
    inter.certificate.verify_directly_issued_by(rsa_ca.certificate)
    assert inter.chain == (rsa_ca.certificate,)
    bc = _ext(inter.certificate, x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    cert, _ = inter.issue("a.example", key_type="ecdsa256")
    cert.verify_directly_issued_by(inter.certificate)
