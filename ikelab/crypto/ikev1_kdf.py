"""IKEv1 key derivation (RFC 2409 §5, §5.5, §5.7, appendix B).

The prf is HMAC with the negotiated hash (`Prf`); the IVs and NAT-D use the plain hash. Every
function that feeds several values into the prf takes or returns them as named parts, so a trace
can show each input exactly as it was concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from ikelab.crypto.prf import Prf, PrfPlusBlock

Parts = list[tuple[str, bytes]]  # named inputs, concatenated in this order

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def digest(prf: Prf, data: bytes) -> bytes:
    """The plain hash behind an HMAC prf (for the IVs and NAT-D, which RFC 2409 defines without a key)."""
    h = hashes.Hash(_HASHES[prf.name.removeprefix("prf")]())
    h.update(data)
    return h.finalize()


def joined(parts: Parts) -> bytes:
    return b"".join(value for _, value in parts)


# --- phase 1 -------------------------------------------------------------------------------


def skeyid_psk(prf: Prf, psk: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYID = prf(pre-shared-key, Ni_b | Nr_b)  (§5): the PSK is the key, so every key below depends on it."""
    return prf(psk, ni + nr)


def skeyid_signature(prf: Prf, ni: bytes, nr: bytes, g_xy: bytes) -> bytes:
    """SKEYID = prf(Ni_b | Nr_b, g^xy)  (§5, signature authentication)."""
    return prf(ni + nr, g_xy)


@dataclass(frozen=True)
class PrfStep:
    """One prf computation: output = prf(key, joined(parts))."""

    name: str
    key: bytes
    parts: Parts
    output: bytes


@dataclass(frozen=True)
class SkeyidChildren:
    d: PrfStep
    a: PrfStep
    e: PrfStep


def skeyid_children(prf: Prf, skeyid: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes) -> SkeyidChildren:
    """SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
    SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)   (§5)"""
    common: Parts = [("g^xy", g_xy), ("CKY-I", cky_i), ("CKY-R", cky_r)]
    steps: list[PrfStep] = []
    previous: Parts = []
    for index, name in enumerate(("SKEYID_d", "SKEYID_a", "SKEYID_e")):
        parts = previous + common + [("counter", bytes([index]))]
        step = PrfStep(name, skeyid, parts, prf(skeyid, joined(parts)))
        steps.append(step)
        previous = [(name, step.output)]
    return SkeyidChildren(*steps)


@dataclass(frozen=True)
class Expansion:
    """Keying material made of prf blocks K1 | K2 | ... (empty `blocks` when none were needed)."""

    output: bytes
    blocks: tuple[PrfPlusBlock, ...]


def encryption_key(prf: Prf, skeyid_e: bytes, length: int) -> Expansion:
    """Ka: the first `length` bytes of SKEYID_e, or when it is too short (appendix B)
    K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1), ..., Ka = K1 | K2 | ... truncated."""
    if len(skeyid_e) >= length:
        return Expansion(skeyid_e[:length], ())
    return _expand(prf, skeyid_e, b"", length, first_input=b"\x00")


def _expand(prf: Prf, key: bytes, seed: bytes, length: int, first_input: bytes | None = None) -> Expansion:
    """K1 = prf(key, first_input or seed), Ki = prf(key, K(i-1) | seed), until `length` bytes."""
    blocks: list[PrfPlusBlock] = []
    previous = b""
    while sum(len(b.output) for b in blocks) < length:
        block_input = (first_input if first_input is not None and not blocks else previous + seed)
        previous = prf(key, block_input)
        blocks.append(PrfPlusBlock(len(blocks) + 1, block_input, previous))
    return Expansion(b"".join(b.output for b in blocks)[:length], tuple(blocks))


def phase1_iv(prf: Prf, g_xi: bytes, g_xr: bytes, block_size: int) -> bytes:
    """IV of the first encrypted phase 1 message: hash(g^xi | g^xr), truncated (appendix B)."""
    return digest(prf, g_xi + g_xr)[:block_size]


