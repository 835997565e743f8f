"""strongSwan proposal keywords ("aes128-sha256-modp2048") to algorithm tuples and back.

The rules follow strongSwan's proposal checks: for IKE a missing PRF is taken from the
integrity algorithms, and with AEAD ciphers the integrity algorithms are dropped.
Simplified on purpose: one proposal is all-AEAD or all-classic, and ESP with a classic
cipher needs an integrity algorithm (encryption-only ESP is not offered).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TypeVar

from ikelab.crypto.cipher import CIPHERS, ENCR_AES_GCM_16, Cipher
from ikelab.crypto.dh import DH_GROUPS, DhGroup
from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.crypto.integrity import INTEGRITY, Integrity
from ikelab.crypto.prf import PRFS, Prf

__all__ = ["ProposalError", "ProposalSpec", "UnknownAlgorithm", "parse_proposal"]

T = TypeVar("T")


class ProposalError(ValueError):
    """A proposal made of known keywords that do not form a usable proposal."""


@dataclass(frozen=True)
class ProposalSpec:
    encryption: tuple[Cipher, ...]
    integrity: tuple[Integrity, ...]
    prf: tuple[Prf, ...]
    dh: tuple[DhGroup, ...]
    esn: tuple[bool, ...]  # ESP only: True = extended sequence numbers

    def keywords(self) -> str:
        """Every algorithm as a strongSwan keyword, including ones the rules filled in."""
        return self._keywords

    def __hash__(self) -> int:
        # Remembered (frozen): specs key the caches of a handshake's path, and hashing the nested
        # algorithm dataclasses again costs more than the lookup. Equal specs hash alike, as before.
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.encryption, self.integrity, self.prf, self.dh, self.esn))

    @cached_property
    def _keywords(self) -> str:
        # Made once per spec (frozen): every proposal choice quotes the configured ones.
        words = [c.name for c in self.encryption]
        words += [i.name for i in self.integrity]
        words += [p.name for p in self.prf]
        words += [g.name for g in self.dh]
        words += ["esn" if e else "noesn" for e in self.esn]
        return "-".join(words)


ENCRYPTION_KEYWORDS: dict[str, Cipher] = {c.name: c for c in CIPHERS.values()} | {
    f"aes{bits}gcm128": CIPHERS[(ENCR_AES_GCM_16, bits)] for bits in (128, 192, 256)
}
INTEGRITY_KEYWORDS: dict[str, Integrity] = {i.name: i for i in INTEGRITY.values()} | {"sha": INTEGRITY[2]}
PRF_KEYWORDS: dict[str, Prf] = {p.name: p for p in PRFS.values()}
_DH: dict[str, DhGroup] = {g.name: g for g in DH_GROUPS.values()} | {"x25519": DH_GROUPS[31]}
_ESN = {"esn": True, "noesn": False}

# Prefix of a keyword -> what it was probably meant to be, for a helpful error.
_KINDS = (
    (("aes",), "encryption algorithm", ENCRYPTION_KEYWORDS),
    (("prf",), "PRF", PRF_KEYWORDS),
    (("sha", "md5"), "integrity algorithm", INTEGRITY_KEYWORDS),
    (("modp", "ecp", "curve", "x25519", "x448", "ffdhe"), "DH group", _DH),
)


# One spec object per text: both peers of a lesson usually configure the same proposals, and the
# caches of a handshake's path are keyed by specs. With one object each lookup finds its key by
# identity; with two equal ones it compares them field by field (the dataclass __eq__) every time.
# Sharing is safe: a spec is frozen and made of frozen algorithms.
@lru_cache(maxsize=256)
def parse_proposal(text: str, *, ike: bool) -> ProposalSpec:
    """Parse one proposal, e.g. "aes128-sha256-modp2048" (ike=True) or "aes128gcm16" (ESP)."""
    encryption: list[Cipher] = []
    integrity: list[Integrity] = []
    prfs: list[Prf] = []
    groups: list[DhGroup] = []
    esn: list[bool] = []
    for token in text.strip().lower().split("-"):
        if token in ENCRYPTION_KEYWORDS:
            _add(encryption, ENCRYPTION_KEYWORDS[token])
        elif token in INTEGRITY_KEYWORDS:
            _add(integrity, INTEGRITY_KEYWORDS[token])
        elif token in PRF_KEYWORDS:
            _add(prfs, PRF_KEYWORDS[token])
        elif token in _DH:
            _add(groups, _DH[token])
        elif token in _ESN:
            _add(esn, _ESN[token])
        else:
            raise _unknown(token, text)

    if not encryption:
        raise ProposalError(f"proposal {text!r} has no encryption algorithm (e.g. aes128)")
    is_aead = encryption[0].is_aead
    for other in encryption[1:]:
        if other.is_aead != is_aead:
            raise ProposalError(
                f"{other.name!r} and {encryption[0].name!r} in {text!r}: AEAD and non-AEAD "
                "encryption cannot share a proposal; put them in separate proposals"
            )

    if ike:
        if esn:
            raise ProposalError(f"'esn'/'noesn' in {text!r}: sequence numbers are ESP-only")
        if not prfs:
            # strongSwan: without a prf keyword each integrity algorithm brings its HMAC PRF.
            prfs = [PRF_KEYWORDS["prf" + i.name] for i in integrity]
        if not prfs:
            hint = "a PRF, e.g. prfsha256" if is_aead else "an integrity algorithm, e.g. sha256"
            raise ProposalError(f"IKE proposal {text!r} needs {hint}")
        if not is_aead and not integrity:
            raise ProposalError(f"IKE proposal {text!r} needs an integrity algorithm, e.g. sha256")
        if not groups:
            raise ProposalError(f"IKE proposal {text!r} needs a DH group, e.g. modp2048")
    else:
        if prfs:
            raise ProposalError(f"{prfs[0].name!r} in {text!r}: ESP proposals have no PRF")
        if not is_aead and not integrity:
            raise ProposalError(f"ESP proposal {text!r} needs an integrity algorithm, e.g. sha256")
        esn = esn or [False]
    if is_aead:
        integrity = []  # AEAD ciphers protect integrity themselves (strongSwan drops these)

    return ProposalSpec(tuple(encryption), tuple(integrity), tuple(prfs), tuple(groups), tuple(esn))


def _add(items: list[T], item: T) -> None:
    if item not in items:  # a repeated keyword adds nothing
        items.append(item)


def _unknown(token: str, text: str) -> Exception:
    if not token:
        return ProposalError(f"empty keyword in proposal {text!r} (doubled or trailing '-')")
    for prefixes, kind, table in _KINDS:
        if token.startswith(prefixes):
            return UnknownAlgorithm(kind, token, table)
    everything = [*ENCRYPTION_KEYWORDS, *INTEGRITY_KEYWORDS, *PRF_KEYWORDS, *_DH, *_ESN]
    return UnknownAlgorithm("proposal keyword", token, everything)
