"""Phase 1 authentication with signatures (RFC 2409 §5.1, RFC 4754 §3 for ECDSA).

With signatures, HASH_I and HASH_R are computed as with a pre-shared key (but keyed with a SKEYID
that no secret went into: prf(Ni_b | Nr_b, g^xy)), and then signed: SIG_I = sign(HASH_I). The
authentication method of the ISAKMP transform names the algorithm:

| method | name | what is signed, and how the SIG payload looks |
|---|---|---|
| 3 | RSA_SIGNATURES | HASH itself, RSA with PKCS#1 v1.5 type 1 padding and no DigestInfo |
| 9 | ECDSA_SHA256_P256 | SHA-256(HASH), r ‖ s of 32 bytes each (RFC 4754) |
| 10 | ECDSA_SHA384_P384 | SHA-384(HASH), r ‖ s of 48 bytes each |
| 11 | ECDSA_SHA512_P521 | SHA-512(HASH), r ‖ s of 66 bytes each |

RSA in IKEv1 signs the bare hash (PKCS#1 "encryption" with the private key, as strongSwan's
SIGN_RSA_EMSA_PKCS1_NULL does); ECDSA is the RFC 4754 scheme IKEv2 uses too, so it comes from
ikelab.pki.signature_auth, whose methods 9, 10 and 11 are the same numbers and the same algorithm.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo

from ikelab.pki import signature_auth
from ikelab.pki.keys import PrivateKey, PublicKey, describe_key
from ikelab.wire.isakmp_constants import AuthMethod, name_of

ECDSA_METHODS = {"secp256r1": AuthMethod.ECDSA_SHA256_P256, "secp384r1": AuthMethod.ECDSA_SHA384_P384, "secp521r1": AuthMethod.ECDSA_SHA512_P521}
SIGNATURE_METHODS = frozenset({AuthMethod.RSA_SIGNATURES, *ECDSA_METHODS.values()})


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
    if method in SIGNATURE_METHODS:
        return f"{name_of(AuthMethod, method)} ({method}): ECDSA over HASH, r|s (RFC 4754)"
    return f"{name_of(AuthMethod, method)} ({method})"


def sign(method: int, key: PrivateKey, hash_value: bytes) -> bytes:
    """SIG_I or SIG_R: our signature over HASH_I or HASH_R with `method`."""
    if method == AuthMethod.RSA_SIGNATURES:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SignatureError(f"RSA_SIGNATURES needs an RSA key, not {describe_key(key)}")
        return key.sign(hash_value, padding.PKCS1v15(), NoDigestInfo())
    if method in SIGNATURE_METHODS:
        try:
            return signature_auth.sign(method, key, hash_value)
        except signature_auth.SignatureError as e:
            raise SignatureError(str(e)) from None
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
    if method in SIGNATURE_METHODS:
        result = signature_auth.verify(method, key, hash_value, signature)
        return result.ok, result.reason or f"{result.algorithm} signature verified with the certificate's {words} key"
    return False, f"{name_of(AuthMethod, method)} ({method}) is not a signature method"
