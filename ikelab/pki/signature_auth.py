"""AUTH with a signature (RFC 7296 §2.15, RFC 4754, RFC 7427, RFC 8420).

The signed octets are the same as for a pre-shared key:

    SignedOctets = RealMessage | Nonce of the other side | prf(SK_px, IDx')

but instead of a prf keyed with the secret, the sender signs them with its private key, and the
receiver checks the signature with the public key of the certificate the sender presented.

Auth methods and how the Authentication Data looks:

| method | name | Authentication Data |
|---|---|---|
| 1 | RSA_DIGITAL_SIGNATURE | RSASSA-PKCS1-v1_5 with SHA-1 (the hash is fixed by tradition, RFC 7296 §3.8) |
| 9 | ECDSA_SHA256_P256 | r ‖ s, 32 bytes each (RFC 4754 §7) |
| 10 | ECDSA_SHA384_P384 | r ‖ s, 48 bytes each |
| 11 | ECDSA_SHA512_P521 | r ‖ s, 66 bytes each |
| 14 | DIGITAL_SIGNATURE | length octet ‖ ASN.1 AlgorithmIdentifier ‖ signature (RFC 7427 §3) |

With method 14 the signature algorithm and hash travel in the AUTH payload itself. ECDSA signatures
are then DER (Ecdsa-Sig-Value), RSA may use PKCS#1 v1.5 or RSASSA-PSS, and Ed25519/Ed448 sign the
octets directly (hash "identity", RFC 8420). Peers announce the hashes they accept with the
SIGNATURE_HASH_ALGORITHMS notify in IKE_SA_INIT (RFC 7427 §4); strongSwan sends 2, 3, 4, 5.

Reproducibility: RSA PKCS#1 v1.5 and EdDSA signatures are deterministic; ECDSA is made so with
RFC 6979 nonces (`deterministic=True`, needs cryptography >= 43). RSASSA-PSS draws a random salt
inside OpenSSL: a seeded run that uses PSS is not byte-for-byte repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ikelab.pki import asn1
from ikelab.pki.keys import PrivateKey, PublicKey, describe_key
from ikelab.wire.ikev2_constants import AuthMethod, name_of


class HashAlgorithm(IntEnum):
    """IANA "IKEv2 Hash Algorithms" (RFC 7427 §7, RFC 8420): SIGNATURE_HASH_ALGORITHMS values."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5


# What we announce in our SIGNATURE_HASH_ALGORITHMS notify (the same list strongSwan sends).
SUPPORTED_HASHES: tuple[HashAlgorithm, ...] = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)

SIGNATURE_METHODS = frozenset(
    {
        AuthMethod.RSA_DIGITAL_SIGNATURE,
        AuthMethod.ECDSA_SHA256_P256,
        AuthMethod.ECDSA_SHA384_P384,
        AuthMethod.ECDSA_SHA512_P521,
        AuthMethod.DIGITAL_SIGNATURE,
    }
)

_HASH_NAMES = {"sha1": 1, "sha256": 2, "sha384": 3, "sha512": 4, "identity": 5}
_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}
_HASH_OIDS = {
    HashAlgorithm.SHA1: "1.3.14.3.2.26",
    HashAlgorithm.SHA2_256: "2.16.840.1.101.3.4.2.1",
    HashAlgorithm.SHA2_384: "2.16.840.1.101.3.4.2.2",
    HashAlgorithm.SHA2_512: "2.16.840.1.101.3.4.2.3",
}
_OID_HASHES = {oid: h for h, oid in _HASH_OIDS.items()}
OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"

# The classic (pre-RFC 7427) ECDSA methods: (hash, curve name, bytes per coordinate).
_ECDSA_METHODS = {
    AuthMethod.ECDSA_SHA256_P256: (HashAlgorithm.SHA2_256, "secp256r1", 32),
    AuthMethod.ECDSA_SHA384_P384: (HashAlgorithm.SHA2_384, "secp384r1", 48),
    AuthMethod.ECDSA_SHA512_P521: (HashAlgorithm.SHA2_512, "secp521r1", 66),
}
_CURVE_WORDS = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class SignatureError(ValueError):
    """Our own key or choice of method cannot make the requested signature; str() says why."""


