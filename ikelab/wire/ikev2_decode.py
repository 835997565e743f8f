"""Strict IKEv2 decoding with a byte span for every field (RFC 7296 §3, RFC 7383).

Every malformation raises DecodeError naming the payload, the field and the absolute offset, so
the engine can answer INVALID_SYNTAX and the TUI can point at the offending byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial

from .errors import DecodeError, UnsupportedCriticalPayload, UnsupportedVersion
from .fields import Field
from .ikev2_bodies import DECODERS
from .ikev2_constants import PAYLOAD_SHORT, CfgType, ExchangeType, NotifyType, PayloadType, name_of
from .ikev2_display import enum_display, flags_display, payload_type_display
from .ikev2_message import CRITICAL_BIT, HEADER_SIZE, RESERVED_FLAGS, RESPONSE_FLAG, Header, Message
from .ikev2_notes import EXCHANGE_NOTES, PAYLOAD_NOTES, notify_note
from .ikev2_payloads import (
    ConfigPayload,
    EncryptedFragmentPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    UnknownPayload,
    short_name,
)
from .ikev2_quiet import Refused
from .ikev2_quiet import decode_chain as decode_chain_quietly
from .reader import Reader


@dataclass
class DecodedMessage:
    message: Message
    tree: Field  # "IKEv2 message": a "Header" child, then one child per payload


LABELS = {
    PayloadType.NONCE: "Nonce",
    PayloadType.NOTIFY: "Notify",
    PayloadType.DELETE: "Delete",
    PayloadType.VENDOR: "Vendor ID",
}


CONTEXT_NAMES = {ptype: f"{LABELS.get(ptype, PayloadType(ptype).name)} payload" for ptype in DECODERS}


def _context_name(ptype: int) -> str:
    """Payload name for errors, known before the body is decoded: "KE payload"."""
    name = CONTEXT_NAMES.get(ptype)
    return f"Unknown payload (type {ptype})" if name is None else name


def _title(payload: Payload, base: str, short: str) -> str:
    """Payload name for the tree: "Nonce payload (Ni)", "Notify payload: COOKIE".

    `base` is its context name ("Nonce payload"), `short` its short name ("Ni").
    """
    match payload:
        case NoncePayload():
            return f"{base} ({short})"
        case NotifyPayload(notify_type=t):
            return f"{base}: {name_of(NotifyType, t)}"
        case ConfigPayload(cfg_type=t):
            return f"{base} ({name_of(CfgType, t)})"
        case EncryptedFragmentPayload(fragment_number=n, total_fragments=total):
            return f"{base} (fragment {n}/{total})"
    return base


# (tree title, short name) of the payloads whose names do not depend on their contents or sender
# (see _title and short_name), made once rather than for each payload decoded.
PLAIN_NAMES = {
    ptype: (CONTEXT_NAMES[ptype], PAYLOAD_SHORT[ptype])
    for ptype in DECODERS
    if ptype not in (PayloadType.NONCE, PayloadType.NOTIFY, PayloadType.CP, PayloadType.SKF)
}


# --- the payload chain ---

ENCRYPTED = (PayloadType.SK, PayloadType.SKF)


def _decode_chain(
    r: Reader, first_type: int, *, sender_is_initiator: bool, origin: tuple[str, int], inside_sk: bool
) -> list[Payload]:
    """Decode payloads from the cursor to the end of the data, starting with `first_type`.

    Each payload's Field goes to `r.out`. `origin` names the field that announced the first
    payload (for errors about the chain).
    """
    payloads: list[Payload] = []
    data, pos = r.data, r.pos
    next_type, (announcer, announcer_at) = first_type, origin
    while next_type:  # until NONE (0)
        if pos == len(data):
            raise DecodeError(
                f"announces a {_context_name(next_type)} but the message ends here",
                payload=announcer,
                field="Next Payload",
                offset=announcer_at,
            )
        if inside_sk and next_type in ENCRYPTED:
            raise DecodeError(
                "an encrypted payload cannot be nested inside encrypted content",
                payload=announcer,
                field="Next Payload",
                offset=announcer_at,
            )
        start = r.base + pos  # where this payload's Field starts
        payload, _, following = _decode_payload(r, next_type, sender_is_initiator)
        payloads.append(payload)
        pos = r.pos
        if next_type in ENCRYPTED:
            if pos != len(data):
                raise DecodeError(
                    f"the {_context_name(next_type)} must be the last payload (RFC 7296 §3.14) "
                    f"but {len(data) - pos} bytes follow it",
                    payload=_context_name(next_type),
                    field="Payload Length",
                    offset=start + 2,
                )
            break
        next_type, announcer, announcer_at = following, r.context, start
    if pos != len(data):
        raise DecodeError(
            f"is NONE (end of the chain) but {len(data) - pos} bytes follow",
            payload=announcer,
            field="Next Payload",
            offset=announcer_at,
        )
    return payloads


def _decode_payload(r: Reader, ptype: int, sender_is_initiator: bool) -> tuple[Payload, Field, int]:
    """One payload at the cursor: (payload, its Field, the Next Payload value)."""
    data, pos = r.data, r.pos
    r.context, r.limit = _context_name(ptype), len(data)
    group = r.open_group(r.context, note=PAYLOAD_NOTES.get(ptype, ""))
    next_type = r.u8(
        "Next Payload",
        show=payload_type_display,
        note="Type of the first payload inside the encrypted data."
        if ptype in ENCRYPTED
        else "Type of the payload after this one.",
    )
    flags = r.u8(
        "Critical",
        show=_critical_display,
        note="Critical bit (top bit): reject the message if this payload type is not understood.",
    )
    if flags & 0x7F:
        r.last.note += " The 7 reserved bits are nonzero here; they are ignored on receipt."
    length = r.u16("Payload Length", note="Bytes in this payload, the 4-byte generic header included.")
    if length < 4:
        raise r.error_at(r.last, f"length {length} is shorter than the 4-byte generic payload header")
    if length > len(data) - pos:
        raise r.error_at(r.last, f"length {length} runs past the end of the message ({len(data) - pos} bytes left)")
    critical = (flags & CRITICAL_BIT) != 0
    r.limit = pos + length
    decoder = DECODERS.get(ptype)
    if decoder is not None:
        payload = decoder(r, ptype, next_type)
        payload.critical = critical
    elif critical:
        raise UnsupportedCriticalPayload(
            f"payload type {ptype} is not understood and its critical bit is set, so the whole message "
            "must be rejected (RFC 7296 §2.5)",
            payload=r.context,
            field="Critical",
            offset=r.offset(pos + 1),
            payload_type=ptype,
        )
    else:
        payload = UnknownPayload(ptype, r.rest("Payload Data", note="Skipped (unknown, not critical)."))
        group.note = "Skipped (unknown, not critical): RFC 7296 §2.5 says ignore it."
    r.close_group(group)
    names = PLAIN_NAMES.get(ptype)
    if names is None:
        short = short_name(payload, sender_is_initiator=sender_is_initiator)
        names = _title(payload, r.context, short), short
    group.name, group.display = names
    if isinstance(payload, NotifyPayload):
        group.note = notify_note(payload.notify_type)
    return payload, group, next_type


def _critical_display(flags: object) -> str:
    return "critical" if flags & CRITICAL_BIT else "not critical"


# --- entry points ---

HEADER_NOTES = {
    "SPIi": "Initiator's SPI: chosen by the initiator to name this IKE SA.",
    "SPIr": "Responder's SPI: chosen by the responder; zero in the first IKE_SA_INIT request.",
    "Next Payload": "Type of the first payload after the header.",
    "Version": "Major version (high 4 bits) 2, minor version (low 4 bits) 0.",
    "Flags": "I = sent by the original initiator, R = this is a response, V = could speak a higher version.",
    "Message ID": "Request/response counter; IKE_SA_INIT is always 0, a response repeats its request's ID.",
    "Length": "Length of the whole message in bytes, header included.",
}

EXCHANGE_DISPLAY = enum_display(ExchangeType)  # made once, not for each header


def _version_display(version: object) -> str:
    return f"{version >> 4}.{version & 0xF}"


def _exchange_note(exchange: int) -> str:
    return EXCHANGE_NOTES.get(exchange, "Unknown exchange type.")


def _read_header(r: Reader) -> Header:
    group = r.open_group("Header", note="The fixed 28-byte IKE header (RFC 7296 §3.1).")
    spi_i = r.raw("SPIi", 8, note=HEADER_NOTES["SPIi"])
    spi_r = r.raw("SPIr", 8, note=HEADER_NOTES["SPIr"])
    next_type = r.u8("Next Payload", show=payload_type_display, note=HEADER_NOTES["Next Payload"])
    version = r.u8("Version", show=_version_display, note=HEADER_NOTES["Version"])
    exchange = r.u8("Exchange Type", show=EXCHANGE_DISPLAY, note=_exchange_note)
    flags = r.u8("Flags", show=flags_display, note=HEADER_NOTES["Flags"])
    if flags & RESERVED_FLAGS:
        r.last.note += " Reserved flag bits are set here; they are ignored on receipt."
    message_id = r.u32("Message ID", note=HEADER_NOTES["Message ID"])
    length = r.u32("Length", note=HEADER_NOTES["Length"])
    r.close_group(group)
    group.display = f"{name_of(ExchangeType, exchange)} {'response' if flags & RESPONSE_FLAG else 'request'}"
    return Header(spi_i, spi_r, next_type, exchange, flags, message_id, length, version >> 4, version & 0xF)



def _too_short(data: bytes) -> DecodeError:
    return DecodeError(
        f"message is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte IKE header",
        payload="IKE header",
        field="Header",
        offset=0,
    )


HEADER_FORMAT = struct.Struct("!8s8sBBBBII")  # the fields _read_header reads, in order


def decode_header(data: bytes) -> Header:
    """Only the 28-byte header, unchecked, so the engine can route (or answer) before a full parse.

    The same values as _read_header, without the fields of a tree nobody reads here."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    spi_i, spi_r, next_type, version, exchange, flags, message_id, length = HEADER_FORMAT.unpack_from(data)
    return Header(spi_i, spi_r, next_type, exchange, flags, message_id, length, version >> 4, version & 0xF)


