"""Interoperability with strongSwan's own PKI tool (`pki`, Debian package strongswan-pki).

strongSwan must accept the lab CA's certificates and keys as they are written for swanctl, and
ikelab must accept certificates strongSwan issues. Skipped where `pki` is not installed.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from ikelab.pki.ca import LabCa, pem, write_swanctl
from ikelab.pki.validation import certreq_hash, check_identity, dn_der, validate
from ikelab.wire.ikev2_constants import IdType

PKI = shutil.which("pki")
pytestmark = pytest.mark.skipif(PKI is None, reason="strongSwan's pki tool is not installed")
UTC = dt.UTC


def pki(*args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PKI, *args], input=stdin, capture_output=True, timeout=30, check=check)


@pytest.fixture(scope="module")
def lab() -> LabCa:
    return LabCa.create(key="rsa2048")  # the wall clock: pki checks lifetimes against it


@pytest.mark.parametrize("key_type", ["rsa2048", "ecdsa256", "ecdsa384", "ed25519"])
def test_strongswan_trusts_lab_certificates(lab: LabCa, tmp_path: Path, key_type: str) -> None:
    cert, key = lab.issue("a.example", san_dns=["a.example"], san_ip=["192.0.2.1"], key_type=key_type)
    files = write_swanctl(tmp_path, lab, cert, key, name="left")
    out = pki("--verify", "--in", str(files.cert), "--cacert", str(files.ca_cert))
    assert b"certificate trusted, lifetimes valid" in out.stdout
    printed = pki("--print", "--in", str(files.cert)).stdout.decode()
    assert 'subject:  "O=ikelab, CN=a.example"' in printed
    assert "altNames:  a.example, 192.0.2.1" in printed
    private = pki("--print", "--type", "priv", "--in", str(files.key), check=False)
    if key_type != "ed25519" or private.returncode == 0:  # Ed25519 keys need charon's curve25519/openssl support
        assert private.returncode == 0, private.stderr
        assert b"privkey:" in private.stdout


def test_strongswan_refuses_expired_and_foreign_certificates(lab: LabCa, tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    expired, _ = lab.issue("a.example", key_type="ecdsa256", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    mallory = LabCa.create("Mallory CA", key="ecdsa256")
    foreign, _ = mallory.issue("a.example", key_type="ecdsa256")
    ca_path = write_swanctl(tmp_path, lab).ca_cert
    for name, cert in (("expired", expired), ("foreign", foreign)):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(pem(cert))
        out = pki("--verify", "--in", str(path), "--cacert", str(ca_path), check=False)
        assert out.returncode != 0 and b"certificate untrusted" in out.stdout
        # ...and ikelab says why
        assert not validate(cert, lab, now=now).ok


def test_certreq_hash_is_strongswans_keyid(lab: LabCa, tmp_path: Path) -> None:
    """strongSwan's "keyid" (SHA-1 of the SubjectPublicKeyInfo) is what it puts in CERTREQ."""
    ca_path = write_swanctl(tmp_path, lab).ca_cert
    printed = pki("--print", "--in", str(ca_path)).stdout.decode()
    keyid = re.search(r"^\s*keyid:\s*([0-9a-f:]+)$", printed, re.MULTILINE).group(1)
    assert bytes.fromhex(keyid.replace(":", "")) == certreq_hash(lab)


def test_ikelab_accepts_certificates_strongswan_issued(tmp_path: Path) -> None:
    ca_key = pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem").stdout
    (tmp_path / "ca.key").write_bytes(ca_key)
    ca_pem = pki(
        "--self", "--ca", "--lifetime", "30", "--in", str(tmp_path / "ca.key"), "--type", "ecdsa",
        "--dn", "C=ZZ, O=strongSwan, CN=strongSwan Test CA", "--outform", "pem",
    ).stdout
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "ee.key").write_bytes(pki("--gen", "--type", "ecdsa", "--size", "384", "--outform", "pem").stdout)
    (tmp_path / "ee.pub").write_bytes(pki("--pub", "--in", str(tmp_path / "ee.key"), "--type", "ecdsa").stdout)
    ee_pem = pki(
        "--issue", "--cacert", str(tmp_path / "ca.pem"), "--cakey", str(tmp_path / "ca.key"),
        "--type", "pub", "--in", str(tmp_path / "ee.pub"),
        "--dn", "C=ZZ, O=strongSwan, CN=a.example", "--san", "a.example", "--san", "192.0.2.1",
        "--san", "alice@a.example", "--lifetime", "10", "--outform", "pem",
    ).stdout
    ca = x509.load_pem_x509_certificate(ca_pem)
    ee = x509.load_pem_x509_certificate(ee_pem)
    now = dt.datetime.now(UTC)
    for identity in [
        (IdType.ID_FQDN, b"a.example"),
        (IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        (IdType.ID_RFC822_ADDR, b"alice@a.example"),
        (IdType.ID_DER_ASN1_DN, dn_der("C=ZZ, O=strongSwan, CN=a.example")),
    ]:
        result = validate(ee_pem, ca, now=now, identity=identity)
        assert result.ok, result.reason
    assert result.chain == ("C=ZZ, O=strongSwan, CN=a.example", "C=ZZ, O=strongSwan, CN=strongSwan Test CA")
    assert not check_identity(ee, IdType.ID_FQDN, b"b.example").ok
    later = validate(ee_pem, ca, now=now + dt.timedelta(days=11))
    assert later.failed_check == "validity" and later.reason.startswith("certificate for a.example expired on ")
    lab = LabCa.create(key="ecdsa256")
    assert validate(ee_pem, lab, now=now).reason == (
        "certificate for a.example is signed by 'strongSwan Test CA', not by the lab CA 'ikelab Lab CA'"
    )
