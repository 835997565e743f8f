"""Checking a peer's certificate: chain, validity, constraints and identity, each check named.

    result = validate(cert_der, trusted=lab_ca, now=now, identity=id_payload, intermediates=[...])
    if not result.ok:
        print(result.reason)   # "certificate for b.example expired on 2026-01-01 (it is now ...)"
    public_key = result.public_key  # what the AUTH signature is then checked with

`validate` never raises: every problem, including bytes that are no certificate at all, becomes a
failed `Check` with a one-line message that names the certificate and the check. All checks run
(when they can), so a trace can show the whole list: ✓ signed by the lab CA, ✗ expired, ✓ identity.

Identity matching (RFC 7296 §3.5, RFC 4945 §3.1 as strongSwan applies it):
ID_FQDN ↔ subjectAltName dNSName (case-insensitive), ID_IPV4_ADDR/ID_IPV6_ADDR ↔ iPAddress,
ID_RFC822_ADDR ↔ rfc822Name, ID_DER_ASN1_DN ↔ the subject DN (the same DER bytes, or the same
names after case and space folding).

CERTREQ (RFC 7296 §3.7): the Certification Authority field is a list of SHA-1 hashes of the
SubjectPublicKeyInfo of trusted CAs, 20 bytes each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ikelab.pki import asn1
from ikelab.pki.ca import LabCa
from ikelab.pki.keys import PublicKey, public_key_der
from ikelab.wire.ikev2_constants import CertEncoding, IdType, name_of

UTC = dt.UTC
MAX_CHAIN = 8

TrustAnchors = LabCa | x509.Certificate | Sequence[LabCa | x509.Certificate]


@dataclass(frozen=True)
class Check:
    name: str  # "certificate", "issuer", "signature", "validity", "constraints", "key usage", "identity"
    ok: bool
    detail: str


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    reason: str  # the first failed check's detail; "" when everything passed
    failed_check: str | None
    checks: tuple[Check, ...]
    subject: str = ""  # end entity subject DN, strongSwan order ("C=ZZ, O=ikelab, CN=b.example")
    chain: tuple[str, ...] = ()  # subject DNs from the end entity up to the trust anchor
    certificate: x509.Certificate | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def public_key(self) -> PublicKey | None:
        """The end entity's public key, to verify the AUTH signature with (only meaningful when ok)."""
        return self.certificate.public_key() if self.certificate is not None else None

    def as_dict(self) -> dict:
        """Plain data for the trace / JSON transcript."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "failed_check": self.failed_check,
            "subject": self.subject,
            "chain": list(self.chain),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


# --------------------------------------------------------------------------- names and labels

_SHORT = {
    NameOID.COUNTRY_NAME.dotted_string: "C",
    NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "ST",
    NameOID.LOCALITY_NAME.dotted_string: "L",
    NameOID.ORGANIZATION_NAME.dotted_string: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "OU",
    NameOID.COMMON_NAME.dotted_string: "CN",
    NameOID.EMAIL_ADDRESS.dotted_string: "E",
    NameOID.SERIAL_NUMBER.dotted_string: "serialNumber",
    NameOID.DOMAIN_COMPONENT.dotted_string: "DC",
    NameOID.USER_ID.dotted_string: "UID",
    NameOID.SURNAME.dotted_string: "SN",
    NameOID.GIVEN_NAME.dotted_string: "G",
    NameOID.TITLE.dotted_string: "T",
}
_BY_SHORT = {v.lower(): k for k, v in _SHORT.items()} | {"emailaddress": NameOID.EMAIL_ADDRESS.dotted_string, "s": NameOID.STATE_OR_PROVINCE_NAME.dotted_string}


def format_dn(name: x509.Name | bytes) -> str:
    """A DN the way strongSwan writes it: most significant RDN first, "C=ZZ, O=ikelab, CN=a.example"."""
    if isinstance(name, (bytes, bytearray)):
        return ", ".join(f"{_SHORT.get(oid, oid)}={value}" for rdn in _parse_dn(bytes(name)) for oid, _, value in rdn)
    return ", ".join(
        f"{_SHORT.get(a.oid.dotted_string, a.oid.dotted_string)}={a.value}" for rdn in name.rdns for a in rdn
    )


def parse_dn(text: str) -> x509.Name:
    """A DN from strongSwan's notation (left to right = DER order): "C=ZZ, O=ikelab, CN=a.example".

    Separators are ',' or '/' (a leading '/' too); '\\,' escapes a comma. Raises ValueError.
    """
    parts = [p.strip() for p in re.split(r"(?<!\\)[,/]", text.strip().lstrip("/")) if p.strip()]
    if not parts:
        raise ValueError(f"{text!r} is not a distinguished name")
    attrs = []
    for part in parts:
        key, eq, value = part.partition("=")
        oid = _BY_SHORT.get(key.strip().lower())
        if not eq or oid is None:
            known = ", ".join(sorted(set(_SHORT.values())))
            raise ValueError(f"{part!r} in DN {text!r} is not KEY=value with a known KEY ({known})")
        attrs.append(x509.NameAttribute(ObjectIdentifier(oid), value.strip().replace("\\,", ",").replace("\\/", "/")))
    return x509.Name(attrs)


def dn_der(text: str) -> bytes:
    """The Identification Data of an ID_DER_ASN1_DN for a DN written strongSwan's way."""
    return parse_dn(text).public_bytes()


