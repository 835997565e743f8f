"""Certificates for IKE: the built-in lab CA, signature AUTH and certificate validation.

- `ikelab.pki.keys`: key pairs (RSA, ECDSA, Ed25519), derived from the seed in seeded runs.
- `ikelab.pki.ca`: `LabCa` issues certificates; PEM/DER export; files for strongSwan's swanctl dirs.
- `ikelab.pki.signature_auth`: AUTH methods 1, 9, 10, 11 and 14 (RFC 7296, 4754, 7427, 8420);
  SIGNATURE_HASH_ALGORITHMS notify data.
- `ikelab.pki.validation`: chain, validity, constraints and identity checks with named failures;
  CERTREQ hashes.

This package sits beside `ikelab.crypto`: it imports only `cryptography`, `ikelab.rng` and the wire
constants, and the IKE engines call it.
"""

from ikelab.pki.ca import SEEDED_EPOCH, LabCa, der, pem, write_swanctl
from ikelab.pki.signature_auth import (
    HashAlgorithm,
    VerifyResult,
    sign,
    signed_octets,
    verify,
)
from ikelab.pki.validation import (
    ValidationResult,
    certreq_data,
    certreq_hash,
    check_identity,
    validate,
)

__all__ = [
    "SEEDED_EPOCH",
    "HashAlgorithm",
    "LabCa",
    "ValidationResult",
    "VerifyResult",
    "certreq_data",
    "certreq_hash",
    "check_identity",
    "der",
    "pem",
    "sign",
    "signed_octets",
    "validate",
    "verify",
    "write_swanctl",
]
