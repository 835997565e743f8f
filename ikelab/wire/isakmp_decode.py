"""Strict ISAKMP decoding with a byte span for every field (RFC 2408 §3).

Every malformation raises DecodeError naming the payload, the field and the absolute offset, so
the engine can answer PAYLOAD-MALFORMED and the TUI can point at the offending byte. Encrypted
contents stay opaque here; once decrypted, `decode_payloads` reads the chain and its padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DecodeError, UnsupportedVersion
from .fields import Field
from .isakmp_bodies import DECODERS
from .isakmp_constants import VENDOR_IDS, HeaderFlags, NotifyType, PayloadType, exchange_label, name_of
from .isakmp_message import HEADER_SIZE, KNOWN_FLAGS, Header, Message
from .isakmp_notes import EXCHANGE_NOTES, PAYLOAD_NOTES, notify_note
from .isakmp_payloads import NotifyPayload, Payload, UnknownPayload, VendorPayload, short_name
from .reader import Reader

LABELS = {
    PayloadType.SA: "Security Association",
    PayloadType.KE: "Key Exchange",
    PayloadType.ID: "Identification",
    PayloadType.CERT: "Certificate",
    PayloadType.CR: "Certificate Request",
    PayloadType.HASH: "Hash",
    PayloadType.SIG: "Signature",
    PayloadType.NONCE: "Nonce",
    PayloadType.NOTIFICATION: "Notification",
    PayloadType.DELETE: "Delete",
    PayloadType.VENDOR_ID: "Vendor ID",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_D_DRAFT: "NAT-D (draft)",
    PayloadType.NAT_OA: "NAT-OA",
    PayloadType.NAT_OA_DRAFT: "NAT-OA (draft)",
}
CONTEXT_NAMES = {ptype: f"{label} payload" for ptype, label in LABELS.items()}
SUBSTRUCTURES = (PayloadType.PROPOSAL, PayloadType.TRANSFORM)


@dataclass
class DecodedMessage:
    message: Message
    tree: Field  # "ISAKMP message": a "Header" child, then one child per payload (or the encrypted data)
    raw: list[bytes]  # each payload's bytes, generic header included: what HASH_I and HASH(1) cover


@dataclass
class DecodedChain:
    payloads: list[Payload]
    fields: list[Field]
    raw: list[bytes]
    padding: bytes  # what followed the last payload (decrypted contents only)


def _context_name(ptype: int) -> str:
    name = CONTEXT_NAMES.get(ptype)
    return f"Unknown payload (type {ptype})" if name is None else name


def payload_type_display(value: object) -> str:
    label = LABELS.get(value) or name_of(PayloadType, value)
    return f"{label} ({value})"


def _title(payload: Payload) -> str:
    base = _context_name(payload.payload_type)
    if isinstance(payload, NotifyPayload):
        return f"{base}: {name_of(NotifyType, payload.notify_type)}"
    if isinstance(payload, VendorPayload) and payload.data in VENDOR_IDS:
        return f"{base}: {VENDOR_IDS[payload.data]}"
    return base


def _decode_chain(data: bytes, pos: int, first_type: int, *, base: int, origin: tuple[str, int], padded: bool) -> DecodedChain:
    """Payloads from `pos` on, starting with `first_type`; `origin` names what announced the first one."""
    payloads: list[Payload] = []
    raw: list[bytes] = []
    r = Reader(data, context="", base=base, pos=pos)
    next_type, (announcer, announcer_at) = first_type, origin
    while next_type != PayloadType.NONE:
        if pos == len(data):
            raise DecodeError(
                f"announces a {_context_name(next_type)} but the message ends here",
                payload=announcer,
                field="Next Payload",
                offset=announcer_at,
            )
        if next_type in SUBSTRUCTURES:
            raise DecodeError(
                f"announces a {name_of(PayloadType, next_type)}, which may only appear inside an SA payload",
                payload=announcer,
                field="Next Payload",
                offset=announcer_at,
            )
        payload, field, following = _decode_payload(r, next_type)
        payloads.append(payload)
        raw.append(data[pos : r.pos])
        pos = r.pos
        next_type, announcer, announcer_at = following, _context_name(next_type), field.start
    fields = r.out
    padding = data[pos:]
    if padding and not padded:
        raise DecodeError(
            f"is NONE (end of the chain) but {len(padding)} bytes follow",
            payload=announcer,
            field="Next Payload",
            offset=announcer_at,
        )
    if padding:
        note = "Fills the last cipher block; not covered by any HASH (RFC 2409 §5.3). Sent as zeros."
        fields.append(Field("Padding", base + pos, base + len(data), padding, f"{len(padding)} bytes", note))
    return DecodedChain(payloads, fields, raw, padding)


def _decode_payload(r: Reader, ptype: int) -> tuple[Payload, Field, int]:
    """One payload at the cursor: (payload, its Field, the Next Payload value)."""
    data, pos = r.data, r.pos
    r.context, r.limit = _context_name(ptype), len(data)
    group = r.open_group(r.context, note=PAYLOAD_NOTES.get(ptype, ""))
    next_type = r.u8("Next Payload", show=payload_type_display, note="Type of the payload after this one.")
    r.reserved(1)
    length = r.u16("Payload Length", note="Bytes in this payload, the 4-byte generic header included.")
    if length < 4:
        raise r.error_at(r.last, f"length {length} is shorter than the 4-byte generic payload header")
    if length > len(data) - pos:
        raise r.error_at(r.last, f"length {length} runs past the end of the message ({len(data) - pos} bytes left)")
    r.limit = pos + length
    decoder = DECODERS.get(ptype)
    if decoder is not None:
        payload = decoder(r, ptype)
    else:
        payload = UnknownPayload(ptype, r.rest("Payload Data", note="Not understood by ikelab."))
        group.note = "A payload type ikelab does not know; RFC 2408 §5.2 answers INVALID-PAYLOAD-TYPE."
    r.close_group(group)
    group.name = _title(payload)
    if isinstance(payload, NotifyPayload):
        group.note = notify_note(payload.notify_type)
    group.display = short_name(payload)
    return payload, group, next_type


# --- entry points ---

HEADER_NOTES = {
    "Initiator Cookie": "Chosen by the initiator to name this ISAKMP SA (IKEv2 calls it SPIi).",
    "Responder Cookie": "Chosen by the responder; zero in the very first message.",
    "Next Payload": "Type of the first payload after the header (inside the encryption when E is set).",
    "Version": "Major version (high 4 bits) 1, minor version (low 4 bits) 0.",
    "Flags": "E = the payloads are encrypted, C = commit, A = authentication only.",
    "Message ID": "0 in phase 1; a random value names each quick mode and informational exchange.",
    "Length": "Length of the whole message in bytes, header included.",
}


def flags_display(value: object) -> str:
    names = [n for flag, n in ((HeaderFlags.ENCRYPTION, "E"), (HeaderFlags.COMMIT, "C"), (HeaderFlags.AUTHENTICATION_ONLY, "A")) if value & flag]
    return ", ".join(names) or "none"


def _read_header(r: Reader) -> Header:
    group = r.open_group("Header", note="The fixed 28-byte ISAKMP header (RFC 2408 §3.1).")
    cky_i = r.raw("Initiator Cookie", 8, note=HEADER_NOTES["Initiator Cookie"])
    cky_r = r.raw("Responder Cookie", 8, note=HEADER_NOTES["Responder Cookie"])
    next_type = r.u8("Next Payload", show=payload_type_display, note=HEADER_NOTES["Next Payload"])
    version = r.u8("Version", show=lambda v: f"{v >> 4}.{v & 0xF}", note=HEADER_NOTES["Version"])
    exchange = r.u8("Exchange Type", show=lambda v: f"{exchange_label(v)} ({v})")
    r.last.note = EXCHANGE_NOTES.get(exchange, "Unknown exchange type.")
    flags = r.u8("Flags", show=flags_display, note=HEADER_NOTES["Flags"])
    if flags & ~KNOWN_FLAGS:
        r.last.note += " Undefined flag bits are set here."
    message_id = r.u32("Message ID", show=lambda v: f"0x{v:08x}", note=HEADER_NOTES["Message ID"])
    length = r.u32("Length", note=HEADER_NOTES["Length"])
    r.close_group(group)
    group.display = exchange_label(exchange) + (", encrypted" if flags & HeaderFlags.ENCRYPTION else "")
    return Header(cky_i, cky_r, next_type, exchange, flags, message_id, length, version >> 4, version & 0xF)


def _too_short(data: bytes) -> DecodeError:
    return DecodeError(
        f"message is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte ISAKMP header",
        payload="ISAKMP header",
        field="Header",
        offset=0,
    )


def decode_header(data: bytes) -> Header:
    """Only the 28-byte header, unchecked, so the engine can route (or answer) before a full parse."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    return _read_header(Reader(data, context="ISAKMP header"))


