"""Phase 1 authentication with signatures (RFC 2409 §5.1, RFC 4754 §3 for ECDSA).

With signatures, HASH_I and HASH_R are computed as with a pre-shared key (but keyed with a SKEYID
that no secret went into: prf(Ni_b | Nr_b, g^xy)), and then signed: SIG_I = sign(HASH_I). The
authentication method of the ISAKMP transform names the algorithm:

| method | name | HASH_I/HASH_R made with | what the SIG payload holds |
|---|---|---|---|
| 3 | RSA_SIGNATURES | the negotiated prf | RSA PKCS#1 v1.5 type 1 over HASH itself, no DigestInfo |
| 9 | ECDSA_SHA256_P256 | HMAC-SHA-256 | ECDSA with HASH as the digest: r ‖ s, 32 bytes each |
| 10 | ECDSA_SHA384_P384 | HMAC-SHA-384 | r ‖ s, 48 bytes each |
| 11 | ECDSA_SHA512_P521 | HMAC-SHA-512 | r ‖ s, 66 bytes each |

Neither scheme hashes again: RSA signs the bare HASH (strongSwan's SIGN_RSA_EMSA_PKCS1_NULL), and
ECDSA takes HASH as its digest (SIGN_ECDSA_WITH_NULL), which is why with ECDSA the HASH itself is
computed with the method's hash (RFC 4754; strongSwan 5.9 does the same, measured in the lab).
The method is the one agreed in the SA; a key on another curve (a P-384 peer under method 9) signs
that digest on its own curve, r|s as wide as its curve: strongSwan 5.9.8 does so and accepts it
(tests/test_ikev1_strongswan.py), though RFC 4754 pairs each method with one curve.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed, decode_dss_signature, encode_dss_signature

from ikelab.crypto.prf import PRFS, Prf
from ikelab.pki.keys import PrivateKey, PublicKey, describe_key
from ikelab.wire.isakmp_constants import AuthMethod, name_of

ECDSA_METHODS = {"secp256r1": AuthMethod.ECDSA_SHA256_P256, "secp384r1": AuthMethod.ECDSA_SHA384_P384, "secp521r1": AuthMethod.ECDSA_SHA512_P521}
SIGNATURE_METHODS = frozenset({AuthMethod.RSA_SIGNATURES, *ECDSA_METHODS.values()})
# ECDSA method: (its hash, the HMAC prf of HASH_I/HASH_R, bytes per coordinate of r and s)
_ECDSA = {
    AuthMethod.ECDSA_SHA256_P256: (hashes.SHA256, PRFS[5], 32),
    AuthMethod.ECDSA_SHA384_P384: (hashes.SHA384, PRFS[6], 48),
    AuthMethod.ECDSA_SHA512_P521: (hashes.SHA512, PRFS[7], 66),
}
_CURVES = {method: curve for curve, method in ECDSA_METHODS.items()}


def curve_bytes(key: PrivateKey | PublicKey) -> int:
    """Bytes per coordinate of r and s: fixed by the key's curve, whatever method was agreed."""
    return _ECDSA[ECDSA_METHODS[key.curve.name]][2]


def curve_mismatch(method: int, key: PrivateKey | PublicKey, whose: str) -> str:
    """"" if `key` is on the curve RFC 4754 pairs with the ECDSA `method`; else a line saying what is done.

    The agreed method fixes the hash of HASH_I/HASH_R; the key signs that digest on its own curve.
    RFC 4754 pairs each method with one curve, but strongSwan 5.9 (which lets a P-256 and a P-384
    peer meet under one ECDSA method) signs and verifies this way, so ikelab does too."""
    if method not in _ECDSA or key.curve.name == _CURVES[method]:
        return ""
    return (f"{whose} key is on {key.curve.name}, but {name_of(AuthMethod, method)} was agreed, which RFC 4754 pairs with {_CURVES[method]}: "
            f"HASH is made with the method's {_ECDSA[method][0].name.upper()} and signed on {key.curve.name}, "
            f"r|s of {curve_bytes(key)} bytes each (strongSwan does the same)")


def hash_prf(method: int, negotiated: Prf) -> Prf:
    """The prf of HASH_I/HASH_R: the negotiated one, except with ECDSA, whose hash it must be."""
    return _ECDSA[method][1] if method in _ECDSA else negotiated


class SignatureError(ValueError):
    """Our own key cannot make an IKEv1 signature; str() says why."""


