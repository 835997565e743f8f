"""IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18)."""

from __future__ import annotations

from typing import NamedTuple

from ikelab.crypto.prf import Prf, PrfPlusResult, prf_plus


class IkeSaKeys(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    def as_dict(self) -> dict[str, bytes]:
        """The keys by their RFC names, in the order prf+ produces them."""
        return dict(zip(_RFC_NAMES, self))


_RFC_NAMES = ("SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr")  # IkeSaKeys' fields, in order


def skeyseed(prf: Prf, ni: bytes, nr: bytes, g_ir: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir)  (§2.14)."""
    return prf(ni + nr, g_ir)


def rekey_skeyseed(prf: Prf, old_sk_d: bytes, g_ir_new: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)  (§2.18), nonces of the rekey exchange."""
    return prf(old_sk_d, g_ir_new + ni + nr)


def ike_sa_keys(
    prf: Prf,
    skeyseed: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    encr_key_length: int,
    integ_key_length: int,
) -> tuple[IkeSaKeys, PrfPlusResult]:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
        = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)  (§2.14).

    SK_d, SK_pi and SK_pr are as long as the PRF output; integ_key_length is 0 for AEAD
    ciphers, and encr_key_length includes the GCM salt.
    """
    lengths = (
        prf.output_length,
        integ_key_length,
        integ_key_length,
        encr_key_length,
        encr_key_length,
        prf.output_length,
        prf.output_length,
    )
    result = prf_plus(prf, skeyseed, ni + nr + spi_i + spi_r, sum(lengths))
    keys: list[bytes] = []
    offset = 0
    for length in lengths:
        keys.append(result.output[offset : offset + length])
        offset += length
    return IkeSaKeys(*keys), result


def child_keymat(
    prf: Prf, sk_d: bytes, ni: bytes, nr: bytes, length: int, g_ir_new: bytes | None = None
) -> PrfPlusResult:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)  (§2.17); g^ir only with PFS.

    Keys are taken in order: encryption then integrity for initiator-to-responder,
    then the same for responder-to-initiator.
    """
    seed = (g_ir_new or b"") + ni + nr
    return prf_plus(prf, sk_d, seed, length)
