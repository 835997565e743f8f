"""The built-in lab CA: a root that issues RSA, ECDSA and Ed25519 certificates for the lessons.

    ca = LabCa.create(name="ikelab Lab CA", key="rsa2048", now=now, rng=rng)
    cert, key = ca.issue("a.example", san_dns=["a.example"], san_ip=["192.0.2.1"], key_type="ecdsa256")
    write_swanctl(swanctl_dir, ca, cert, key, name="right")

Everything that varies (keys, serial numbers, ECDSA signature nonces) comes from `rng` and `now`, so
a seeded run issues the same certificates byte for byte (see ikelab.pki.keys for how keys are
derived; ECDSA certificate signatures use RFC 6979 deterministic nonces). Use a fixed `now` (such as
SEEDED_EPOCH) for seeded runs and a real clock otherwise: strongSwan checks validity against the
wall clock, so the default lifetimes are long.

Certificates follow what strongSwan's `pki --issue` makes, plus the extensions RFC 5280 expects:
CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign (critical), subjectKeyIdentifier.
End entity: basicConstraints CA:FALSE (critical), keyUsage digitalSignature (critical),
subjectAltName (dNSName / iPAddress / rfc822Name), subjectKeyIdentifier, authorityKeyIdentifier.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import NameOID

from ikelab.pki.keys import (
    PrivateKey,
    check_key_type,
    generate_key,
    load_private_key,
    private_key_pem,
)
from ikelab.rng import RandomSource, SystemRandom

UTC = dt.UTC
SEEDED_EPOCH = dt.datetime(2025, 1, 1, tzinfo=UTC)  # a fixed "now" for reproducible certificates
CA_LIFETIME = dt.timedelta(days=3650)
CERT_LIFETIME = dt.timedelta(days=1825)
BACKDATE = dt.timedelta(hours=1)  # certificates start a little before `now`, against clock skew
# The range X.509 times can take here: cryptography refuses dates before 1950 (UTCTime's first year).
EARLIEST = dt.datetime(1950, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
ORGANIZATION = "ikelab"


class Issued(NamedTuple):
    """What `LabCa.issue` returns; unpacks as `cert, key = ca.issue(...)`."""

    certificate: x509.Certificate
    private_key: PrivateKey


def signature_hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The hash a CA with this key signs certificates with (None for EdDSA, which has its own)."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size, hashes.SHA256())
    return hashes.SHA256()


def _utc(when: dt.datetime | None) -> dt.datetime:
    when = when or dt.datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)  # X.509 times have whole seconds


def _validity(now: dt.datetime, not_before: dt.datetime | None, not_after: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The validity period: [now - 1 h, now + 5 years] for each bound not given. A bound left out
    is set from the given one where that default would contradict it: a lesson makes an expired
    certificate with only `not_after` in the past, a not-yet-valid one with only `not_before`
    after the default end."""
    start = _utc(not_before) if not_before is not None else None
    end = _utc(not_after) if not_after is not None else None
    if start is None:
        start = now - BACKDATE
        if end is not None and end <= start:
            start = max(end - CERT_LIFETIME, EARLIEST)
    if end is None:
        end = now + CERT_LIFETIME
        if end <= start:
            end = start + CERT_LIFETIME if start < LATEST - CERT_LIFETIME else LATEST
    return start, end


def _serial(rng: RandomSource | None, purpose: str) -> int:
    if rng is None or isinstance(rng, SystemRandom):
        return x509.random_serial_number()
    value = int.from_bytes(rng.bytes(16, purpose), "big") >> 1  # positive, at most 20 octets in DER
    return value or 1


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, deterministic: bool) -> x509.Certificate:
    algorithm = signature_hash_for(key)
    if isinstance(key, ec.EllipticCurvePrivateKey) and deterministic:
        try:
            return builder.sign(key, algorithm, ecdsa_deterministic=True)
        except TypeError:  # cryptography < 44: random ECDSA nonces, so not byte-for-byte repeatable
            pass
    return builder.sign(key, algorithm)


