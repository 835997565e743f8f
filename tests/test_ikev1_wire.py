"""The ISAKMP codec: strongSwan's captures byte for byte, hypothesis round trips, strict errors.

The hypothesis strategies here are shared with the other test_ikev1_* modules.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import UDP, rdpcap
from test_wire_roundtrip import check_spans

from ikelab.wire.errors import DecodeError, UnsupportedVersion
from ikelab.wire.fields import Field
from ikelab.wire.isakmp import (
    CertPayload,
    CertReqPayload,
    DeletePayload,
    HashPayload,
    Header,
    IdPayload,
    KePayload,
    Message,
    NatDPayload,
    NatOaPayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    SigPayload,
    Transform,
    UnknownPayload,
    VendorPayload,
    decode_header,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ikelab.wire.isakmp_bodies import DECODERS
from ikelab.wire.isakmp_constants import ExchangeType, HeaderFlags, IdType, NotifyType, ProtocolId

VECTORS = Path(__file__).parent / "vectors" / "ikev1"
CAPTURES = ["ikev1-main-psk", "ikev1-aggr-psk"]
NON_ESP_MARKER = b"\x00\x00\x00\x00"


@cache
def ike_datagrams(name: str) -> tuple[bytes, ...]:
    """ISAKMP messages in capture order; on port 4500 the non-ESP marker is removed, ESP skipped."""
    out = []
    for packet in rdpcap(str(VECTORS / f"{name}.pcap")):
        udp = packet[UDP]
        data = bytes(udp.payload)
        if 4500 in (udp.sport, udp.dport):
            if not data.startswith(NON_ESP_MARKER):
                continue
            data = data[4:]
        out.append(data)
    return tuple(out)


# --- strongSwan's captures ------------------------------------------------------------------


def test_captures_hold_the_expected_exchanges():
    main = [decode_message(d).message for d in ike_datagrams("ikev1-main-psk")]
    assert [m.header.exchange for m in main] == [ExchangeType.IDENTITY_PROTECTION] * 6 + [ExchangeType.QUICK_MODE] * 3
    assert [m.summary() for m in main[:4]] == [
        "HDR, SA, VID, VID, VID, VID, VID",
        "HDR, SA, VID, VID, VID, VID",
        "HDR, KE, NONCE, NAT-D, NAT-D",
        "HDR, KE, NONCE, NAT-D, NAT-D",
    ]
    assert all(m.encrypted is not None for m in main[4:])
    aggressive = [decode_message(d).message for d in ike_datagrams("ikev1-aggr-psk")]
    assert aggressive[1].summary(sender_is_initiator=False) == "HDR, SA, KE, Nr, ID, VID, VID, VID, VID, NAT-D, NAT-D, HASH"
    assert aggressive[2].header.flags & HeaderFlags.ENCRYPTION  # strongSwan encrypts message 3


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_messages_reencode_byte_for_byte(name):
    for data in ike_datagrams(name):
        decoded = decode_message(data)
        check_spans(decoded.tree, data)
        assert encode_message(decoded.message) == data
        assert b"".join(decoded.raw) == data[28:] if decoded.message.encrypted is None else decoded.raw == []


def test_capture_sa_payload_fields():
    first = decode_message(ike_datagrams("ikev1-main-psk")[0])
    sa = first.message.find(SaPayload)
    (transform,) = sa.proposals[0].transforms
    assert sa.proposals[0].protocol == ProtocolId.ISAKMP
    assert transform.attributes == [(1, 7), (14, 128), (2, 4), (4, 14), (3, 1), (11, 1), (12, 15840)]
    node = first.tree.find("Transform #1")
    assert node.display == "AES_CBC-128, SHA2_256, MODP_2048, PRE_SHARED_KEY"
    assert node.find("Attribute GROUP_DESCRIPTION").display == "MODP_2048"
    vendors = [f.name for f in first.tree.children if f.name.startswith("Vendor")]
    assert "Vendor ID payload: RFC 3947 (NAT-T)" in vendors


def test_decrypted_contents_decode_with_padding_and_spans():
    """Main mode message 5 of the capture, decrypted with the keys strongSwan logged."""
    from ikelab.crypto.cipher import cipher

    data = ike_datagrams("ikev1-main-psk")[4]
    message = decode_message(data).message
    ka, iv = bytes.fromhex("1d22232d83763e4e1a5a78167e2cf586"), bytes.fromhex("e20162b3491a6064017a80599f9f99d0")
    plaintext = cipher(12, 128).decrypt(ka, iv, message.encrypted)
    chain = decode_payloads(plaintext, message.header.next_payload)
    assert [type(p) for p in chain.payloads] == [IdPayload, HashPayload, NotifyPayload]
    assert chain.payloads[0] == IdPayload(IdType.ID_FQDN, b"a.example")
    assert chain.payloads[2].notify_type == NotifyType.INITIAL_CONTACT and len(chain.payloads[2].spi) == 16
    assert chain.padding == bytes(15)
    check_spans(Field("plaintext", 0, len(plaintext), children=chain.fields), plaintext)
    assert chain.fields[-1].name == "Padding"


# --- round trips ----------------------------------------------------------------------------

small = st.binary(max_size=24)
attribute = st.tuples(st.integers(0, 0x7FFF), st.one_of(st.integers(0, 0xFFFF), small))
SPI_SIZES = {ProtocolId.ISAKMP: (0, 16), ProtocolId.IPSEC_AH: (4,), ProtocolId.IPSEC_ESP: (4,), ProtocolId.IPCOMP: (2, 4)}


@st.composite
def proposals(draw):
    count = draw(st.integers(1, 3))
    numbers = sorted(draw(st.lists(st.integers(0, 255), min_size=count, max_size=count)))
    out = []
    for number in numbers:
        protocol = draw(st.sampled_from([1, 2, 3, 4, 9]))
        spi = draw(st.binary(min_size=s, max_size=s)) if (s := draw(st.sampled_from(SPI_SIZES.get(protocol, (0, 3, 8))))) else b""
        transforms = draw(
            st.lists(st.builds(Transform, st.integers(0, 255), st.integers(0, 255), st.lists(attribute, max_size=4)), min_size=1, max_size=3)
        )
        out.append(Proposal(number, protocol, spi, transforms))
    return out


def _id_payload(draw) -> IdPayload:
    id_type = draw(st.sampled_from(list(IdType) + [200]))
    size = {1: 4, 4: 8, 7: 8, 5: 16, 6: 32, 8: 32}.get(id_type)
    data = draw(st.binary(min_size=size, max_size=size) if size else small)
    return IdPayload(id_type, data, draw(st.integers(0, 255)), draw(st.integers(0, 0xFFFF)))


@st.composite
def payloads(draw):
    kind = draw(st.integers(0, 13))
    if kind == 0:
        return SaPayload(draw(proposals()), 1, draw(st.sampled_from([0, 1, 8])))
    if kind == 1:
        return KePayload(draw(st.binary(min_size=1, max_size=64)))
    if kind == 2:
        return _id_payload(draw)
    if kind == 3:
        return CertPayload(draw(st.integers(0, 255)), draw(small))
    if kind == 4:
        return CertReqPayload(draw(st.integers(0, 255)), draw(small))
    if kind == 5:
        return HashPayload(draw(st.binary(min_size=1, max_size=64)))
    if kind == 6:
        return SigPayload(draw(small))
    if kind == 7:
        return NoncePayload(draw(st.binary(min_size=8, max_size=256)))
    if kind == 8:
        return NotifyPayload(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 255)), draw(st.binary(max_size=16)), draw(small), draw(st.sampled_from([0, 1])))
    if kind == 9:
        protocol = draw(st.sampled_from([1, 3, 7]))
        size = {1: 16, 3: 4}.get(protocol, draw(st.integers(0, 8)))
        return DeletePayload(protocol, size, draw(st.lists(st.binary(min_size=size, max_size=size), max_size=3)))
    if kind == 10:
        return VendorPayload(draw(small))
    if kind == 11:
        return NatDPayload(draw(st.binary(min_size=1, max_size=48)), draw(st.booleans()))
    if kind == 12:
        v6 = draw(st.booleans())
        return NatOaPayload(IdType.ID_IPV6_ADDR if v6 else IdType.ID_IPV4_ADDR, draw(st.binary(min_size=16 if v6 else 4, max_size=16 if v6 else 4)), draw(st.booleans()))
    unknown = st.integers(1, 255).filter(lambda t: t not in DECODERS and t not in (2, 3))
    return UnknownPayload(draw(unknown), draw(small))


headers = st.builds(
    Header,
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8),
    st.just(0),
    st.integers(0, 255),
    st.integers(0, 255).map(lambda f: f & ~HeaderFlags.ENCRYPTION),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=150, deadline=None)
@given(headers, st.lists(payloads(), max_size=5))
def test_message_round_trip(header, chain):
    message = Message(header, chain)
    data = encode_message(message)
    decoded = decode_message(data)
    assert decoded.message == message
    assert encode_message(decoded.message) == data
    assert [len(r) for r in decoded.raw] == [4 + len(p.encode_body()) for p in chain]
    check_spans(decoded.tree, data)


@settings(max_examples=75, deadline=None)
@given(st.lists(payloads(), min_size=1, max_size=4), st.integers(0, 15))
def test_decrypted_chain_round_trip(chain, padding):
    first, encoded = encode_payloads(chain)
    plaintext = encoded + bytes(padding)
    decoded = decode_payloads(plaintext, first, 28)
    assert decoded.payloads == chain and decoded.padding == bytes(padding)
    check_spans(Field("plaintext", 28, 28 + len(plaintext), children=decoded.fields), plaintext, 28)


@settings(max_examples=50, deadline=None)
@given(headers, st.binary(min_size=1, max_size=64))
def test_encrypted_message_carries_the_ciphertext_opaque(header, ciphertext):
    header.flags |= HeaderFlags.ENCRYPTION
    header.next_payload = 8
    data = encode_message(Message(header, [], ciphertext))
    decoded = decode_message(data)
    assert decoded.message.encrypted == ciphertext and decoded.message.payloads == []
    assert decoded.message.summary() == "HDR*, (encrypted)"
    check_spans(decoded.tree, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        decode_message(data)
    except DecodeError as e:
        assert 0 <= e.offset <= max(len(data), 28)


# --- strict errors --------------------------------------------------------------------------


def _message(*chain) -> bytes:
    return encode_message(Message(Header(b"I" * 8, bytes(8), 0, ExchangeType.IDENTITY_PROTECTION, 0, 0), list(chain)))


def _error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_message(data)
    return caught.value


def test_header_errors_name_field_and_offset():
    assert _error(b"\x01" * 27).field == "Header"
    data = bytearray(_message(KePayload(b"x")))
    data[27] += 1
    assert (_error(bytes(data)).field, _error(bytes(data)).offset) == ("Length", 24)
    data = bytearray(_message(KePayload(b"x")))
    data[17] = 0x20
    error = _error(bytes(data))
    assert isinstance(error, UnsupportedVersion) and error.major == 2
    assert decode_header(bytes(data)).major == 2  # the engine can still route it


def test_payload_length_past_the_end():
    data = bytearray(_message(KePayload(b"abcd")))
    data[31] = 200
    error = _error(bytes(data))
    assert (error.payload, error.field, error.offset) == ("Key Exchange payload", "Payload Length", 30)


def test_chain_announcing_a_missing_payload():
    data = bytearray(_message(KePayload(b"abcd")))
    data[28] = 10  # KE says a Nonce follows; nothing does
    error = _error(bytes(data))
    assert (error.payload, error.field, error.offset) == ("Key Exchange payload", "Next Payload", 28)


def test_trailing_bytes_after_the_chain_are_refused_in_the_clear():
    plain = _message(KePayload(b"abcd"))
    data = bytearray(plain + b"\x00\x00")
    data[24:28] = struct.pack("!I", len(data))
    assert "bytes follow" in str(_error(bytes(data)))


@pytest.mark.parametrize(
    "payload, field, reason",
    [
        (NoncePayload(b"short"), "Nonce Data", "8 to 256"),
        (IdPayload(IdType.ID_IPV4_ADDR, b"\x01\x02\x03"), "Identification Data", "needs 4 bytes"),
        (DeletePayload(ProtocolId.IPSEC_ESP, 3, [b"abc"]), "SPI Size", "must be 4"),
        (SaPayload([Proposal(1, ProtocolId.IPSEC_ESP, b"", [Transform(1, 12)])]), "SPI Size", "does not fit"),
        (SaPayload([Proposal(1, 1, b"", [Transform(1, 1)])], doi=0), "Domain of Interpretation", "DOI 0"),
        (SaPayload([Proposal(1, 1, b"", [Transform(1, 1)])], situation=2), "Situation", "not supported"),
        (SaPayload([Proposal(2, 1, b"", [Transform(1, 1)]), Proposal(1, 1, b"", [Transform(1, 1)])]), "Proposal #", "must not go down"),
        (SaPayload([Proposal(1, 1, b"", [])]), "# of Transforms", "at least one"),
        (NatOaPayload(IdType.ID_FQDN, b"abcd"), "ID Type", "NAT-OA carries"),
    ],
)
def test_payload_errors(payload, field, reason):
    error = _error(_message(payload))
    assert error.field == field and reason in error.reason


def test_transform_count_mismatch():
    body = bytearray(SaPayload([Proposal(1, 1, b"", [Transform(1, 1), Transform(2, 1)])]).encode_body())
    body[15] = 3  # "# of Transforms" (after DOI, situation and 7 proposal header bytes) says 3; two follow
    data = _message(UnknownPayload(1, bytes(body)))
    error = _error(data)
    assert error.field == "Next Payload" and "last transform (0) on transform 2 of 3" in error.reason


def test_proposal_substructure_at_top_level_is_refused():
    error = _error(_message(UnknownPayload(2, b"")))
    assert error.field == "Next Payload" and "inside an SA payload" in error.reason