@dataclass(frozen=True)
class Scheme:
    """A signature algorithm that RFC 7427 names with an AlgorithmIdentifier."""

    name: str  # "sha256WithRSAEncryption", "ecdsa-with-SHA384", "RSASSA-PSS(SHA-256)", "Ed25519"
    key: str  # "rsa", "ecdsa", "ed25519", "ed448"
    hash: HashAlgorithm
    algorithm_identifier: bytes  # DER, as carried in the AUTH payload
    pss_salt: int | None = None  # RSASSA-PSS only


def _algid(oid: str, params: bytes | None) -> bytes:
    return asn1.encode(asn1.SEQUENCE, asn1.encode_oid(oid) + (params if params is not None else b""))


_NULL = asn1.encode(asn1.NULL, b"")


def pss_algorithm_identifier(hash_alg: HashAlgorithm, salt_length: int | None = None) -> bytes:
    """RSASSA-PSS-params (RFC 4055 §3.1) with MGF1 over the same hash; salt defaults to the hash length."""
    hash_id = _algid(_HASH_OIDS[hash_alg], _NULL)
    salt = _HASHES[hash_alg].digest_size if salt_length is None else salt_length
    params = (
        asn1.encode(0xA0, hash_id)
        + asn1.encode(0xA1, _algid(OID_MGF1, hash_id))
        + asn1.encode(0xA2, asn1.encode_integer(salt))
    )
    return _algid(OID_RSASSA_PSS, asn1.encode(asn1.SEQUENCE, params))


# RFC 7427 Appendix A and RFC 8420 §2: the exact bytes strongSwan and others send.
SCHEMES: tuple[Scheme, ...] = (
    Scheme("sha1WithRSAEncryption", "rsa", HashAlgorithm.SHA1, _algid("1.2.840.113549.1.1.5", _NULL)),
    Scheme("sha256WithRSAEncryption", "rsa", HashAlgorithm.SHA2_256, _algid("1.2.840.113549.1.1.11", _NULL)),
    Scheme("sha384WithRSAEncryption", "rsa", HashAlgorithm.SHA2_384, _algid("1.2.840.113549.1.1.12", _NULL)),
    Scheme("sha512WithRSAEncryption", "rsa", HashAlgorithm.SHA2_512, _algid("1.2.840.113549.1.1.13", _NULL)),
    Scheme("ecdsa-with-SHA1", "ecdsa", HashAlgorithm.SHA1, _algid("1.2.840.10045.4.1", None)),
    Scheme("ecdsa-with-SHA256", "ecdsa", HashAlgorithm.SHA2_256, _algid("1.2.840.10045.4.3.2", None)),
    Scheme("ecdsa-with-SHA384", "ecdsa", HashAlgorithm.SHA2_384, _algid("1.2.840.10045.4.3.3", None)),
    Scheme("ecdsa-with-SHA512", "ecdsa", HashAlgorithm.SHA2_512, _algid("1.2.840.10045.4.3.4", None)),
    Scheme("Ed25519", "ed25519", HashAlgorithm.IDENTITY, _algid("1.3.101.112", None)),
    Scheme("Ed448", "ed448", HashAlgorithm.IDENTITY, _algid("1.3.101.113", None)),
    *(
        Scheme(f"RSASSA-PSS(SHA-{h.name[5:]}, salt {_HASHES[h].digest_size})", "rsa", h, pss_algorithm_identifier(h), _HASHES[h].digest_size)
        for h in (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)
    ),
)


def _oid_of(algid: bytes) -> str:
    return asn1.decode_oid(asn1.read(asn1.read_one(algid, asn1.SEQUENCE, "AlgorithmIdentifier").value)[0].value)


_SCHEME_BY_OID = {_oid_of(s.algorithm_identifier): s for s in SCHEMES if s.pss_salt is None}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str  # why not (or what was checked, when ok)
    algorithm: str = ""  # "sha256WithRSAEncryption", "RSASSA-PKCS1-v1_5 with SHA-1", "ECDSA P-256 with SHA-256"
    hash: int | None = None  # the HashAlgorithm used, for checking it against what we announced
    signature: bytes = b""  # the signature itself (without the RFC 7427 prefix)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class SignedOctets:
    """The octets a signature covers, piece by piece for the trace (as ikelab.ikev2.auth.PskAuth)."""

    message: bytes  # RealMessage1 (initiator) or RealMessage2 (responder)
    nonce: bytes  # the other side's nonce
    id_body: bytes  # IDx'
    maced_id: bytes  # prf(SK_px, IDx')
    octets: bytes


