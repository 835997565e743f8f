"""Certificate validation: each bad certificate is refused with a message naming the failed check."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.ikev2.config import Identity
from ikelab.pki.ca import LabCa, der, dn
from ikelab.pki.validation import (
    cert_payloads,
    certreq_data,
    certreq_hash,
    check_identity,
    dn_der,
    format_dn,
    parse_dn,
    requested_cas,
    split_certreq,
    validate,
)
from ikelab.wire.ikev2 import CertPayload, IdPayload
from ikelab.wire.ikev2_constants import CertEncoding, IdType

UTC = dt.UTC
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PKI = Path(__file__).parent / "vectors" / "pki"


@pytest.fixture(scope="module")
def lab() -> LabCa:
    return LabCa.create(key="ecdsa256", now=NOW)


@pytest.fixture(scope="module")
def good(lab: LabCa):
    return lab.issue(
        "b.example",
        san_dns=["b.example"],
        san_ip=["192.0.2.2", "2001:db8::2"],
        san_email=["b@b.example"],
        key_type="rsa2048",
    )


def _id(text: str) -> Identity:
    return Identity.parse(text)


def test_good_certificate(lab: LabCa, good) -> None:
    cert, key = good
    result = validate(der(cert), lab, now=NOW, identity=_id("b.example"))
    assert result.ok and bool(result) and result.reason == "" and result.failed_check is None
    assert [c.name for c in result.checks] == ["signature", "validity", "validity", "constraints", "key usage", "identity"]
    assert all(c.ok for c in result.checks)
    assert result.subject == "O=ikelab, CN=b.example"
    assert result.chain == ("O=ikelab, CN=b.example", "O=ikelab, CN=ikelab Lab CA")
    assert result.public_key.public_numbers() == key.public_key().public_numbers()
    assert result.as_dict()["checks"][0] == {
        "name": "signature",
        "ok": True,
        "detail": "certificate for b.example is signed by the trusted CA 'ikelab Lab CA'",
    }


def test_expired(lab: LabCa) -> None:
    cert, _ = lab.issue(
        "b.example", san_dns=["b.example"], key_type="ecdsa256",
        not_before=dt.datetime(2025, 1, 1), not_after=dt.datetime(2025, 5, 1),
    )
    result = validate(cert, lab, now=NOW, identity=_id("b.example"))
    assert not result.ok and result.failed_check == "validity"
    assert result.reason == "certificate for b.example expired on 2025-05-01 (it is now 2025-06-01 12:00:00 UTC)"
    assert "certificate for b.example expired on 2025-05-01" in result.reason  # the wording the issue asks for


def test_not_yet_valid(lab: LabCa) -> None:
    cert, _ = lab.issue(
        "b.example", san_dns=["b.example"], key_type="ecdsa256",
        not_before=dt.datetime(2025, 7, 1, 8, 30), not_after=dt.datetime(2026, 7, 1),
    )
    result = validate(cert, lab, now=NOW)
    assert result.reason == "certificate for b.example is not valid before 2025-07-01 08:30:00 UTC (it is now 2025-06-01 12:00:00 UTC)"
    # now as a POSIX timestamp works too
    assert validate(cert, lab, now=dt.datetime(2025, 8, 1, tzinfo=UTC).timestamp()).ok


def test_expired_ca() -> None:
    ca = LabCa.create("Old CA", key="ecdsa256", now=dt.datetime(2020, 1, 1, tzinfo=UTC), lifetime=dt.timedelta(days=365))
    cert, _ = ca.issue("b.example", key_type="ecdsa256", not_after=dt.datetime(2030, 1, 1))
    result = validate(cert, ca, now=NOW)
    assert result.reason == "CA certificate 'Old CA' expired on 2020-12-31 (it is now 2025-06-01 12:00:00 UTC)"


def test_wrong_ca(lab: LabCa) -> None:
    mallory = LabCa.create("Mallory CA", key="ecdsa256", now=NOW)
    cert, _ = mallory.issue("b.example", san_dns=["b.example"], key_type="ecdsa256")
    result = validate(der(cert), lab, now=NOW, identity=_id("b.example"))
    assert not result.ok and result.failed_check == "issuer"
    assert result.reason == "certificate for b.example is signed by 'Mallory CA', not by the lab CA 'ikelab Lab CA'"
    # the remaining checks still ran, so the trace can show them
    assert {c.name: c.ok for c in result.checks} == {"issuer": False, "validity": True, "key usage": True, "identity": True}
    several = validate(cert, [lab, LabCa.create("Other CA", key="ecdsa256", now=NOW)], now=NOW)
    assert several.reason == (
        "certificate for b.example is signed by 'Mallory CA', not by a trusted CA ('ikelab Lab CA', 'Other CA')"
    )
    assert validate(cert, [], now=NOW).reason == "no trusted CA is configured, so no certificate can be accepted"


def test_impostor_ca_with_the_same_name(lab: LabCa) -> None:
    impostor = LabCa.create("ikelab Lab CA", key="ecdsa256", now=NOW)
    cert, _ = impostor.issue("b.example", key_type="ecdsa256")
    result = validate(cert, lab, now=NOW)
    assert result.failed_check == "signature"
    assert result.reason == (
        "certificate for b.example names 'ikelab Lab CA' as issuer, but its signature does not verify with that "
        "CA's key (another CA with the same name signed it?)"
    )


@pytest.mark.parametrize(
    ("identity", "ok", "detail"),
    [
        ("b.example", True, "ID b.example is a dNSName in the certificate's subjectAltName"),
        ("@B.Example", True, "ID B.Example is a dNSName in the certificate's subjectAltName"),
        ("a.example", False, "ID a.example is not in the certificate's subjectAltName (has: b.example, 192.0.2.2, 2001:db8::2, b@b.example)"),
        ("192.0.2.2", True, "ID 192.0.2.2 is an iPAddress in the certificate's subjectAltName"),
        ("192.0.2.1", False, "ID 192.0.2.1 is not in the certificate's subjectAltName (has: b.example, 192.0.2.2, 2001:db8::2, b@b.example)"),
        ("2001:db8::2", True, "ID 2001:db8::2 is an iPAddress in the certificate's subjectAltName"),
        ("2001:db8::1", False, "ID 2001:db8::1 is not in the certificate's subjectAltName (has: b.example, 192.0.2.2, 2001:db8::2, b@b.example)"),
        ("b@B.EXAMPLE", True, "ID b@B.EXAMPLE is an rfc822Name in the certificate's subjectAltName"),
        ("a@b.example", False, "ID a@b.example is not in the certificate's subjectAltName (has: b.example, 192.0.2.2, 2001:db8::2, b@b.example)"),
    ],
)
def test_identity_against_subject_alt_name(lab: LabCa, good, identity: str, ok: bool, detail: str) -> None:
    cert, _ = good
    result = validate(cert, lab, now=NOW, identity=_id(identity))
    assert result.ok is ok
    check = result.checks[-1]
    assert check.name == "identity" and check.detail == detail
    if not ok:
        assert result.reason == detail and result.failed_check == "identity"


def test_identity_types_do_not_cross(good) -> None:
    cert, _ = good
    # an FQDN that happens to be the text of a SAN IP address is not that address
    assert not check_identity(cert, IdType.ID_FQDN, b"192.0.2.2").ok
    assert not check_identity(cert, IdType.ID_RFC822_ADDR, b"b.example").ok
    bad = check_identity(cert, IdType.ID_IPV4_ADDR, b"\xc0\x00\x02")
    assert bad.detail == "ID_IPV4_ADDR with 3 bytes of data is not an address"
    key_id = check_identity(cert, IdType.ID_KEY_ID, b"\x01\x02")
    assert key_id.detail == "an identity of type ID_KEY_ID cannot be matched against a certificate"


def test_no_subject_alt_name(lab: LabCa) -> None:
    cert, _ = lab.issue("b.example", key_type="ecdsa256")
    assert check_identity(cert, IdType.ID_FQDN, b"b.example").detail == (
        "ID b.example is not in the certificate's subjectAltName (has: none)"
    )


def test_distinguished_name_identity(lab: LabCa, good) -> None:
    cert, _ = good
    subject_der = cert.subject.public_bytes()
    exact = check_identity(cert, IdType.ID_DER_ASN1_DN, subject_der)
    assert exact.ok and exact.detail == "ID DN equals the certificate's subject 'O=ikelab, CN=b.example', byte for byte"
    # strongSwan notation, left to right in DER order
    assert dn_der("O=ikelab, CN=b.example") == subject_der
    assert validate(cert, lab, now=NOW, identity=IdPayload(False, IdType.ID_DER_ASN1_DN, dn_der("O=ikelab, CN=b.example"))).ok
    # same names, other string type (PrintableString) and case: still the same DN (RFC 5280 §7.1)
    printable = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "IKELAB", _type=x509.name._ASN1Type.PrintableString),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "b.example", _type=x509.name._ASN1Type.PrintableString),
        ]
    ).public_bytes()
    assert printable != subject_der
    folded = check_identity(cert, IdType.ID_DER_ASN1_DN, printable)
    assert folded.ok and "string types or case differ" in folded.detail
    # another DN, the reversed order, garbage
    other = check_identity(cert, IdType.ID_DER_ASN1_DN, dn_der("O=ikelab, CN=a.example"))
    assert other.detail == "ID DN 'O=ikelab, CN=a.example' is not the certificate's subject 'O=ikelab, CN=b.example'"
    assert not check_identity(cert, IdType.ID_DER_ASN1_DN, dn_der("CN=b.example, O=ikelab")).ok
    garbage = check_identity(cert, IdType.ID_DER_ASN1_DN, b"\x30\x05\x31")
    assert not garbage.ok and garbage.detail.startswith("ID_DER_ASN1_DN is not a DER distinguished name")


def test_dn_text_helpers() -> None:
    name = parse_dn("C=ZZ, O=IKE Interop Test, CN=a.example")
    assert name == dn("a.example", "IKE Interop Test", "ZZ")
    assert format_dn(name) == "C=ZZ, O=IKE Interop Test, CN=a.example"
    assert format_dn(name.public_bytes()) == "C=ZZ, O=IKE Interop Test, CN=a.example"
    assert parse_dn("/C=ZZ/O=x\\, y/CN=z") == x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "ZZ"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "x, y"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "z"),
        ]
    )
    with pytest.raises(ValueError, match="not KEY=value with a known KEY"):
        parse_dn("CN=a, XYZ=b")
    # the strongSwan certificate's subject, as strongSwan prints it
    ss = x509.load_pem_x509_certificate((PKI / "strongswan-a.example.pem").read_bytes())
    assert format_dn(ss.subject) == "C=ZZ, O=IKE Interop Test, CN=a.example"
    assert check_identity(ss, IdType.ID_DER_ASN1_DN, dn_der("C=ZZ, O=IKE Interop Test, CN=a.example")).ok


def test_intermediate_chain(lab: LabCa) -> None:
    inter = lab.issue_ca("ikelab Intermediate CA", key="ecdsa256")
    cert, _ = inter.issue("a.example", san_dns=["a.example"], key_type="ecdsa256")
    missing = validate(cert, lab, now=NOW)
    assert missing.reason == (
        "certificate for a.example is signed by 'ikelab Intermediate CA', not by the lab CA 'ikelab Lab CA'"
    )
    result = validate(cert, lab, now=NOW, identity=_id("a.example"), intermediates=[der(inter.certificate)])
    assert result.ok, result.reason
    assert result.chain == (
        "O=ikelab, CN=a.example",
        "O=ikelab, CN=ikelab Intermediate CA",
        "O=ikelab, CN=ikelab Lab CA",
    )
    assert [c.detail for c in result.checks if c.name == "signature"] == [
        "certificate for a.example is signed by the intermediate CA 'ikelab Intermediate CA'",
        "certificate for ikelab Intermediate CA is signed by the trusted CA 'ikelab Lab CA'",
    ]
    # trusting the intermediate directly also works
    assert validate(cert, inter, now=NOW).ok


def test_path_length_and_ca_flag(lab: LabCa) -> None:
    inter = lab.issue_ca("Intermediate 1", key="ecdsa256", path_length=0)
    inter2 = inter.issue_ca("Intermediate 2", key="ecdsa256")
    cert, _ = inter2.issue("a.example", key_type="ecdsa256")
    result = validate(cert, lab, now=NOW, intermediates=[inter.certificate, inter2.certificate])
    assert result.reason == "intermediate CA certificate 'Intermediate 1' allows 0 CA(s) below it (pathLenConstraint), the chain has 1"
    # an end-entity certificate used as if it were a CA
    fake_ca_cert, fake_ca_key = lab.issue("Not A CA", key_type="ecdsa256")
    fake = LabCa(fake_ca_cert, fake_ca_key, now=NOW)
    leaf, _ = fake.issue("a.example", key_type="ecdsa256")
    result = validate(leaf, lab, now=NOW, intermediates=[fake_ca_cert])
    assert result.failed_check == "constraints"
    assert result.reason == (
        "intermediate CA certificate 'Not A CA' is not a CA certificate (basicConstraints CA:TRUE missing), "
        "so it may not issue certificates"
    )


def test_key_usage_without_digital_signature(lab: LabCa) -> None:
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)  # keyEncipherment only
    cert, _ = lab.issue("b.example", key_type="rsa2048", key_usage=usage)
    result = validate(cert, lab, now=NOW)
    assert result.failed_check == "key usage"
    assert result.reason == "certificate for b.example has keyUsage without digitalSignature, so it may not sign IKE AUTH"


@pytest.mark.parametrize("data", [b"", b"not a certificate", b"\x30\x82\x01\x00" + b"\x00" * 10])
def test_garbage_is_a_reason_not_a_traceback(lab: LabCa, data: bytes) -> None:
    result = validate(data, lab, now=NOW, identity=_id("b.example"))
    assert not result.ok and result.failed_check == "certificate"
    assert result.reason.startswith("the peer's certificate is not a readable X.509 certificate (")
    bad_inter = validate(lab.issue("x", key_type="ecdsa256")[0], lab, now=NOW, intermediates=[b"junk"])
    assert bad_inter.reason.startswith("intermediate certificate 1 is not a readable X.509 certificate")


def test_certreq(lab: LabCa) -> None:
    spki = lab.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert certreq_hash(lab) == hashlib.sha1(spki).digest() == certreq_hash(lab.certificate)
    other = LabCa.create("Other CA", key="ecdsa256", now=NOW)
    data = certreq_data([lab, other])
    assert split_certreq(data) == [certreq_hash(lab), certreq_hash(other)]
    assert requested_cas(certreq_hash(other), [lab, other]) == [other.certificate]
    assert requested_cas(b"", lab) == []
    with pytest.raises(ValueError, match="21 bytes is not a list of 20-byte SHA-1 hashes"):
        split_certreq(b"\x00" * 21)


def test_cert_payloads(lab: LabCa, good) -> None:
    cert, _ = good
    inter = lab.issue_ca("I", key="ecdsa256")
    bundle = cert_payloads(
        [
            CertPayload(CertEncoding.X509_CERT_SIGNATURE, der(cert)),
            CertPayload(CertEncoding.HASH_AND_URL_X509, b"\x00" * 20 + b"http://example.invalid/"),
            CertPayload(CertEncoding.X509_CERT_SIGNATURE, der(inter.certificate)),
        ]
    )
    assert bundle.end_entity == der(cert) and bundle.intermediates == (der(inter.certificate),)
    assert bundle.notes == ("CERT with encoding HASH_AND_URL_X509 (12) ignored: only X.509 (4) is supported",)
    assert cert_payloads([]).end_entity is None


def test_ip_san_roundtrip(good) -> None:
    cert, _ = good
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.2") in sans.get_values_for_type(x509.IPAddress)


# --------------------------------------------------------------------------- hostile bytes


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), id_type=st.sampled_from(list(IdType)), id_data=st.binary(max_size=40))
def test_validate_never_raises(lab: LabCa, data: bytes, id_type: int, id_data: bytes) -> None:
    result = validate(data, lab, now=NOW, identity=(id_type, id_data))
    assert not result.ok and result.reason


@settings(max_examples=150, deadline=None)
@given(id_type=st.sampled_from(list(IdType)), id_data=st.binary(max_size=80))
def test_identity_check_never_raises(good, id_type: int, id_data: bytes) -> None:
    check = check_identity(good[0], id_type, id_data)
    assert check.name == "identity" and check.detail


def test_same_identity() -> None:
    from ikelab.pki.validation import same_identity

    utf8 = dn_der("O=ikelab, CN=b.example")
    printable = x509.Name([
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "IKELAB", _type=x509.name._ASN1Type.PrintableString),
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "b.example", _type=x509.name._ASN1Type.PrintableString),
    ]).public_bytes()
    dn = IdType.ID_DER_ASN1_DN
    assert same_identity(dn, utf8, dn, printable)
    assert not same_identity(dn, utf8, dn, dn_der("O=ikelab, CN=a.example"))
    assert not same_identity(dn, utf8, dn, b"\x30\x05\x31")  # garbage is nobody
    assert same_identity(IdType.ID_FQDN, b"b.example", IdType.ID_FQDN, b"b.example")
    assert not same_identity(IdType.ID_FQDN, b"b.example", dn, utf8)