def decode_message(data: bytes, *, tree: bool = True, header: Header | None = None) -> DecodedMessage:
    """Decode a whole IKEv2 datagram strictly; the payloads of SK stay opaque.

    tree=False: the message without its tree (None), the way the engine needs it: read by the
    quiet decoders (ikev2_quiet), and on any error read again with a Reader, which raises the
    exact DecodeError. `header`: what decode_header already made of this datagram (the engine
    routes by it first), taken as it is rather than read again."""
    if not tree:
        try:
            return DecodedMessage(_decode_message_quietly(data, header), None)
        except Exception:  # noqa: BLE001 - the full decode below raises the precise error
            pass
    return _decode_message(data)


def _decode_message_quietly(data: bytes, header: Header | None) -> Message:
    header = header or decode_header(data)
    if header.major != 2 or header.length != len(data):
        raise Refused("Version or Length")
    return Message(header, decode_chain_quietly(data, HEADER_SIZE, header.next_payload, inside_sk=False))


def _decode_message(data: bytes) -> DecodedMessage:
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    r = Reader(data, context="IKE header")  # for the header, then the payloads: r.out gets a Field for each
    header = _read_header(r)
    if header.major != 2:
        raise UnsupportedVersion(
            f"major version {header.major} is not 2",
            payload="IKE header",
            field="Version",
            offset=17,
            major=header.major,
        )
    if header.length != len(data):
        raise DecodeError(
            f"header says {header.length} bytes but the datagram has {len(data)}; RFC 7296 §3.1 requires them to match",
            payload="IKE header",
            field="Length",
            offset=24,
        )
    payloads = _decode_chain(
        r, header.next_payload, sender_is_initiator=header.is_initiator, origin=("IKE header", 16), inside_sk=False
    )
    message = Message(header, payloads)
    tree = Field(
        "IKEv2 message",
        0,
        len(data),
        show=partial(_summary, message),  # made when first read: the engine decodes without looking
        children=r.out,
        note=EXCHANGE_NOTES.get(header.exchange, ""),
    )
    return DecodedMessage(message, tree)


def _summary(message: Message, _value: object) -> str:
    return message.summary()


def decode_payloads(
    data: bytes, first_type: int, base_offset: int = 0, *, sender_is_initiator: bool = True, tree: bool = True,
    context: str = "SK payload",
) -> tuple[list[Payload], list[Field]]:
    """Decode a payload chain such as decrypted SK contents; spans are offsets in `data` plus base_offset.

    tree=False: no Fields ([]), as for decode_message. `context` names the payload that carried the
    chain in errors ("SKF payload" for a message reassembled from fragments)."""
    if not tree:
        try:
            return decode_chain_quietly(data, 0, first_type, inside_sk=True), []
        except Exception:  # noqa: BLE001 - the full decode below raises the precise error
            pass
    r = Reader(data, context=context, base=base_offset)
    payloads = _decode_chain(
        r, first_type, sender_is_initiator=sender_is_initiator, origin=(context, base_offset), inside_sk=True
    )
    return payloads, r.out