def phase2_iv(prf: Prf, last_phase1_block: bytes, message_id: bytes, block_size: int) -> bytes:
    """IV of a quick mode or informational exchange: hash(last phase 1 CBC block | M-ID) (appendix B)."""
    return digest(prf, last_phase1_block + message_id)[:block_size]


def hash_i_parts(g_xi: bytes, g_xr: bytes, cky_i: bytes, cky_r: bytes, sa_i_b: bytes, id_ii_b: bytes) -> Parts:
    """HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)  (§5)."""
    return [("g^xi", g_xi), ("g^xr", g_xr), ("CKY-I", cky_i), ("CKY-R", cky_r), ("SAi_b", sa_i_b), ("IDii_b", id_ii_b)]


def hash_r_parts(g_xi: bytes, g_xr: bytes, cky_i: bytes, cky_r: bytes, sa_i_b: bytes, id_ir_b: bytes) -> Parts:
    """HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)  (§5)."""
    return [("g^xr", g_xr), ("g^xi", g_xi), ("CKY-R", cky_r), ("CKY-I", cky_i), ("SAi_b", sa_i_b), ("IDir_b", id_ir_b)]


def phase1_keys(
    prf: Prf,
    ni: bytes,
    nr: bytes,
    g_xy: bytes,
    cky_i: bytes,
    cky_r: bytes,
    key_length: int,
    *,
    psk: bytes | None = None,
    g_xi: bytes = b"",
    g_xr: bytes = b"",
    block_size: int = 16,
) -> dict[str, bytes]:
    """Every phase 1 key from given inputs (what `ikelab keys ikev1` prints): SKEYID for a PSK, or
    for signatures when `psk` is None, its children, Ka, and the IV when both KE values are given."""
    skeyid = skeyid_psk(prf, psk, ni, nr) if psk is not None else skeyid_signature(prf, ni, nr, g_xy)
    children = skeyid_children(prf, skeyid, g_xy, cky_i, cky_r)
    keys = {"SKEYID": skeyid, "SKEYID_d": children.d.output, "SKEYID_a": children.a.output, "SKEYID_e": children.e.output}
    keys["Ka"] = encryption_key(prf, children.e.output, key_length).output
    if g_xi and g_xr:
        keys["IV"] = phase1_iv(prf, g_xi, g_xr, block_size)
    return keys


# --- quick mode and informational -----------------------------------------------------------


def quick_hash_1_parts(message_id: bytes, rest: bytes) -> Parts:
    """HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr])  (§5.5): everything after HASH,
    payload headers included, padding excluded. Informational exchanges use the same form (§5.7)."""
    return [("M-ID", message_id), ("payloads after HASH", rest)]


def quick_hash_2_parts(message_id: bytes, ni_b: bytes, rest: bytes) -> Parts:
    """HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])  (§5.5)."""
    return [("M-ID", message_id), ("Ni_b", ni_b), ("payloads after HASH", rest)]


def quick_hash_3_parts(message_id: bytes, ni_b: bytes, nr_b: bytes) -> Parts:
    """HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)  (§5.5)."""
    return [("0", b"\x00"), ("M-ID", message_id), ("Ni_b", ni_b), ("Nr_b", nr_b)]


def keymat_seed(protocol: int, spi: bytes, ni: bytes, nr: bytes, g_qm: bytes | None = None) -> Parts:
    """[g(qm)^xy |] protocol | SPI | Ni_b | Nr_b, with the SPI the receiving side chose (§5.5)."""
    parts: Parts = [("g(qm)^xy", g_qm)] if g_qm else []
    return parts + [("protocol", bytes([protocol])), ("SPI", spi), ("Ni_b", ni), ("Nr_b", nr)]


def keymat(prf: Prf, skeyid_d: bytes, seed: Parts, length: int) -> Expansion:
    """KEYMAT = K1 | K2 | ... with K1 = prf(SKEYID_d, seed), Ki = prf(SKEYID_d, K(i-1) | seed)  (§5.5)."""
    return _expand(prf, skeyid_d, joined(seed), length)