def dn(common_name: str, organization: str | None = ORGANIZATION, country: str | None = None) -> x509.Name:
    """A subject DN, most significant first: C, O, CN."""
    attrs = []
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass
class LabCa:
    """A certification authority that lives in memory (and in files when a lab needs them)."""

    certificate: x509.Certificate
    private_key: PrivateKey
    rng: RandomSource | None = None
    now: dt.datetime = field(default_factory=lambda: _utc(None))
    chain: tuple[x509.Certificate, ...] = ()  # issuers above this CA when it is an intermediate

    @property
    def name(self) -> str:
        cn = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(cn[0].value) if cn else self.certificate.subject.rfc4514_string()

    @property
    def _seeded(self) -> bool:
        return self.rng is not None and not isinstance(self.rng, SystemRandom)

    @classmethod
    def create(
        cls,
        name: str = "ikelab Lab CA",
        key: str = "rsa2048",
        now: dt.datetime | None = None,
        rng: RandomSource | None = None,
        *,
        lifetime: dt.timedelta = CA_LIFETIME,
        organization: str | None = ORGANIZATION,
        path_length: int | None = None,
    ) -> LabCa:
        """A self-signed root. With a seeded `rng` and a fixed `now` it is the same every time."""
        now = _utc(now)
        private_key = generate_key(check_key_type(key), rng, f"lab CA {name!r} key")
        subject = dn(name, organization)
        ski = x509.SubjectKeyIdentifier.from_public_key(private_key.public_key())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(private_key.public_key())
            .serial_number(_serial(rng, f"lab CA {name!r} serial"))
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
        )
        seeded = rng is not None and not isinstance(rng, SystemRandom)
        return cls(_sign(builder, private_key, seeded), private_key, rng, now)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes, *, now: dt.datetime | None = None, rng: RandomSource | None = None) -> LabCa:
        """A CA from files written by `save` (or by `pki --self`)."""
        certificate = x509.load_pem_x509_certificate(cert_pem)
        private_key = load_private_key(key_pem)
        if certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValueError("the CA private key does not belong to the CA certificate")
        return cls(certificate, private_key, rng, _utc(now))

    def save(self, directory: Path | str, stem: str = "ca") -> tuple[Path, Path]:
        """Write <stem>.crt.pem and <stem>.key.pem (mode 0600); returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.crt.pem"
        cert_path.write_bytes(pem(self.certificate))
        key_path = _write_private(directory / f"{stem}.key.pem", private_key_pem(self.private_key))
        return cert_path, key_path

    # ------------------------------------------------------------------ issuing

    def issue(
        self,
        subject_cn: str,
        san_dns: Sequence[str] = (),
        san_ip: Sequence[str] = (),
        key_type: str = "rsa2048",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        *,
        san_email: Sequence[str] = (),
        organization: str | None = ORGANIZATION,
        subject: x509.Name | None = None,
        private_key: PrivateKey | None = None,
        key_usage: x509.KeyUsage | None = None,
    ) -> Issued:
        """An end-entity certificate and its new private key.

        Validity defaults to [now - 1 h, now + 5 years]; pass `not_before`/`not_after` to make expired
        or not-yet-valid certificates for the "bad input" lessons. `subject` overrides the DN built from
        `subject_cn` and `organization`; `private_key` reuses a key; `key_usage` replaces the default
        digitalSignature (to show what a wrong keyUsage does).
        """
        if private_key is None:
            private_key = generate_key(check_key_type(key_type), self.rng, f"certificate {subject_cn!r} key")
        not_before, not_after = _validity(self.now, not_before, not_after)
        if not_after <= not_before:
            raise ValueError(f"not_after ({not_after}) must be after not_before ({not_before})")
        alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in san_dns]
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in san_ip]
        alt_names += [x509.RFC822Name(e) for e in san_email]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject if subject is not None else dn(subject_cn, organization))
            .issuer_name(self.certificate.subject)
            .public_key(private_key.public_key())
            .serial_number(_serial(self.rng, f"certificate {subject_cn!r} serial"))
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage or _key_usage(ca=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return Issued(_sign(builder, self.private_key, self._seeded), private_key)

    def issue_ca(self, name: str, key: str = "rsa2048", *, path_length: int | None = 0) -> LabCa:
        """An intermediate CA signed by this one (its `chain` lists the issuers above it)."""
        private_key = generate_key(check_key_type(key), self.rng, f"intermediate CA {name!r} key")
        builder = (
            x509.CertificateBuilder()
            .subject_name(dn(name))
            .issuer_name(self.certificate.subject)
            .public_key(private_key.public_key())
            .serial_number(_serial(self.rng, f"intermediate CA {name!r} serial"))
            .not_valid_before(self.now - BACKDATE)
            .not_valid_after(min(self.now + CA_LIFETIME, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        cert = _sign(builder, self.private_key, self._seeded)
        return LabCa(cert, private_key, self.rng, self.now, (self.certificate, *self.chain))

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.certificate.public_key())

    # ------------------------------------------------------------------ export

    def cert_pem(self) -> bytes:
        return pem(self.certificate)

    def cert_der(self) -> bytes:
        return der(self.certificate)

    def key_pem(self) -> bytes:
        return private_key_pem(self.private_key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; an end entity signs (its IKE AUTH), nothing else."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


# --------------------------------------------------------------------------- export helpers


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def der(certificate: x509.Certificate) -> bytes:
    """DER: what a CERT payload with encoding X509_CERT_SIGNATURE (4) carries."""
    return certificate.public_bytes(serialization.Encoding.DER)


def load_certificate(data: bytes) -> x509.Certificate:
    """PEM or DER; raises ValueError with cryptography's reason on garbage."""
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