def method_for_key(key: PrivateKey | PublicKey) -> int:
    """The phase 1 authentication method a key signs with: 3 for RSA, 9/10/11 for ECDSA by curve."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return AuthMethod.RSA_SIGNATURES
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name in ECDSA_METHODS:
        return ECDSA_METHODS[key.curve.name]
    raise SignatureError(f"IKEv1 has no signature method for an {describe_key(key)} key (RSA or ECDSA P-256/384/521 only)")


def describe(method: int) -> str:
    if method == AuthMethod.RSA_SIGNATURES:
        return "RSA_SIGNATURES (3): RSA PKCS#1 v1.5 over HASH, no DigestInfo"
    if method in _ECDSA:
        return f"{name_of(AuthMethod, method)} ({method}): ECDSA with HASH as the digest, r|s (RFC 4754)"
    return f"{name_of(AuthMethod, method)} ({method})"


def sign(method: int, key: PrivateKey, hash_value: bytes) -> bytes:
    """SIG_I or SIG_R: our signature over HASH_I or HASH_R with `method`."""
    if method == AuthMethod.RSA_SIGNATURES:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SignatureError(f"RSA_SIGNATURES needs an RSA key, not {describe_key(key)}")
        return key.sign(hash_value, padding.PKCS1v15(), NoDigestInfo())
    if method in _ECDSA:
        algorithm = _ECDSA[method][0]
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in ECDSA_METHODS:
            raise SignatureError(f"{name_of(AuthMethod, method)} needs an ECDSA P-256/384/521 key, not {describe_key(key)}")
        if len(hash_value) != algorithm.digest_size:
            raise SignatureError(f"HASH has {len(hash_value)} bytes, but {name_of(AuthMethod, method)} signs a {algorithm.digest_size}-byte digest")
        size = curve_bytes(key)
        r, s = decode_dss_signature(key.sign(hash_value, _prehashed(algorithm())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise SignatureError(f"{name_of(AuthMethod, method)} ({method}) is not a signature method")


def verify(method: int, key: PublicKey, hash_value: bytes, signature: bytes) -> tuple[bool, str]:
    """Check the peer's SIG payload over the HASH we computed; (ok, why not). Never raises."""
    words = describe_key(key)
    if method == AuthMethod.RSA_SIGNATURES:
        if not isinstance(key, rsa.RSAPublicKey):
            return False, f"the transform says RSA_SIGNATURES but the certificate holds an {words} key"
        if len(signature) != (key.key_size + 7) // 8:
            return False, f"an RSA signature of this {words} key has {(key.key_size + 7) // 8} bytes, the SIG payload has {len(signature)}"
        try:
            key.verify(signature, hash_value, padding.PKCS1v15(), NoDigestInfo())
        except InvalidSignature:
            return False, (
                f"the RSA signature does not verify with the certificate's {words} public key: it was made over "
                "another HASH (the keys or exchanged values differ) or with another private key"
            )
        except (ValueError, TypeError) as e:
            return False, f"the RSA signature cannot be checked: {e}"
        return True, f"RSA PKCS#1 v1.5 signature over the HASH verified with the certificate's {words} key"
    if method in _ECDSA:
        algorithm = _ECDSA[method][0]
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in ECDSA_METHODS:
            return False, f"the transform says {name_of(AuthMethod, method)} but the certificate holds an {words} key"
        size = curve_bytes(key)
        if len(signature) != 2 * size:
            return False, f"{words} signatures are r|s of {2 * size} bytes, the SIG payload has {len(signature)}"
        if len(hash_value) != algorithm.digest_size:
            return False, f"HASH has {len(hash_value)} bytes, but {name_of(AuthMethod, method)} signs a {algorithm.digest_size}-byte digest"
        der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
        try:
            key.verify(der, hash_value, ec.ECDSA(Prehashed(algorithm())))
        except InvalidSignature:
            return False, (
                f"the ECDSA signature does not verify with the certificate's {words} public key: it was made over "
                "another HASH (the keys or exchanged values differ) or with another private key"
            )
        return True, f"ECDSA signature with HASH as the digest verified with the certificate's {words} key"
    return False, f"{name_of(AuthMethod, method)} ({method}) is not a signature method"


def _prehashed(algorithm: hashes.HashAlgorithm) -> ec.ECDSA:
    """ECDSA over a digest we computed; RFC 6979 nonces where cryptography has them, so seeded runs repeat."""
    try:
        return ec.ECDSA(Prehashed(algorithm), deterministic_signing=True)
    except TypeError:  # cryptography < 43
        return ec.ECDSA(Prehashed(algorithm))
