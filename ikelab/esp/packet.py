"""ESP packets (RFC 4303) in tunnel mode: AES-CBC with HMAC (RFC 3602, RFC 4868) or AES-GCM (RFC 4106).

Pure bytes in, bytes out. An `OutboundSa` turns inner IP packets into ESP packets (the payload of IP
protocol 50, or of UDP port 4500 behind a NAT); an `InboundSa` checks and opens them. Per-SA work
(key schedules, HMAC keys) is done once at construction, because a datapath calls these per packet.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hmac import compare_digest
from typing import NoReturn

from cryptography.exceptions import InvalidTag

from ikelab.crypto.cipher import IntegrityError, KeyedCipher
from ikelab.crypto.integrity import KeyedIntegrity
from ikelab.esp.replay import ReplayWindow
from ikelab.esp.sa import EspSa

NEXT_HEADER_IPV4 = 4
NEXT_HEADER_IPV6 = 41
NEXT_HEADER_NONE = 59  # a dummy packet for traffic flow confidentiality (RFC 4303 §2.6)
MAX_SEQUENCE_NUMBER = 2**32 - 1
HEADER_LENGTH = 8  # SPI | sequence number
_RANDOM_POOL = 4096  # bytes of randomness fetched at once for CBC IVs

_U32 = struct.Struct("!I")
_COUNTER_IV = struct.Struct("!Q")
_PADDING = bytes(range(1, 256))  # the default padding contents: 1, 2, 3, ... (RFC 4303 §2.4)


class EspError(ValueError):
    """An ESP packet could not be built or was refused; the message says why."""


class IntegrityFailure(EspError):
    """The ICV did not verify: the packet was altered, or the keys differ."""


class ReplayedPacket(EspError):
    """The sequence number was already seen, or is too old for the replay window."""


class MalformedPacket(EspError):
    """The bytes do not form a valid packet (length, alignment, padding, next header)."""


class WrongSpi(EspError):
    """The packet belongs to another SA: the datapath dispatched it to the wrong one."""


class SequenceNumberExhausted(EspError):
    """All 2^32-1 sequence numbers are used: the Child SA must be rekeyed (RFC 4303 §3.3.3)."""


@dataclass
class SaCounters:
    packets: int = 0  # packets sent, or accepted
    bytes: int = 0  # bytes of inner IP packets (what SA byte lifetimes measure), not of ESP
    replay_drops: int = 0
    integrity_failures: int = 0
    malformed: int = 0


def _keyed(sa: EspSa) -> tuple[KeyedCipher, KeyedIntegrity | None]:
    if sa.esn:
        raise ValueError(f"ESP SA {sa.spi.hex()}: extended sequence numbers are not supported")
    if sa.cipher.is_aead and sa.integrity is not None:
        raise ValueError(
            f"ESP SA {sa.spi.hex()}: {sa.cipher.description} takes no separate integrity"
        )
    if not sa.cipher.is_aead and sa.integrity is None:
        # Encryption without integrity invites padding-oracle attacks (RFC 8221 §5).
        raise ValueError(
            f"ESP SA {sa.spi.hex()}: {sa.cipher.description} needs an integrity algorithm"
        )
    if len(sa.spi) != 4 or sa.spi == bytes(4):
        raise ValueError(
            f"an ESP SPI is 4 bytes and not zero (RFC 4303 §2.1), got {sa.spi.hex()!r}"
        )
    mac = KeyedIntegrity(sa.integrity, sa.integrity_key) if sa.integrity else None
    return KeyedCipher(sa.cipher, sa.encryption_key), mac


class OutboundSa:
    """Builds the ESP packets of one outbound SA. Keep one for the SA's whole life: a second one
    would start again at sequence number 1 (and, for GCM, reuse IVs).

    `iv_source(n)` gives n bytes of IV. By default CBC takes random IVs (RFC 3602 §2.1 needs them
    unpredictable) and GCM uses the sequence number, which never repeats within an SA, as RFC 4106
    §3.1 suggests: random 8-byte GCM IVs could collide long before 2^32 packets.
    """

    def __init__(self, sa: EspSa, iv_source: Callable[[int], bytes] | None = None) -> None:
        self.sa = sa
        self.counters = SaCounters()
        self.seq = 0  # the last sequence number sent; the first packet carries 1 (RFC 4303 §3.3.3)
        self._cipher, self._mac = _keyed(sa)
        self._spi = sa.spi
        self._align = sa.cipher.block_size  # 16 for CBC; 4 for GCM, the ESP minimum
        iv_length = sa.cipher.iv_length
        self._iv_source = iv_source
        if iv_source is not None:
            self._iv_for: Callable[[int], bytes] = lambda seq: iv_source(iv_length)
        elif sa.cipher.is_aead:
            self._iv_for = _COUNTER_IV.pack
        else:
            self._iv_for = lambda seq: os.urandom(iv_length)
        # Per packet only lookups remain: padding and trailer for every pad length, per next header.
        self._trailers: dict[int, tuple[bytes, ...]] = {}
        self._by_version = {4: self._trailer_table(NEXT_HEADER_IPV4), 6: self._trailer_table(NEXT_HEADER_IPV6)}
        self._random_pool, self._random_used = b"", 0  # os.urandom bytes for CBC IVs, used once each

    def _trailer_table(self, next_header: int) -> tuple[bytes, ...]:
        table = self._trailers.get(next_header)
        if table is None:
            table = tuple(_PADDING[:pad] + bytes((pad, next_header)) for pad in range(self._align))
            self._trailers[next_header] = table
        return table

    def encapsulate(self, inner_ip_packet: bytes, next_header: int | None = None) -> bytes:
        """The ESP packet SPI | Seq | IV | ciphertext | ICV carrying `inner_ip_packet`.

        The next header is 4 or 41 from the packet's version nibble (tunnel mode); pass it to
        carry something else, e.g. ICMP in transport mode (RFC 3602 §4 cases 5 and 6).
        """
        if next_header is None:
            version = inner_ip_packet[0] >> 4 if inner_ip_packet else None
            if version == 4:
                next_header = NEXT_HEADER_IPV4
            elif version == 6:
                next_header = NEXT_HEADER_IPV6
            else:
                self.counters.malformed += 1
                start = inner_ip_packet[:1].hex() or "nothing"
                raise MalformedPacket(f"inner packet is not IPv4 or IPv6: it starts with {start}")
        seq = self.seq + 1
        if seq > MAX_SEQUENCE_NUMBER:
            raise SequenceNumberExhausted(
                f"ESP SA {self._spi.hex()} has sent {MAX_SEQUENCE_NUMBER} packets: rekey it"
            )
        self.seq = seq
        length = len(inner_ip_packet)
        trailer = (self._trailers.get(next_header) or self._trailer_table(next_header))[
            -(length + 2) % self._align
        ]
        counters = self.counters
        counters.packets += 1
        counters.bytes += length
        header = self._spi + _U32.pack(seq)
        if self._mac is None:  # AES-GCM: the header is authenticated as AAD (RFC 4106 §5)
            iv = self._iv_for(seq)
            return header + iv + self._cipher.encrypt(iv, inner_ip_packet + trailer, header)
        if self._iv_source is None:  # the fast path: one OpenSSL call makes IV and ciphertext
            # A random block first: the context turns it into the IV (encrypt_with_fresh_iv).
            offset = self._random_used
            if offset + 16 > len(self._random_pool):
                self._random_pool, offset = os.urandom(_RANDOM_POOL), 0
            self._random_used = offset + 16
            block = self._random_pool[offset : offset + 16]
            body = header + self._cipher.cbc_stream_encrypt(block + inner_ip_packet + trailer)
        else:
            iv = self._iv_for(seq)
            body = header + iv + self._cipher.encrypt(iv, inner_ip_packet + trailer)
        return body + self._mac.compute(body)  # the ICV covers SPI to ciphertext (RFC 4303 §3.3.4)

    def encapsulate_batch(self, packets: Sequence[bytes]) -> list[bytes]:
        """`encapsulate` for a batch of tunnel-mode packets, the datapath's fast path: the same
        ESP packets, sequence numbers and counters as encapsulating each in turn, except that a
        packet `encapsulate` would refuse is left out instead of raising. The loop keeps all it
        needs in local variables and calls OpenSSL directly: no Python call per packet."""
        if self._iv_source is not None or self.seq + len(packets) > MAX_SEQUENCE_NUMBER:
            return self._encapsulate_each(packets)
        out: list[bytes] = []
        append = out.append
        spi, pack, seq, length_sum = self._spi, _U32.pack, self.seq, 0
        by_version = self._by_version
        align_mask = self._align - 1  # 16 or 4: -(n + 2) & mask is the pad length
        malformed = 0
        if self._mac is None:
            encrypt, salt, pack_iv = self._cipher.aead.encrypt, self._cipher.salt, _COUNTER_IV.pack
            for packet in packets:
                trailers = by_version.get(packet[0] >> 4) if packet else None
                if trailers is None:
                    malformed += 1
                    continue
                seq += 1
                header = spi + pack(seq)
                iv = pack_iv(seq)
                append(header + iv + encrypt(salt + iv, packet + trailers[-(len(packet) + 2) & align_mask], header))
                length_sum += len(packet)
        else:
            stream, template, icv_length = self._cipher.cbc_stream_encrypt, self._mac.template, self._mac.icv_length
            join = b"".join
            # Random blocks from a pool: one system call per 256 packets, not one per packet.
            randomness, offset = self._random_pool, self._random_used
            if len(randomness) - offset < 16 * len(packets):
                randomness, offset = os.urandom(max(_RANDOM_POOL, 16 * len(packets))), 0
            for packet in packets:
                trailers = by_version.get(packet[0] >> 4) if packet else None
                if trailers is None:
                    malformed += 1
                    continue
                seq += 1
                # A random block first: the context turns it into the IV (encrypt_with_fresh_iv).
                block = randomness[offset : offset + 16]
                offset += 16
                body = spi + pack(seq) + stream(join((block, packet, trailers[-(len(packet) + 2) & align_mask])))
                mac = template()
                mac.update(body)
                append(body + mac.finalize()[:icv_length])
                length_sum += len(packet)
            self._random_pool, self._random_used = randomness, offset
        counters = self.counters
        counters.packets += seq - self.seq
        counters.bytes += length_sum
        counters.malformed += malformed
        self.seq = seq
        return out

    def _encapsulate_each(self, packets: Sequence[bytes]) -> list[bytes]:
        out = []
        for packet in packets:
            try:
                out.append(self.encapsulate(packet))
            except EspError:
                pass
        return out


class InboundSa:
    """Checks and opens the ESP packets of one inbound SA, in the order of RFC 4303 §3.4:
    SPI, replay window, ICV, then (only for authentic packets) window update, decryption, padding."""

    def __init__(self, sa: EspSa, replay_window: int = 64) -> None:
        self.sa = sa
        self.counters = SaCounters()
        self.replay_window = ReplayWindow(replay_window)
        self._cipher, self._mac = _keyed(sa)
        self._spi = sa.spi
        self._iv_end = HEADER_LENGTH + sa.cipher.iv_length
        self._icv_length = self._mac.icv_length if self._mac else sa.cipher.icv_length
        self._align = sa.cipher.block_size
        # At least one aligned block, to hold pad length and next header.
        self._min_length = self._iv_end + self._align + self._icv_length

    def decapsulate(self, esp_packet: bytes) -> bytes:
        """The inner IP packet; empty for a dummy packet (next header 59), which the caller drops.

        Raises WrongSpi, MalformedPacket, ReplayedPacket or IntegrityFailure, and counts the last
        three in `counters`.
        """
        length = len(esp_packet)
        if length < HEADER_LENGTH:
            self._malformed(f"{length} bytes cannot hold the ESP header")
        if esp_packet[:4] != self._spi:
            raise WrongSpi(f"SPI {bytes(esp_packet[:4]).hex()} is not this SA's {self._spi.hex()}")
        if length < self._min_length:
            self._malformed(
                f"{length} bytes is shorter than the shortest packet ({self._min_length})"
            )
        icv_start = length - self._icv_length
        if (icv_start - self._iv_end) % self._align:
            self._malformed(
                f"{icv_start - self._iv_end} bytes of ciphertext are not a multiple of {self._align}"
            )
        seq = _U32.unpack_from(esp_packet, 4)[0]
        window = self.replay_window
        if seq <= window.top and not window.check(seq):
            self.counters.replay_drops += 1
            raise ReplayedPacket(f"ESP SA {self._spi.hex()}: {window.explain(seq)}")
        view = memoryview(esp_packet)
        if self._mac is None:
            try:
                plaintext = self._cipher.decrypt(
                    view[HEADER_LENGTH : self._iv_end], view[self._iv_end :], view[:HEADER_LENGTH]
                )
            except IntegrityError:
                self._integrity_failure(seq)
        else:
            if not self._mac.verify(view[:icv_start], esp_packet[icv_start:]):
                self._integrity_failure(seq)
            plaintext = self._cipher.decrypt_iv_prefixed(view[HEADER_LENGTH:icv_start])
        window.update(seq)  # only now: a forged packet must not move the window
        # Unpadding (RFC 4303 §2.4), inline: this runs for every packet.
        pad = plaintext[-2]
        end = len(plaintext) - 2 - pad
        if end < 0:
            self._malformed(f"pad length {pad} exceeds the {len(plaintext)}-byte plaintext")
        if pad and plaintext[end:-2] != _PADDING[:pad]:
            self._malformed(f"padding {plaintext[end:-2].hex()} is not 1, 2, 3, ... {pad}")
        next_header = plaintext[-1]
        if next_header == NEXT_HEADER_IPV4:
            version = 4
        elif next_header == NEXT_HEADER_IPV6:
            version = 6
        elif next_header == NEXT_HEADER_NONE:
            self.counters.packets += 1
            return b""
        else:
            self._malformed(
                f"next header {next_header} is not IPv4 (4) or IPv6 (41): not tunnel mode"
            )
        if end == 0 or plaintext[0] >> 4 != version:
            self._malformed(f"next header {next_header} but the inner packet is not IPv{version}")
        counters = self.counters
        counters.packets += 1
        counters.bytes += end
        return plaintext[:end]

    def decapsulate_batch(self, packets: Sequence[bytes]) -> list[bytes]:
        """`decapsulate` for a batch of packets, the datapath's fast path: the inner packets of
        those it accepts, in order, with the same window and counters as decapsulating each in
        turn. Refused packets and dummy packets are left out instead of raising (and counted as
        `decapsulate` counts them). The loop keeps its state in local variables and calls OpenSSL
        directly; any packet off the common path (replayed, forged, malformed, dummy, another
        SPI) goes through `decapsulate` itself, so there is one definition of what is refused."""
        out: list[bytes] = []
        append = out.append
        window = self.replay_window
        top, bitmap, size, window_mask = window.top, window.bitmap, window.size, window.mask
        spi, unpack_from, padding = self._spi, _U32.unpack_from, _PADDING
        min_length, icv_length, iv_end = self._min_length, self._icv_length, self._iv_end
        align_mask = self._align - 1
        aead = self._mac is None
        if aead:
            decrypt, salt = self._cipher.aead.decrypt, self._cipher.salt
            skip = 0  # the plaintext starts at once
        else:
            stream, template = self._cipher.cbc_stream_decrypt, self._mac.template
            skip = 16  # the IV's block of the stream output
        accepted = length_sum = 0
        for esp in packets:
            length = len(esp)
            icv_start = length - icv_length
            plaintext = None
            if length >= min_length and esp[:4] == spi and not (icv_start - iv_end) & align_mask:
                seq = unpack_from(esp, 4)[0]
                offset = top - seq
                if seq > top or (seq and offset < size and not (bitmap >> offset) & 1):
                    view = memoryview(esp)
                    if aead:
                        try:
                            plaintext = decrypt(salt + esp[8:iv_end], view[iv_end:], esp[:8])
                        except InvalidTag:
                            pass
                    else:
                        mac = template()
                        mac.update(view[:icv_start])
                        if compare_digest(mac.finalize()[:icv_length], esp[icv_start:]):
                            plaintext = stream(view[8:icv_start])
            if plaintext is not None:
                pad = plaintext[-2]
                end = len(plaintext) - 2 - pad
                next_header = plaintext[-1]
                if (
                    end > skip
                    and (not pad or plaintext[end:-2] == padding[:pad])
                    and (
                        (next_header == NEXT_HEADER_IPV4 and plaintext[skip] >> 4 == 4)
                        or (next_header == NEXT_HEADER_IPV6 and plaintext[skip] >> 4 == 6)
                    )
                ):
                    if seq > top:
                        shift = seq - top
                        bitmap = ((bitmap << shift) | 1) & window_mask if shift < size else 1
                        top = seq
                    else:
                        bitmap |= 1 << offset
                    accepted += 1
                    length_sum += end - skip
                    append(plaintext[skip:end])
                    continue
            # Off the common path: let decapsulate decide, and count, with the window up to date.
            window.top, window.bitmap = top, bitmap
            try:
                inner = self.decapsulate(esp)
                if inner:
                    append(inner)
            except EspError:
                pass
            top, bitmap = window.top, window.bitmap
        window.top, window.bitmap = top, bitmap
        counters = self.counters
        counters.packets += accepted
        counters.bytes += length_sum
        return out

    def _malformed(self, why: str) -> NoReturn:
        self.counters.malformed += 1
        raise MalformedPacket(f"ESP SA {self._spi.hex()}: {why}")

    def _integrity_failure(self, seq: int) -> NoReturn:
        self.counters.integrity_failures += 1
        raise IntegrityFailure(f"ESP SA {self._spi.hex()}: ICV of packet {seq} does not verify")
