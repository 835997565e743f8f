"""The engine decodes without trees (tree=False): the same messages and payloads as the full
decoder, and for malformed input the very same DecodeError."""

from __future__ import annotations

import pytest
from conftest import messages, run
from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.lessons import load_lesson
from ikelab.wire.errors import DecodeError
from ikelab.wire.ikev2 import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    Header,
    IdPayload,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorPayload,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)

SESSIONS = [run(seed=2), run(load_lesson("ikev2-certs"), seed=2), run(load_lesson("ikev2-rekey"), seed=2)]
SENT = [m for s in SESSIONS for m in messages(s)]


def outcome(decode, *args, **kwargs):
    try:
        return "ok", decode(*args, **kwargs)
    except DecodeError as e:
        return type(e).__name__, str(e), e.payload, e.field, e.offset


def message_of(result):
    return result if result[0] != "ok" else ("ok", result[1].message)


def payloads_of(result):
    return result if result[0] != "ok" else ("ok", result[1][0])


def inner_chain(event):
    return event.plaintext[: -(event.plaintext[-1] + 1)]


@pytest.mark.parametrize("event", SENT, ids=lambda m: f"{m.peer}-{m.exchange}-{'response' if m.is_response else 'request'}")
def test_quiet_decode_gives_the_same_message(event):
    full = decode_message(event.data)
    assert decode_message(event.data, tree=False).message == full.message
    assert decode_message(event.data, tree=False).tree is None
    if event.plaintext:
        first, initiator = full.message.payloads[-1].first_inner, full.message.header.is_initiator
        quiet = decode_payloads(inner_chain(event), first, sender_is_initiator=initiator, tree=False)
        assert quiet == (decode_payloads(inner_chain(event), first, sender_is_initiator=initiator)[0], [])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SENT), st.data())
def test_quiet_decode_fails_exactly_as_the_full_decoder(event, data):
    raw = bytearray(event.data)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    mangled = bytes(raw[:cut])
    assert message_of(outcome(decode_message, mangled, tree=False)) == message_of(outcome(decode_message, mangled))
    if event.plaintext:
        chain = bytearray(inner_chain(event))
        if chain:
            chain[data.draw(st.integers(0, len(chain) - 1))] = data.draw(st.integers(0, 255))
        first = data.draw(st.sampled_from([33, 35, 36, 37, 39, 40, 41, 44, 45]))
        args = (bytes(chain[: data.draw(st.integers(0, len(chain)))]), first)
        assert payloads_of(outcome(decode_payloads, *args, tree=False)) == payloads_of(outcome(decode_payloads, *args))


# One payload of each type the decoders know, several with fields the lessons never send (SPIs,
# TLV attributes, IPv6 selectors, unknown payloads), for the chains below.
EVERY_PAYLOAD = [
    ConfigPayload(1, [(1, bytes(4)), (3, b""), (0x7FFF, b"xy")]),
    DeletePayload(3, 4, [b"abcd", b"efgh"]),
    DeletePayload(1, 0, []),
    EapPayload(b"\x01\x02\x00\x05\x01"),
    CertPayload(4, b"certificate"),
    CertReqPayload(4, bytes(20)),
    VendorPayload(b"vendor"),
    UnknownPayload(200, b"zz"),
    NotifyPayload(16393, 3, b"1234", b"data"),
    NotifyPayload(16388, 1, bytes(8)),
    SaPayload([
        Proposal(1, 3, b"1234", [Transform(1, 12, 128, [(6, 7), (5, b"tlv")]), Transform(5, 0)]),
        Proposal(2, 1, b"", [Transform(1, 20, 256), Transform(2, 5), Transform(4, 14)]),
    ]),
    SaPayload([Proposal(1, 1, b"", [Transform(1, 12, None, [(14, b"\x00\x80")])])]),  # Key Length as TLV: refused
    TsPayload(True, [TrafficSelector.from_network("10.0.0.0/8"), TrafficSelector.from_network("2001:db8::/64", 6, (1, 9))]),
    IdPayload(False, 2, b"host"),
    AuthPayload(2, bytes(20)),
    KePayload(14, bytes(16)),
    NoncePayload(bytes(32)),
    NoncePayload(bytes(15)),  # too short, and below too long
    NoncePayload(bytes(257)),
    # Bodies of every known type cut short: (type, body) as UnknownPayload encodes them.
    *(UnknownPayload(ptype, body) for ptype in range(33, 49) for body in (b"", b"\x01", b"\x01\x00\x00")),
]


def single_changes(raw: bytes):
    """`raw` with each byte in turn off by one, with its top bit flipped, or set to 0, 2 or 3 (lengths,
    counts, critical bits, Last Substruc values), then `raw` cut at each length."""
    for at, byte in enumerate(raw):
        for value in {(byte + 1) % 256, (byte - 1) % 256, byte ^ 0x80, 0, 2, 3} - {byte}:
            yield raw[:at] + bytes([value]) + raw[at + 1 :]
    for cut in range(len(raw)):
        yield raw[:cut]


@pytest.mark.parametrize("payload", EVERY_PAYLOAD, ids=lambda p: type(p).__name__)
def test_quiet_decode_of_every_payload_type_fails_exactly_as_the_full_decoder(payload):
    for chain in ([payload], [payload, NoncePayload(bytes(16))], [VendorPayload(b"v"), payload]):
        first, data = encode_payloads(chain)
        for changed in single_changes(data):
            for first_type in (first, 46, 200):
                args = (changed, first_type)
                assert payloads_of(outcome(decode_payloads, *args, tree=False)) == payloads_of(outcome(decode_payloads, *args))


@pytest.mark.parametrize("fragment", [(35, 1, 3), (0, 2, 3), (35, 1, 1)], ids=str)
def test_quiet_decode_of_fragments_fails_exactly_as_the_full_decoder(fragment):
    first, number, total = fragment
    skf = EncryptedFragmentPayload(first, number, total, bytes(30))
    message = Message(Header(bytes(8), bytes(8), 0, 35, 8, 1), [VendorPayload(b"v"), skf])
    for changed in single_changes(encode_message(message)):
        assert message_of(outcome(decode_message, changed, tree=False)) == message_of(outcome(decode_message, changed))
