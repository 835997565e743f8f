"""Just enough DER (X.690) for IKE: AlgorithmIdentifiers (RFC 7427) and Distinguished Names.

`cryptography` parses certificates, but not a bare AlgorithmIdentifier from an AUTH payload nor a
bare Name from an ID_DER_ASN1_DN payload; these few lines read and write the TLVs involved.
Every decoding error is a `DerError` with a one-line message, never an IndexError.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
SET = 0x31
OID = 0x06
NULL = 0x05
INTEGER = 0x02


class DerError(ValueError):
    """Bytes that are not the DER structure expected; str() says where and why."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    encoded: bytes  # the whole TLV, tag and length included


def encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + value


def encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not an object identifier: {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return encode(OID, bytes(body))


def encode_integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("negative INTEGERs are not needed here")
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def read(data: bytes, offset: int = 0, what: str = "DER value") -> tuple[Tlv, int]:
    """One TLV at `offset`; returns it and the offset after it."""
    if offset + 2 > len(data):
        raise DerError(f"{what}: truncated at byte {offset} (need a tag and a length)")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise DerError(f"{what}: multi-byte tags are not supported (byte {offset})")
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError(f"{what}: length with {count} length octets is not DER (byte {offset + 1})")
        if pos + count > len(data):
            raise DerError(f"{what}: truncated length at byte {pos}")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError(f"{what}: length {length} is not minimally encoded (byte {offset + 1})")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError(f"{what}: says {length} bytes at byte {offset}, only {len(data) - pos} remain")
    return Tlv(tag, data[pos:end], data[offset:end]), end


def read_all(data: bytes, what: str = "DER value") -> list[Tlv]:
    """The TLVs that exactly fill `data` (the contents of a SEQUENCE or SET)."""
    out, pos = [], 0
    while pos < len(data):
        tlv, pos = read(data, pos, what)
        out.append(tlv)
    return out


def read_one(data: bytes, tag: int, what: str) -> Tlv:
    """`data` must be exactly one TLV with `tag`."""
    tlv, end = read(data, 0, what)
    if tlv.tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    if end != len(data):
        raise DerError(f"{what}: {len(data) - end} bytes after the end")
    return tlv


def decode_oid(value: bytes) -> str:
    if not value or value[-1] & 0x80:
        raise DerError("object identifier: empty or truncated")
    arcs, arc = [], 0
    for i, b in enumerate(value):
        if arc == 0 and b == 0x80:
            raise DerError(f"object identifier: arc not minimally encoded (byte {i})")
        arc = (arc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(arc)
            arc = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_integer(value: bytes) -> int:
    if not value:
        raise DerError("INTEGER with no content octets")
    return int.from_bytes(value, "big", signed=True)
