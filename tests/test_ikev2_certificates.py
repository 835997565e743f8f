"""IKE_AUTH with certificates from the lab CA: signatures (classic and RFC 7427), validation, and
each way a certificate can be refused, from both peers' side."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from conftest import messages, needs_tshark, run
from ikelab.lessons import load_lesson
from ikelab.trace import AuthEvent, CertificateEvent

LESSON = load_lesson("ikev2-certs")


def with_certs(left: dict | None = None, right: dict | None = None, **changes):
    lesson = LESSON
    for side, values in (("left", left), ("right", right)):
        if values:
            peer = getattr(lesson, side)
            cert = dataclasses.replace(peer.certificate, **values.pop("certificate", {}))
            lesson = dataclasses.replace(lesson, **{side: dataclasses.replace(peer, certificate=cert, **values)})
    return dataclasses.replace(lesson, **changes)


@pytest.mark.parametrize("key", ["ecdsa256", "ecdsa384", "rsa2048", "ed25519"])
def test_certificate_handshake(key):
    session = run(with_certs(left={"certificate": {"key": key}}, right={"certificate": {"key": key}}))
    assert session.outcome.success, session.outcome.failures
    verified = [e for e in session.trace.of(AuthEvent) if e.action == "verified"]
    assert len(verified) == 2 and all(e.ok for e in verified)
    assert all("RFC 7427" in e.method for e in verified)
    certs = session.trace.of(CertificateEvent)
    assert {c.peer for c in certs} == {"left", "right"} and all(c.ok for c in certs)
    auth_request = messages(session)[2]
    assert auth_request.summary == "HDR, SK {IDi, CERT, CERTREQ, IDr, AUTH, SA, TSi, TSr}"


def test_classic_signature_methods_without_rfc7427():
    import ikelab.lab.session as session_module

    original = session_module.peer_config

    def classic(spec, credentials=None):
        return dataclasses.replace(original(spec, credentials), signature="classic")

    session_module.peer_config = classic
    try:
        session = run(with_certs(left={"certificate": {"key": "rsa2048"}}, right={"certificate": {"key": "ecdsa256"}}))
    finally:
        session_module.peer_config = original
    assert session.outcome.success
    methods = {e.peer: e.method for e in session.trace.of(AuthEvent) if e.action == "computed"}
    assert methods["left"].startswith("RSA_DIGITAL_SIGNATURE") and methods["right"].startswith("ECDSA_SHA256_P256")


def test_expired_certificate_is_refused_by_the_peer_that_checks_it():
    expired = {"not_before": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), "not_after": dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)}
    session = run(with_certs(left={"certificate": expired}))
    right = session.outcome.failures["right"]
    assert right.notify == "AUTHENTICATION_FAILED" and "expired" in right.reason and "left.example" in right.reason
    assert session.outcome.failures["left"].notify == "AUTHENTICATION_FAILED"
    cert = session.trace.of(CertificateEvent, "right")[0]
    assert not cert.ok and any(not c["ok"] and "expired" in c["detail"] for c in cert.checks)


def test_certificate_from_an_unknown_ca_is_refused():
    session = run(with_certs(right={"certificate": {"issuer": "Mallory CA"}}))
    left = session.outcome.failures["left"]
    assert "Mallory CA" in left.reason and "ikelab Lab CA" in left.reason
    assert [m.summary for m in messages(session)][-2:] == ["HDR, SK {N(AUTHENTICATION_FAILED)}", "HDR, SK {}"]


def test_identity_missing_from_the_certificate_is_refused():
    session = run(with_certs(right={"certificate": {"san": ("other.example",)}}))
    reason = session.outcome.failures["left"].reason
    assert "right.example" in reason and "other.example" in reason


@needs_tshark()
def test_tshark_reads_the_certificate_exchange(tmp_path):
    import os
    import subprocess

    from ikelab.export.capture import export_capture

    session = run(LESSON)
    path = tmp_path / "certs.pcapng"
    export_capture(path, session.trace, LESSON)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(path.with_suffix(".wireshark")))
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "_ws.malformed", "-e", "x509sat.printableString",
                          "-e", "x509sat.uTF8String", "-e", "isakmp.auth.data"], env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert all(r[0] == "" for r in rows)
    assert "left.example" in rows[2][1] + rows[2][2] and "right.example" in rows[3][1] + rows[3][2]
    assert rows[2][3] and rows[3][3]


def test_dn_identity_in_another_string_type_is_the_same_peer():
    """strongSwan writes DNs as PrintableString, ikelab as UTF8String: the same names are the same peer."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    import ikelab.lab.session as session_module
    from ikelab.ikev2.config import Identity
    from ikelab.wire.ikev2_constants import IdType

    def printable(text: str) -> Identity:
        organization, common_name = (part.split("=", 1)[1] for part in text.split(", "))
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization, _type=x509.name._ASN1Type.PrintableString),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name, _type=x509.name._ASN1Type.PrintableString),
        ])
        return Identity(IdType.ID_DER_ASN1_DN, name.public_bytes(), text)

    original = session_module.peer_config

    def right_sends_printable(spec, credentials=None):
        config = original(spec, credentials)
        if config.local_id.text == "O=ikelab, CN=right.example":
            config = dataclasses.replace(config, local_id=printable(config.local_id.text))
        return config

    left_dn, right_dn = (Identity.parse(f"O=ikelab, CN={n}.example") for n in ("left", "right"))
    lesson = with_certs(
        left={"identity": left_dn, "remote_identity": right_dn},
        right={"identity": right_dn, "remote_identity": left_dn},
    )
    session_module.peer_config = right_sends_printable
    try:
        session = run(lesson)
    finally:
        session_module.peer_config = original
    assert session.outcome.success, session.outcome.failures
    # right really sent the PrintableString form, which differs from what left expects byte for byte
    assert printable(right_dn.text).data in messages(session)[3].plaintext
    assert printable(right_dn.text).data != right_dn.data