def signed_octets(prf, message: bytes, nonce: bytes, sk_p: bytes, id_body: bytes) -> SignedOctets:
    """RealMessage | Nonce | prf(SK_p, ID'): `prf` is an ikelab.crypto.prf.Prf (called as prf(key, data))."""
    maced_id = prf(sk_p, id_body)
    return SignedOctets(message, nonce, id_body, maced_id, message + nonce + maced_id)


# --------------------------------------------------------------------------- choosing


def hash_algorithm(choice: int | str | None) -> HashAlgorithm | None:
    """HashAlgorithm from a number, an IANA name ("SHA2_256") or a keyword ("sha256")."""
    if choice is None or isinstance(choice, HashAlgorithm):
        return choice
    if isinstance(choice, str):
        key = choice.strip().lower().replace("-", "").replace("_", "")
        key = {"sha2256": "sha256", "sha2384": "sha384", "sha2512": "sha512"}.get(key, key)
        if key not in _HASH_NAMES:
            raise SignatureError(f"unknown hash {choice!r} (known: {', '.join(_HASH_NAMES)})")
        return HashAlgorithm(_HASH_NAMES[key])
    try:
        return HashAlgorithm(choice)
    except ValueError:
        raise SignatureError(f"unknown IKEv2 hash algorithm {choice}") from None