def decode_message(data: bytes) -> DecodedMessage:
    """Decode a whole ISAKMP datagram strictly; encrypted contents stay opaque."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    r = Reader(data, context="ISAKMP header")
    header = _read_header(r)
    if header.major != 1:
        raise UnsupportedVersion(f"major version {header.major} is not 1", payload="ISAKMP header", field="Version", offset=17, major=header.major)
    if header.length != len(data):
        raise DecodeError(
            f"header says {header.length} bytes but the datagram has {len(data)}; RFC 2408 §3.1 requires them to match",
            payload="ISAKMP header",
            field="Length",
            offset=24,
        )
    if header.encrypted:
        if len(data) == HEADER_SIZE:
            raise DecodeError("the E flag is set but no encrypted data follows", payload="ISAKMP header", field="Flags", offset=19)
        body = data[HEADER_SIZE:]
        note = f"The payloads from {payload_type_display(header.next_payload)} on, and padding, encrypted in CBC mode."
        fields = [Field("Encrypted Data", HEADER_SIZE, len(data), body, f"{len(body)} bytes", note)]
        message, raw = Message(header, [], body), []
    else:
        chain = _decode_chain(data, HEADER_SIZE, header.next_payload, base=0, origin=("ISAKMP header", 16), padded=False)
        message, fields, raw = Message(header, chain.payloads), chain.fields, chain.raw
    tree = Field("ISAKMP message", 0, len(data), display=message.summary(), children=r.out + fields, note=EXCHANGE_NOTES.get(header.exchange, ""))
    return DecodedMessage(message, tree, raw)


def decode_payloads(data: bytes, first_type: int, base_offset: int = 0) -> DecodedChain:
    """Decode decrypted contents: the payload chain, then padding. Spans are offsets in `data` + base_offset."""
    return _decode_chain(data, 0, first_type, base=base_offset, origin=("ISAKMP header", 16), padded=True)