@dataclass(frozen=True)
class SwanctlFiles:
    """Where write_swanctl put things; the names are what swanctl.conf refers to."""

    ca_cert: Path  # x509ca/<ca>.pem: trusted, loaded by `swanctl --load-creds`
    cert: Path | None  # x509/<name>.pem: `local { certs = <name>.pem }`
    key: Path | None  # private/<name>.pem (PKCS#8, any key type)
    intermediates: tuple[Path, ...] = ()  # x509/<name>-int<N>.pem: chain material, not trusted

    @property
    def cert_name(self) -> str | None:
        """The value for `certs =` in a swanctl.conf `local` section."""
        return self.cert.name if self.cert else None


def write_swanctl(
    swanctl_dir: Path | str,
    ca: LabCa | x509.Certificate,
    certificate: x509.Certificate | None = None,
    private_key: PrivateKey | None = None,
    *,
    name: str = "local",
    ca_name: str = "ikelab-ca",
    intermediates: Sequence[x509.Certificate] = (),
) -> SwanctlFiles:
    """Write the CA, an end-entity certificate and its key into strongSwan's swanctl directories.

    x509ca/ holds trust anchors; x509/ end-entity certificates and intermediates (charon can build a
    chain through them, but they are not trust anchors as everything in x509ca/ is); private/ keys
    in PKCS#8 PEM of any type (mode 0600). A responder that only verifies peers needs just the CA.
    In swanctl.conf: `local { auth = pubkey  certs = <name>.pem  id = ... }` (one setting per line) and
    `remote { auth = pubkey  id = ... }`; certificates in x509ca/ are trusted without `cacerts`.
    """
    root = Path(swanctl_dir)
    for sub in ("x509ca", "x509", "private"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ca_cert = ca.certificate if isinstance(ca, LabCa) else ca
    ca_path = root / "x509ca" / f"{ca_name}.pem"
    ca_path.write_bytes(pem(ca_cert))
    int_paths = []
    for i, inter in enumerate(intermediates, 1):
        p = root / "x509" / f"{name}-int{i}.pem"  # not x509ca/: everything there is a trust anchor
        p.write_bytes(pem(inter))
        int_paths.append(p)
    cert_path = key_path = None
    if certificate is not None:
        cert_path = root / "x509" / f"{name}.pem"
        cert_path.write_bytes(pem(certificate))
    if private_key is not None:
        key_path = _write_private(root / "private" / f"{name}.pem", private_key_pem(private_key))
    return SwanctlFiles(ca_path, cert_path, key_path, tuple(int_paths))


__all__ = [
    "CA_LIFETIME",
    "CERT_LIFETIME",
    "SEEDED_EPOCH",
    "Issued",
    "LabCa",
    "SwanctlFiles",
    "der",
    "dn",
    "load_certificate",
    "pem",
    "write_swanctl",
]
