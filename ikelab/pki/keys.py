"""Key pairs for the lab CA and its certificates, reproducible under `--seed`.

Key types: "rsa2048", "rsa3072", "rsa4096", "ecdsa256", "ecdsa384", "ecdsa521", "ed25519".

Without a seed (`rng` None or `SystemRandom`) keys come from `cryptography`'s own generators.

With a seeded `RandomSource` the key is *derived* from it, so a seeded run makes the same CA, the
same certificates and the same signatures on any machine, with nothing cached on disk:

- ECDSA: the private scalar is `1 + (draw mod (n - 1))` for the curve order n, drawn with 64 bits
  to spare so the bias is below 2**-64; `ec.derive_private_key` builds the key.
- Ed25519: the 32-byte private key is drawn directly.
- RSA: `cryptography` cannot generate RSA from a seed, so the two primes are searched here: random
  odd candidates of half the modulus size with the top two bits set (so n has exactly the requested
  size), small-prime sieving, then 16 Miller-Rabin rounds; e = 65537, |p - q| > 2**(bits/2 - 100)
  (FIPS 186-5 §A.1.3). About half a second for RSA-2048 in pure Python (4 s for RSA-3072).
  We chose derivation over a key cache (e.g. ~/.cache/ikelab) because a cache makes a "seeded" run
  depend on what one machine happens to have on disk, and the trace could not say where the key
  came from. `cryptography` still checks the resulting key (RSAPrivateNumbers.private_key()).

A seeded key is NOT secret: anyone with the seed has it. That is the point in a classroom and the
reason never to use one elsewhere (the same caveat as `ikelab.rng.SeededRandom`).
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ikelab.rng import RandomSource, SystemRandom

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ecdsa256", "ecdsa384", "ecdsa521", "ed25519")

_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {  # key type -> (curve, group order n)
    "ecdsa256": (
        ec.SECP256R1(),
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "ecdsa384": (
        ec.SECP384R1(),
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    ),
    "ecdsa521": (
        ec.SECP521R1(),
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
    ),
}

_E = 65537
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, math.isqrt(p) + 1))]
_SIEVE = math.prod(_SMALL_PRIMES)
_MR_BASES = [2] + _SMALL_PRIMES[:15]  # 16 rounds: ample for random (not adversarial) candidates


def check_key_type(key_type: str) -> str:
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})")
    return key_type


def generate_key(key_type: str, rng: RandomSource | None = None, purpose: str = "key") -> PrivateKey:
    """A new private key; derived from `rng` when it is a seeded source (see the module doc)."""
    check_key_type(key_type)
    seeded = rng is not None and not isinstance(rng, SystemRandom)
    if key_type.startswith("rsa"):
        bits = int(key_type[3:])
        if not seeded:
            return rsa.generate_private_key(public_exponent=_E, key_size=bits)
        return _derive_rsa(bits, rng, purpose)
    if key_type == "ed25519":
        if not seeded:
            return ed25519.Ed25519PrivateKey.generate()
        return ed25519.Ed25519PrivateKey.from_private_bytes(rng.bytes(32, purpose))
    curve, order = _CURVES[key_type]
    if not seeded:
        return ec.generate_private_key(curve)
    draw = int.from_bytes(rng.bytes((order.bit_length() + 7) // 8 + 8, purpose), "big")
    return ec.derive_private_key(1 + draw % (order - 1), curve)


def key_type_of(key: PrivateKey | PublicKey) -> str:
    """"rsa2048", "ecdsa256", ... for a private or public key."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ecdsa256", "secp384r1": "ecdsa384", "secp521r1": "ecdsa521"}.get(
            key.curve.name, f"ecdsa-{key.curve.name}"
        )
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "ed448"
    return type(key).__name__


def describe_key(key: PrivateKey | PublicKey) -> str:
    """Human words for a key: "RSA-2048", "ECDSA P-256", "Ed25519"."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    return type(key).__name__


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), what swanctl's private/ directory loads."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def private_key_der(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER (what CERTREQ hashes, RFC 7296 §3.7)."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(data: bytes) -> PrivateKey:
    """A PEM or DER private key without password."""
    if data.lstrip().startswith(b"-----"):
        return serialization.load_pem_private_key(data, password=None)
    return serialization.load_der_private_key(data, password=None)


# --------------------------------------------------------------------------- seeded RSA


def _derive_rsa(bits: int, rng: RandomSource, purpose: str) -> rsa.RSAPrivateKey:
    half = bits // 2
    p = _derive_prime(half, rng, f"{purpose} (RSA prime p)")
    while True:
        q = _derive_prime(half, rng, f"{purpose} (RSA prime q)")
        if abs(p - q) > 1 << (half - 100):
            break
    n = p * q
    assert n.bit_length() == bits
    lam = math.lcm(p - 1, q - 1)
    d = pow(_E, -1, lam)
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(_E, n),
    )
    return numbers.private_key()


def _derive_prime(bits: int, rng: RandomSource, purpose: str) -> int:
    top = 0b11 << (bits - 2)
    mask = (1 << bits) - 1
    while True:
        candidate = (int.from_bytes(rng.bytes(bits // 8, purpose), "big") & mask) | top | 1
        if math.gcd(candidate, _SIEVE) != 1 or math.gcd(candidate - 1, _E) != 1:
            continue
        if _probably_prime(candidate):
            return candidate


def _probably_prime(n: int) -> bool:
    d, s = n - 1, 0
    while not d & 1:
        d, s = d >> 1, s + 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True
