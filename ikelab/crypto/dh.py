"""Diffie-Hellman groups for IKE: MODP (RFC 2409/3526), ECP (RFC 5903), Curve25519 (RFC 8031).

A DhGroup describes a group; a DhKeyPair holds one side's private value and the exact
bytes it puts in the KE payload, and computes g^ir from the peer's KE payload data.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ikelab.crypto import modp
from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.rng import RandomSource


class DhError(ValueError):
    """A peer's public value (or an injected private value) is unusable."""


@dataclass(frozen=True)
class DhGroup:
    number: int  # IANA Transform Type 4 ID
    name: str  # strongSwan keyword
    description: str
    public_length: int  # bytes of KE payload data
    kind: str  # "modp" | "ecp" | "curve25519"

    def generate(self, rng: RandomSource, purpose: str) -> DhKeyPair:
        """A fresh key pair; the private value is drawn from rng under purpose."""
        return self.keypair_from_private(_generate_private(self, rng, purpose))

    def keypair_from_private(self, private: bytes) -> DhKeyPair:
        """The key pair for a given private value (test vectors, the keys calculator)."""
        return DhKeyPair(self, private, _public_value(self, private))


@dataclass(frozen=True)
class DhKeyPair:
    group: DhGroup
    private: bytes  # big-endian exponent/scalar as used; X25519: the 32 raw bytes
    public: bytes  # exactly the KE payload data

    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^ir as IKE uses it: MODP left-padded to the modulus, ECP the x coordinate."""
        group = self.group
        if len(peer_public) != group.public_length:
            raise DhError(
                f"peer public value is {len(peer_public)} bytes; "
                f"group {group.number} ({group.name}) needs {group.public_length}"
            )
        if group.kind == "modp":
            return _modp_shared(group, self.private, peer_public)
        if group.kind == "ecp":
            return _ecp_shared(group, self.private, peer_public)
        return _x25519_shared(self.private, peer_public)


def _modp(number: int, bits: int, rfc: str) -> DhGroup:
    return DhGroup(number, f"modp{bits}", f"{bits}-bit MODP group ({rfc})", bits // 8, "modp")


def _ecp(number: int, bits: int, public_length: int) -> DhGroup:
    description = f"{bits}-bit random ECP group (RFC 5903)"
    return DhGroup(number, f"ecp{bits}", description, public_length, "ecp")


DH_GROUPS: dict[int, DhGroup] = {
    g.number: g
    for g in (
        _modp(1, 768, "RFC 2409"),
        _modp(2, 1024, "RFC 2409"),
        _modp(5, 1536, "RFC 3526"),
        _modp(14, 2048, "RFC 3526"),
        _modp(15, 3072, "RFC 3526"),
        _modp(16, 4096, "RFC 3526"),
        _modp(17, 6144, "RFC 3526"),
        _modp(18, 8192, "RFC 3526"),
        _ecp(19, 256, 64),
        _ecp(20, 384, 96),
        _ecp(21, 521, 132),
        DhGroup(31, "curve25519", "Curve25519 (RFC 8031)", 32, "curve25519"),
    )
}

_CURVES: dict[int, ec.EllipticCurve] = {19: ec.SECP256R1(), 20: ec.SECP384R1(), 21: ec.SECP521R1()}

# Orders of the ECP base points (FIPS 186-4 D.1.2); cryptography does not expose them.
_CURVE_ORDERS = {
    19: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    20: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    21: int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


def dh_group(number: int) -> DhGroup:
    try:
        return DH_GROUPS[number]
    except KeyError:
        raise UnknownAlgorithm("DH group", number, DH_GROUPS) from None


# --- MODP -----------------------------------------------------------------------------
# Modular exponentiation rather than cryptography's finite-field DH, which cryptography 50
# deprecates: it keeps working for years, and the numbers are the textbook ones students compute.
# GMP (through gmpy2) does it about seven times faster than Python's pow(), which a 2048-bit
# handshake feels; without gmpy2 the built-in pow() gives the same values.
try:
    from gmpy2 import powmod as _gmp_powmod

    def _powmod(base: int, exponent: int, modulus: int) -> int:
        return int(_gmp_powmod(base, exponent, modulus))
except ImportError:  # pragma: no cover - gmpy2 is a dependency; this keeps ikelab usable without it
    _powmod = pow


def _prime(group: DhGroup) -> int:
    return modp.modp_prime(group.public_length * 8)


def _modp_private(group: DhGroup, private: bytes, p: int) -> int:
    x = int.from_bytes(private, "big")
    if not 1 < x < p - 1:
        raise DhError(f"private exponent for {group.name} must be in (1, p-1)")
    return x


def _modp_shared(group: DhGroup, private: bytes, peer_public: bytes) -> bytes:
    p = _prime(group)
    y = int.from_bytes(peer_public, "big")
    if not 1 < y < p - 1:
        # 0, 1 and p-1 would force the shared secret into {0, 1, p-1} (RFC 6989 §2.1).
        raise DhError(f"peer public value for {group.name} must be in (1, p-1)")
    # RFC 7296 §2.14: g^ir is left-padded with zeros to the length of the modulus.
    shared = _powmod(y, _modp_private(group, private, p), p)
    return shared.to_bytes(group.public_length, "big")


# --- ECP ------------------------------------------------------------------------------


def _field_size(group: DhGroup) -> int:
    return group.public_length // 2


def _ecp_key(group: DhGroup, private: bytes) -> ec.EllipticCurvePrivateKey:
    d = int.from_bytes(private, "big")
    if not 1 <= d < _CURVE_ORDERS[group.number]:
        raise DhError(f"private scalar for {group.name} must be in [1, n-1]")
    return ec.derive_private_key(d, _CURVES[group.number])


def _ecp_shared(group: DhGroup, private: bytes, peer_public: bytes) -> bytes:
    curve = _CURVES[group.number]
    try:
        # RFC 5903 §7: KE data is x | y without SEC 1's 0x04 prefix; add it back.
        peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + peer_public)
    except ValueError:
        raise DhError(f"peer public value is not a point on {group.name} ({curve.name})") from None
    # ECDH returns the x coordinate only, which is what RFC 5903 §7 defines as g^ir.
    return _ecp_key(group, private).exchange(ec.ECDH(), peer)


# --- Curve25519 -----------------------------------------------------------------------


def _x25519_key(private: bytes) -> x25519.X25519PrivateKey:
    if len(private) != 32:
        raise DhError(f"X25519 private key must be 32 bytes, got {len(private)}")
    return x25519.X25519PrivateKey.from_private_bytes(private)


def _x25519_shared(private: bytes, peer_public: bytes) -> bytes:
    peer = x25519.X25519PublicKey.from_public_bytes(peer_public)
    try:
        shared = _x25519_key(private).exchange(peer)
    except ValueError:  # cryptography refuses an all-zero result itself
        shared = bytes(32)
    if shared == bytes(32):
        # RFC 8031 §2.3: a low-order peer point gives all zeros; it MUST be rejected.
        raise DhError("X25519 shared secret is all zeros: peer sent a low-order point")
    return shared


# --- key generation and public values --------------------------------------------------


def _generate_private(group: DhGroup, rng: RandomSource, purpose: str) -> bytes:
    if group.kind == "curve25519":
        return rng.bytes(32, purpose)  # X25519 clamps the scalar itself (RFC 7748 §5)
    if group.kind == "ecp":
        size = _field_size(group)
        n = _CURVE_ORDERS[group.number]
        d = int.from_bytes(rng.bytes(size, purpose), "big") % (n - 1) + 1  # into [1, n-1]
        return d.to_bytes(size, "big")
    bits = modp.EXPONENT_BITS[group.public_length * 8]
    size = (bits + 7) // 8
    while True:  # draw again in the (astronomically unlikely) case x is 0 or 1
        # x is the upper `bits` bits of the drawn bytes: RFC 3526's exponent size.
        x = int.from_bytes(rng.bytes(size, purpose), "big") >> (size * 8 - bits)
        if x > 1:
            return x.to_bytes(size, "big")


def _public_value(group: DhGroup, private: bytes) -> bytes:
    if group.kind == "modp":
        p = _prime(group)
        y = _powmod(modp.GENERATOR, _modp_private(group, private, p), p)
        return y.to_bytes(group.public_length, "big")
    if group.kind == "ecp":
        point = _ecp_key(group, private).public_key()
        return point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]
    return _x25519_key(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