def cert_label(cert: x509.Certificate) -> str:
    """How messages name a certificate: its CN, else its first DNS name, else its DN."""
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cn:
        return str(cn[0].value)
    for value in _san_values(cert):
        return value
    return format_dn(cert.subject) or f"serial {cert.serial_number:x}"


def _ca_label(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else format_dn(cert.subject)


def _issuer_label(cert: x509.Certificate) -> str:
    cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else format_dn(cert.issuer)


_STRING_TAGS = {0x0C: "utf-8", 0x13: "latin-1", 0x16: "latin-1", 0x14: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def _parse_dn(data: bytes) -> list[list[tuple[str, int, str]]]:
    """RDNSequence DER -> [[(oid, tag, value), ...], ...]; raises asn1.DerError."""
    seq = asn1.read_one(data, asn1.SEQUENCE, "distinguished name")
    out = []
    for rdn in asn1.read_all(seq.value, "distinguished name"):
        if rdn.tag != asn1.SET:
            raise asn1.DerError("distinguished name: an RDN is not a SET")
        attrs = []
        for atv in asn1.read_all(rdn.value, "RDN"):
            if atv.tag != asn1.SEQUENCE:
                raise asn1.DerError("distinguished name: an attribute is not a SEQUENCE")
            parts = asn1.read_all(atv.value, "attribute")
            if len(parts) != 2 or parts[0].tag != asn1.OID:
                raise asn1.DerError("distinguished name: an attribute is not (OID, value)")
            encoding = _STRING_TAGS.get(parts[1].tag)
            value = parts[1].value.decode(encoding, "replace") if encoding else parts[1].value.hex()
            attrs.append((asn1.decode_oid(parts[0].value), parts[1].tag, value))
        out.append(attrs)
    return out


def _fold(value: str) -> str:
    return " ".join(value.split()).casefold()


def _dn_key(rdns: Iterable[Iterable[tuple[str, str]]]) -> tuple:
    return tuple(tuple(sorted((oid, _fold(v)) for oid, v in rdn)) for rdn in rdns)


def _cert_dn_key(name: x509.Name) -> tuple:
    return _dn_key([(a.oid.dotted_string, str(a.value)) for a in rdn] for rdn in name.rdns)


# --------------------------------------------------------------------------- identity


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _san_values(cert: x509.Certificate) -> list[str]:
    out = []
    for gn in _sans(cert):
        if isinstance(gn, (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier)):
            out.append(gn.value)
        elif isinstance(gn, x509.IPAddress):
            out.append(str(gn.value))
        elif isinstance(gn, x509.DirectoryName):
            out.append(format_dn(gn.value))
    return out


def identity_text(id_type: int, data: bytes) -> str:
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR) and len(data) in (4, 16):
        return str(ipaddress.ip_address(data))
    if id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
        return data.decode("utf-8", "replace")
    if id_type == IdType.ID_DER_ASN1_DN:
        try:
            return format_dn(data)
        except asn1.DerError:
            return data.hex()
    return data.hex()


def same_identity(type_a: int, data_a: bytes, type_b: int, data_b: bytes) -> bool:
    """Do two ID payloads name the same peer? Byte for byte, except DNs: the same names may come as
    UTF8String or PrintableString (strongSwan sends the latter), so they are compared as the names
    they spell."""
    if type_a == type_b == IdType.ID_DER_ASN1_DN and data_a != data_b:
        try:
            return format_dn(data_a).casefold() == format_dn(data_b).casefold()
        except asn1.DerError:
            return False
    return (type_a, data_a) == (type_b, data_b)


def check_identity(cert: x509.Certificate, id_type: int, data: bytes) -> Check:
    """Does the certificate belong to this IKE identity? (ID payload type and data)."""
    shown = identity_text(id_type, data)
    sans = _sans(cert)
    has = ", ".join(_san_values(cert)) or "none"

    def missing() -> Check:
        return Check("identity", False, f"ID {shown} is not in the certificate's subjectAltName (has: {has})")

    if id_type == IdType.ID_FQDN:
        wanted = shown.rstrip(".").casefold()
        if any(isinstance(g, x509.DNSName) and g.value.rstrip(".").casefold() == wanted for g in sans):
            return Check("identity", True, f"ID {shown} is a dNSName in the certificate's subjectAltName")
        return missing()
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        if len(data) != (4 if id_type == IdType.ID_IPV4_ADDR else 16):
            return Check("identity", False, f"{name_of(IdType, id_type)} with {len(data)} bytes of data is not an address")
        if any(isinstance(g, x509.IPAddress) and g.value.packed == data for g in sans):
            return Check("identity", True, f"ID {shown} is an iPAddress in the certificate's subjectAltName")
        return missing()
    if id_type == IdType.ID_RFC822_ADDR:
        local, _, domain = shown.rpartition("@")
        for g in sans:
            if isinstance(g, x509.RFC822Name):
                g_local, _, g_domain = g.value.rpartition("@")
                if g_local == local and g_domain.casefold() == domain.casefold():
                    return Check("identity", True, f"ID {shown} is an rfc822Name in the certificate's subjectAltName")
        return missing()
    if id_type == IdType.ID_DER_ASN1_DN:
        subject = cert.subject
        subject_text = format_dn(subject)
        if data == subject.public_bytes():
            return Check("identity", True, f"ID DN equals the certificate's subject {subject_text!r}, byte for byte")
        try:
            rdns = _parse_dn(data)
        except asn1.DerError as e:
            return Check("identity", False, f"ID_DER_ASN1_DN is not a DER distinguished name ({e})")
        if _dn_key([(oid, v) for oid, _, v in rdn] for rdn in rdns) == _cert_dn_key(subject):
            return Check("identity", True, f"ID DN matches the certificate's subject {subject_text!r} (string types or case differ)")
        return Check("identity", False, f"ID DN {shown!r} is not the certificate's subject {subject_text!r}")
    return Check("identity", False, f"an identity of type {name_of(IdType, id_type)} cannot be matched against a certificate")


# --------------------------------------------------------------------------- time


def _now(now: dt.datetime | float) -> dt.datetime:
    if isinstance(now, (int, float)):
        return dt.datetime.fromtimestamp(now, UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def format_time(t: dt.datetime) -> str:
    """2026-01-01 at midnight, 2026-01-01 12:30:00 UTC otherwise."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second) == (0, 0, 0) else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _validity(cert: x509.Certificate, now: dt.datetime, what: str) -> Check:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    it_is = f"(it is now {format_time(now)})"
    if now < start:
        return Check("validity", False, f"{what} is not valid before {format_time(start)} {it_is}")
    if now > end:
        return Check("validity", False, f"{what} expired on {format_time(end)} {it_is}")
    return Check("validity", True, f"{what} is valid from {format_time(start)} to {format_time(end)}")


# --------------------------------------------------------------------------- constraints


def _ext(cert: x509.Certificate, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _unknown_critical(cert: x509.Certificate, what: str) -> Check | None:
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            return Check("constraints", False, f"{what} has a critical extension we do not understand ({ext.oid.dotted_string})")
    return None


def _ca_constraints(cert: x509.Certificate, below: int, what: str) -> Check:
    """An issuer must be a CA allowed to sign certificates, with room for `below` CAs under it."""
    bc = _ext(cert, x509.BasicConstraints)
    if bc is None or not bc.ca:
        return Check("constraints", False, f"{what} is not a CA certificate (basicConstraints CA:TRUE missing), so it may not issue certificates")
    if bc.path_length is not None and below > bc.path_length:
        return Check("constraints", False, f"{what} allows {bc.path_length} CA(s) below it (pathLenConstraint), the chain has {below}")
    ku = _ext(cert, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        return Check("constraints", False, f"{what} has keyUsage without keyCertSign, so it may not sign certificates")
    unknown = _unknown_critical(cert, what)
    return unknown or Check("constraints", True, f"{what} is a CA that may sign certificates")


def _ee_key_usage(cert: x509.Certificate, what: str) -> Check:
    ku = _ext(cert, x509.KeyUsage)
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        return Check("key usage", False, f"{what} has keyUsage without digitalSignature, so it may not sign IKE AUTH")
    unknown = _unknown_critical(cert, what)
    if unknown is not None:
        return Check("key usage", False, unknown.detail)
    return Check("key usage", True, f"{what} may sign" + ("" if ku is None else " (keyUsage digitalSignature)"))


# --------------------------------------------------------------------------- validation


def _anchor_certs(trusted: TrustAnchors) -> list[x509.Certificate]:
    items = [trusted] if isinstance(trusted, (LabCa, x509.Certificate)) else list(trusted)
    return [t.certificate if isinstance(t, LabCa) else t for t in items]


def _load(data: x509.Certificate | bytes, what: str) -> tuple[x509.Certificate | None, str]:
    if isinstance(data, x509.Certificate):
        return data, ""
    try:
        if bytes(data).lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(bytes(data)), ""
        return x509.load_der_x509_certificate(bytes(data)), ""
    except (ValueError, TypeError) as e:
        return None, f"{what} is not a readable X.509 certificate ({e})"


def _signature(child: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None when `issuer` signed `child`, else why not."""
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return (
            f"certificate for {cert_label(child)} names {_ca_label(issuer)!r} as issuer, but its signature does not "
            f"verify with that CA's key (another CA with the same name signed it?)"
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        return f"certificate for {cert_label(child)}: its signature by {_ca_label(issuer)!r} cannot be checked ({e})"
    return None


def validate(
    certificate: x509.Certificate | bytes,
    trusted: TrustAnchors,
    *,
    now: dt.datetime | float,
    identity: object | None = None,
    intermediates: Iterable[x509.Certificate | bytes] = (),
) -> ValidationResult:
    """Validate a peer's end-entity certificate against trust anchors (the lab CA).

    `identity` is anything with `.id_type` and `.data` (an IdPayload or an ikelab Identity), or a
    (id_type, data) tuple, or None to skip the identity check. `now` is a datetime (naive = UTC) or
    a POSIX timestamp: inject it, so lessons can show what "expired" looks like.
    """
    try:
        return _validate(certificate, trusted, _now(now), identity, list(intermediates))
    except Exception as e:  # noqa: BLE001 - a certificate crafted to break a parser still gets an answer
        check = Check("certificate", False, f"the certificate cannot be checked: {type(e).__name__}: {e}")
        return ValidationResult(False, check.detail, check.name, (check,))


def _validate(certificate, trusted, now, identity, intermediates) -> ValidationResult:
    checks: list[Check] = []
    ee, problem = _load(certificate, "the peer's certificate")
    if ee is None:
        check = Check("certificate", False, problem)
        return ValidationResult(False, problem, "certificate", (check,))
    label = cert_label(ee)
    what = f"certificate for {label}"
    anchors = _anchor_certs(trusted)
    if not anchors:
        checks.append(Check("issuer", False, "no trusted CA is configured, so no certificate can be accepted"))
    extra: list[x509.Certificate] = []
    for i, item in enumerate(intermediates, 1):
        cert, problem = _load(item, f"intermediate certificate {i}")
        if cert is None:
            checks.append(Check("certificate", False, problem))
        else:
            extra.append(cert)

    # 1. the chain up to a trust anchor, each signature checked
    path, anchor = [ee], None
    if anchors:
        current = ee
        while anchor is None and len(path) <= MAX_CHAIN:
            candidates = [a for a in anchors if a.subject == current.issuer]
            if candidates:
                problems = [_signature(current, a) for a in candidates]
                good = next((a for a, p in zip(candidates, problems) if p is None), None)
                if good is None:
                    checks.append(Check("signature", False, problems[0]))
                    break
                anchor = good
                checks.append(
                    Check("signature", True, f"certificate for {cert_label(current)} is signed by the trusted CA {_ca_label(good)!r}")
                )
                break
            step = next((c for c in extra if c.subject == current.issuer and c not in path), None)
            if step is None:
                trusted_names = ", ".join(repr(_ca_label(a)) for a in anchors)
                whom = f"the lab CA {trusted_names}" if len(anchors) == 1 else f"a trusted CA ({trusted_names})"
                checks.append(
                    Check("issuer", False, f"certificate for {cert_label(current)} is signed by {_issuer_label(current)!r}, not by {whom}")
                )
                break
            problem = _signature(current, step)
            if problem is not None:
                checks.append(Check("signature", False, problem))
                break
            checks.append(
                Check("signature", True, f"certificate for {cert_label(current)} is signed by the intermediate CA {_ca_label(step)!r}")
            )
            path.append(step)
            current = step
        else:
            checks.append(Check("issuer", False, f"{what}: no trusted CA within {MAX_CHAIN} intermediate certificates"))

    # 2. validity of every certificate on the path
    checks.append(_validity(ee, now, what))
    for cert in path[1:]:
        checks.append(_validity(cert, now, f"intermediate CA certificate {_ca_label(cert)!r}"))
    if anchor is not None:
        checks.append(_validity(anchor, now, f"CA certificate {_ca_label(anchor)!r}"))

    # 3. constraints: issuers are CAs, the end entity may sign
    issuers = path[1:] + ([anchor] if anchor is not None else [])
    for below, cert in enumerate(issuers):
        kind = "CA certificate" if cert is anchor else "intermediate CA certificate"
        checks.append(_ca_constraints(cert, below, f"{kind} {_ca_label(cert)!r}"))
    checks.append(_ee_key_usage(ee, what))

    # 4. identity
    if identity is not None:
        id_type, data = identity if isinstance(identity, tuple) else (identity.id_type, identity.data)
        checks.append(check_identity(ee, int(id_type), bytes(data)))

    failed = next((c for c in checks if not c.ok), None)
    chain = tuple(format_dn(c.subject) for c in path) + ((format_dn(anchor.subject),) if anchor is not None else ())
    return ValidationResult(
        failed is None,
        failed.detail if failed else "",
        failed.name if failed else None,
        tuple(checks),
        format_dn(ee.subject),
        chain,
        ee,
    )


# --------------------------------------------------------------------------- CERT and CERTREQ payloads


def certreq_hash(ca: LabCa | x509.Certificate) -> bytes:
    """SHA-1 of the CA's SubjectPublicKeyInfo: one entry of a CERTREQ (RFC 7296 §3.7)."""
    cert = ca.certificate if isinstance(ca, LabCa) else ca
    return hashlib.sha1(public_key_der(cert.public_key())).digest()


def certreq_data(cas: TrustAnchors) -> bytes:
    """Certification Authority field of a CERTREQ payload (encoding X509_CERT_SIGNATURE, 4)."""
    return b"".join(certreq_hash(c) for c in _anchor_certs(cas))


def split_certreq(data: bytes) -> list[bytes]:
    """The 20-byte hashes in a CERTREQ; raises ValueError when the length is not a multiple of 20."""
    if len(data) % 20:
        raise ValueError(f"CERTREQ data of {len(data)} bytes is not a list of 20-byte SHA-1 hashes")
    return [data[i : i + 20] for i in range(0, len(data), 20)]


def requested_cas(data: bytes, cas: TrustAnchors) -> list[x509.Certificate]:
    """Which of `cas` the peer's CERTREQ names (an empty CERTREQ names none)."""
    wanted = set(split_certreq(data))
    return [c for c in _anchor_certs(cas) if certreq_hash(c) in wanted]


@dataclass(frozen=True)
class CertBundle:
    """The certificates a peer sent in CERT payloads: the first is the one that signed AUTH."""

    end_entity: bytes | None
    intermediates: tuple[bytes, ...]
    notes: tuple[str, ...]  # CERT payloads we skipped, and why


def cert_payloads(payloads: Iterable[object]) -> CertBundle:
    """Sort CERT payloads (anything with .encoding and .data, e.g. wire CertPayload objects).

    RFC 7296 §3.6: the first certificate carries the key that verifies AUTH; others may help build
    the chain. Only X.509 Certificate - Signature (4) is used; other encodings are noted and skipped.
    """
    certs, notes = [], []
    for p in payloads:
        if p.encoding == CertEncoding.X509_CERT_SIGNATURE:
            certs.append(bytes(p.data))
        else:
            notes.append(f"CERT with encoding {name_of(CertEncoding, p.encoding)} ({p.encoding}) ignored: only X.509 (4) is supported")
    return CertBundle(certs[0] if certs else None, tuple(certs[1:]), tuple(notes))