def _key_kind(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "ed448"
    return type(key).__name__


def _natural_hash(key: PrivateKey | PublicKey) -> HashAlgorithm:
    """The hash that matches the key's strength: SHA-256 for RSA and P-256, SHA-384 for P-384..."""
    kind = _key_kind(key)
    if kind in ("ed25519", "ed448"):
        return HashAlgorithm.IDENTITY
    if kind == "ecdsa":
        return {384: HashAlgorithm.SHA2_384, 521: HashAlgorithm.SHA2_512}.get(key.curve.key_size, HashAlgorithm.SHA2_256)
    return HashAlgorithm.SHA2_256


def classic_method(key: PrivateKey | PublicKey) -> AuthMethod | None:
    """The pre-RFC 7427 method for this key (1, 9, 10, 11), or None (EdDSA has none)."""
    kind = _key_kind(key)
    if kind == "rsa":
        return AuthMethod.RSA_DIGITAL_SIGNATURE
    if kind == "ecdsa":
        for method, (_, curve, _) in _ECDSA_METHODS.items():
            if key.curve.name == curve:
                return method
    return None


def choose(
    private_key: PrivateKey,
    peer_hashes: Sequence[int] | None,
    *,
    prefer: str = "auto",
) -> tuple[AuthMethod, HashAlgorithm | None]:
    """Which auth method (and for method 14, which hash) to sign with.

    prefer "auto": RFC 7427 (method 14) when the peer announced SIGNATURE_HASH_ALGORITHMS with a hash
    we can use for this key, else the classic method (1, 9, 10, 11) — what strongSwan does too.
    prefer "classic" forces 1/9/10/11, "rfc7427" forces 14 (hash from the peer's list if it sent one).
    """
    classic = classic_method(private_key)
    if prefer == "classic":
        if classic is None:
            raise SignatureError(f"an {describe_key(private_key)} key has no classic auth method: it needs RFC 7427 (14)")
        return classic, None
    if prefer not in ("auto", "rfc7427"):
        raise SignatureError(f"unknown signature method preference {prefer!r} (auto, classic, rfc7427)")
    natural = _natural_hash(private_key)
    if natural is HashAlgorithm.IDENTITY:
        candidates = [HashAlgorithm.IDENTITY]
    else:
        candidates = [natural] + [h for h in (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512) if h != natural]
    if peer_hashes:
        usable = [h for h in candidates if h in set(peer_hashes)]
        if usable:
            return AuthMethod.DIGITAL_SIGNATURE, usable[0]
    if prefer == "rfc7427" or classic is None:
        return AuthMethod.DIGITAL_SIGNATURE, candidates[0]
    return classic, None


def scheme_for(private_key: PrivateKey | PublicKey, hash_choice: int | str | None = None, *, pss: bool = False) -> Scheme:
    """The RFC 7427 scheme for this key and hash (None: the hash matching the key)."""
    kind = _key_kind(private_key)
    h = hash_algorithm(hash_choice) or _natural_hash(private_key)
    if pss and kind != "rsa":
        raise SignatureError(f"RSASSA-PSS needs an RSA key, not {describe_key(private_key)}")
    for scheme in SCHEMES:
        if scheme.key == kind and scheme.hash == h and (scheme.pss_salt is not None) == pss:
            return scheme
    raise SignatureError(f"no RFC 7427 signature scheme for an {describe_key(private_key)} key with hash {h.name}")


# --------------------------------------------------------------------------- signing


def sign(
    method: int,
    private_key: PrivateKey,
    octets: bytes,
    hash_choice: int | str | None = None,
    *,
    pss: bool = False,
    deterministic: bool = True,
) -> bytes:
    """The Authentication Data of our AUTH payload for `method`.

    hash_choice only matters for method 14 (None: the hash matching the key); pss selects RSASSA-PSS
    for RSA keys with method 14. Raises SignatureError when the key cannot do the method.
    """
    kind = _key_kind(private_key)
    if method == AuthMethod.RSA_DIGITAL_SIGNATURE:
        if kind != "rsa":
            raise SignatureError(f"RSA_DIGITAL_SIGNATURE (1) needs an RSA key, not {describe_key(private_key)}")
        return private_key.sign(octets, padding.PKCS1v15(), hashes.SHA1())
    if method in _ECDSA_METHODS:
        h, curve, size = _ECDSA_METHODS[method]
        if kind != "ecdsa" or private_key.curve.name != curve:
            raise SignatureError(
                f"{name_of(AuthMethod, method)} ({method}) needs an ECDSA {_CURVE_WORDS[curve]} key, "
                f"not {describe_key(private_key)}"
            )
        r, s = decode_dss_signature(private_key.sign(octets, _ecdsa(h, deterministic)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if method == AuthMethod.DIGITAL_SIGNATURE:
        scheme = scheme_for(private_key, hash_choice, pss=pss)
        return bytes([len(scheme.algorithm_identifier)]) + scheme.algorithm_identifier + _sign_scheme(
            scheme, private_key, octets, deterministic
        )
    raise SignatureError(f"auth method {name_of(AuthMethod, method)} ({method}) is not a signature method we can make")


def _ecdsa(h: HashAlgorithm, deterministic: bool) -> ec.ECDSA:
    algorithm = _HASHES[h]()
    if deterministic:
        try:
            return ec.ECDSA(algorithm, deterministic_signing=True)
        except TypeError:  # cryptography < 43
            pass
    return ec.ECDSA(algorithm)


def _sign_scheme(scheme: Scheme, key: PrivateKey, octets: bytes, deterministic: bool) -> bytes:
    if scheme.key in ("ed25519", "ed448"):
        return key.sign(octets)
    if scheme.key == "ecdsa":
        return key.sign(octets, _ecdsa(scheme.hash, deterministic))  # DER Ecdsa-Sig-Value
    algorithm = _HASHES[scheme.hash]()
    if scheme.pss_salt is not None:
        return key.sign(octets, padding.PSS(padding.MGF1(algorithm), scheme.pss_salt), algorithm)
    return key.sign(octets, padding.PKCS1v15(), algorithm)


# --------------------------------------------------------------------------- verifying


def verify(method: int, public_key: PublicKey, octets: bytes, auth_data: bytes) -> VerifyResult:
    """Check a peer's AUTH signature; never raises, the result says what was wrong."""
    try:
        return _verify(method, public_key, octets, auth_data)
    except asn1.DerError as e:
        return VerifyResult(False, f"the RFC 7427 AlgorithmIdentifier is malformed: {e}")
    except Exception as e:  # noqa: BLE001 - a key/parameter combination OpenSSL refuses: still an answer, not a crash
        return VerifyResult(False, f"the signature cannot be checked: {type(e).__name__}: {e}")


def _verify(method: int, key: PublicKey, octets: bytes, data: bytes) -> VerifyResult:
    kind = _key_kind(key)
    key_words = describe_key(key)
    if method == AuthMethod.RSA_DIGITAL_SIGNATURE:
        algorithm = "RSASSA-PKCS1-v1_5 with SHA-1"
        if kind != "rsa":
            return VerifyResult(False, f"AUTH method RSA_DIGITAL_SIGNATURE (1) but the certificate holds an {key_words} key", algorithm)
        return _check(lambda: key.verify(data, octets, padding.PKCS1v15(), hashes.SHA1()), algorithm, HashAlgorithm.SHA1, data, key_words)
    if method in _ECDSA_METHODS:
        h, curve, size = _ECDSA_METHODS[method]
        algorithm = f"ECDSA {_CURVE_WORDS[curve]} with SHA-{h.name[5:]} (RFC 4754)"
        if kind != "ecdsa" or key.curve.name != curve:
            return VerifyResult(
                False, f"AUTH method {name_of(AuthMethod, method)} ({method}) but the certificate holds an {key_words} key", algorithm
            )
        if len(data) != 2 * size:
            return VerifyResult(
                False, f"{name_of(AuthMethod, method)} signatures are r|s of {2 * size} bytes, this one has {len(data)}", algorithm
            )
        signature = encode_dss_signature(int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big"))
        return _check(lambda: key.verify(signature, octets, ec.ECDSA(_HASHES[h]())), algorithm, h, data, key_words)
    if method == AuthMethod.DIGITAL_SIGNATURE:
        return _verify_rfc7427(key, octets, data)
    return VerifyResult(False, f"auth method {name_of(AuthMethod, method)} ({method}) is not a signature method we verify")


def _check(call, algorithm: str, h: HashAlgorithm, signature: bytes, key_words: str) -> VerifyResult:
    try:
        call()
    except InvalidSignature:
        return VerifyResult(
            False,
            f"the {algorithm} signature does not verify with the certificate's {key_words} public key "
            "(signed octets differ, or the signer holds another key)",
            algorithm,
            h,
            signature,
        )
    return VerifyResult(True, f"{algorithm} signature verified with the certificate's {key_words} public key", algorithm, h, signature)


def parse_algorithm_identifier(algid: bytes) -> Scheme:
    """The Scheme an RFC 7427 AlgorithmIdentifier names; raises DerError for unknown or malformed ones."""
    seq = asn1.read_one(algid, asn1.SEQUENCE, "AlgorithmIdentifier")
    parts = asn1.read_all(seq.value, "AlgorithmIdentifier")
    if not parts or parts[0].tag != asn1.OID:
        raise asn1.DerError("AlgorithmIdentifier does not start with an OBJECT IDENTIFIER")
    oid = asn1.decode_oid(parts[0].value)
    params = parts[1:]
    if oid == OID_RSASSA_PSS:
        return _parse_pss(params[0] if params else None, algid)
    scheme = _SCHEME_BY_OID.get(oid)
    if scheme is None:
        raise asn1.DerError(f"unknown signature algorithm {oid}")
    if len(params) > 1 or (params and not (scheme.key == "rsa" and params[0].encoded == _NULL)):
        raise asn1.DerError(f"unexpected parameters for {scheme.name}")
    return scheme


def _parse_pss(params: asn1.Tlv | None, algid: bytes) -> Scheme:
    """RSASSA-PSS-params; absent fields take RFC 4055 defaults (SHA-1, MGF1-SHA-1, salt 20)."""
    hash_alg, mgf_hash, salt = HashAlgorithm.SHA1, HashAlgorithm.SHA1, 20
    if params is not None:
        if params.tag != asn1.SEQUENCE:
            raise asn1.DerError("RSASSA-PSS parameters are not a SEQUENCE")
        for field in asn1.read_all(params.value, "RSASSA-PSS-params"):
            if field.tag == 0xA0:
                hash_alg = _hash_of_algid(field.value)
            elif field.tag == 0xA1:
                mgf = asn1.read_all(asn1.read_one(field.value, asn1.SEQUENCE, "maskGenAlgorithm").value, "maskGenAlgorithm")
                if len(mgf) != 2 or asn1.decode_oid(mgf[0].value) != OID_MGF1:
                    raise asn1.DerError("RSASSA-PSS mask generation is not MGF1")
                mgf_hash = _hash_of_algid(mgf[1].encoded)
            elif field.tag == 0xA2:
                salt = asn1.decode_integer(asn1.read_one(field.value, asn1.INTEGER, "saltLength").value)
            elif field.tag == 0xA3:
                if asn1.decode_integer(asn1.read_one(field.value, asn1.INTEGER, "trailerField").value) != 1:
                    raise asn1.DerError("RSASSA-PSS trailerField other than 1")
            else:
                raise asn1.DerError(f"unexpected RSASSA-PSS field with tag 0x{field.tag:02x}")
    if mgf_hash != hash_alg:
        raise asn1.DerError(f"RSASSA-PSS with MGF1-{mgf_hash.name} and hash {hash_alg.name} is not supported")
    if salt < 0:
        raise asn1.DerError(f"RSASSA-PSS salt length {salt}")
    return Scheme(f"RSASSA-PSS(SHA-{hash_alg.name[5:] if hash_alg != HashAlgorithm.SHA1 else '1'}, salt {salt})", "rsa", hash_alg, algid, salt)


def _hash_of_algid(data: bytes) -> HashAlgorithm:
    parts = asn1.read_all(asn1.read_one(data, asn1.SEQUENCE, "hash AlgorithmIdentifier").value, "hash AlgorithmIdentifier")
    if not parts or parts[0].tag != asn1.OID:
        raise asn1.DerError("hash AlgorithmIdentifier without an OID")
    oid = asn1.decode_oid(parts[0].value)
    if oid not in _OID_HASHES:
        raise asn1.DerError(f"unknown hash algorithm {oid}")
    return _OID_HASHES[oid]


def split_rfc7427(auth_data: bytes) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier, signature) of method-14 Authentication Data; raises DerError."""
    if not auth_data:
        raise asn1.DerError("empty Authentication Data")
    n = auth_data[0]
    if len(auth_data) < 1 + n:
        raise asn1.DerError(f"ASN.1 length octet says {n} bytes, only {len(auth_data) - 1} follow")
    return auth_data[1 : 1 + n], auth_data[1 + n :]


def _verify_rfc7427(key: PublicKey, octets: bytes, data: bytes) -> VerifyResult:
    algid, signature = split_rfc7427(data)
    scheme = parse_algorithm_identifier(algid)
    kind = _key_kind(key)
    key_words = describe_key(key)
    algorithm = scheme.name
    if scheme.key != kind:
        return VerifyResult(
            False,
            f"AUTH method DIGITAL_SIGNATURE (14) uses {scheme.name}, but the certificate holds an {key_words} key",
            algorithm,
            scheme.hash,
            signature,
        )
    if kind in ("ed25519", "ed448"):
        return _check(lambda: key.verify(signature, octets), algorithm, scheme.hash, signature, key_words)
    algorithm_hash = _HASHES[scheme.hash]()
    if kind == "ecdsa":
        return _check(lambda: key.verify(signature, octets, ec.ECDSA(algorithm_hash)), algorithm, scheme.hash, signature, key_words)
    if scheme.pss_salt is not None:
        pad = padding.PSS(padding.MGF1(algorithm_hash), scheme.pss_salt)
    else:
        pad = padding.PKCS1v15()
    return _check(lambda: key.verify(signature, octets, pad, algorithm_hash), algorithm, scheme.hash, signature, key_words)


def describe_auth(method: int, auth_data: bytes = b"") -> str:
    """Words for the trace: "DIGITAL_SIGNATURE (14, RFC 7427: sha256WithRSAEncryption)"."""
    base = f"{name_of(AuthMethod, method)} ({method}"
    if method == AuthMethod.DIGITAL_SIGNATURE and auth_data:
        try:
            return f"{base}, RFC 7427: {parse_algorithm_identifier(split_rfc7427(auth_data)[0]).name})"
        except asn1.DerError:
            return f"{base}, RFC 7427: unreadable AlgorithmIdentifier)"
    return base + ")"


# --------------------------------------------------------------------------- SIGNATURE_HASH_ALGORITHMS


def encode_signature_hash_algorithms(algorithms: Sequence[int] = SUPPORTED_HASHES) -> bytes:
    """Notification Data of SIGNATURE_HASH_ALGORITHMS (16431): 2-byte hash ids (RFC 7427 §4)."""
    return b"".join(int(h).to_bytes(2, "big") for h in algorithms)


def decode_signature_hash_algorithms(data: bytes) -> tuple[int, ...]:
    """The hash ids in a SIGNATURE_HASH_ALGORITHMS notify; raises ValueError on an odd length."""
    if len(data) % 2:
        raise ValueError(f"SIGNATURE_HASH_ALGORITHMS data must be 2-byte hash ids; {len(data)} bytes is odd")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def hash_names(algorithms: Sequence[int]) -> list[str]:
    return [name_of(HashAlgorithm, h) for h in algorithms]
