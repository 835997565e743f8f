"""Malformed input: truncation, fuzzing, and the exact errors for crafted defects."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_wire_captures import CAPTURES, ike_datagrams
from test_wire_roundtrip import check_spans

from ikelab.wire.errors import DecodeError, UnsupportedCriticalPayload, UnsupportedVersion
from ikelab.wire.ikev2 import (
    DeletePayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    decode_header,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ikelab.wire.ikev2_constants import ExchangeType, HeaderFlags, NotifyType, PayloadType, ProtocolId

IKE_SA_INIT_REQUESTS = [ike_datagrams(name)[0] for name in CAPTURES]
CERTREQ_RESPONSE = ike_datagrams("ikev2-cert")[1]
REAL = IKE_SA_INIT_REQUESTS + [CERTREQ_RESPONSE]
REAL_IDS = [f"{name} IKE_SA_INIT request" for name in CAPTURES] + ["ikev2-cert IKE_SA_INIT response"]


def encode(*payloads: Payload) -> bytes:
    header = Header(b"I" * 8, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlags.INITIATOR, 0)
    return encode_message(Message(header, list(payloads)))


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def with_length(data: bytes) -> bytes:
    """Make the header's Length match the datagram, so the payload checks are reached."""
    return patched(data, 24, struct.pack("!I", len(data)))


def error_for(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_message(data)
    return info.value


SA = SaPayload([Proposal(1, ProtocolId.IKE, b"", [Transform(1, 12, 128), Transform(2, 5), Transform(4, 14)])])


# --- truncation and fuzzing ---


@pytest.mark.parametrize("data", REAL, ids=REAL_IDS)
def test_every_truncation_is_a_decode_error(data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_message(data[:n])  # the header's Length no longer matches
        if n >= 28:
            with pytest.raises(DecodeError):
                decode_message(with_length(data[:n]))  # the payload chain is cut short


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.data())
def test_byte_flips_only_raise_decode_error(data: bytes, draw: st.DataObject) -> None:
    for _ in range(draw.draw(st.integers(1, 4))):
        offset = draw.draw(st.integers(28, len(data) - 1))  # keep the header, to reach the payloads
        data = patched(data, offset, bytes([draw.draw(st.integers(0, 255))]))
    try:
        decoded = decode_message(data)
    except DecodeError:
        return
    check_spans(decoded.tree, data)
    again = encode_message(decoded.message)  # reserved bits may differ, the meaning may not
    assert decode_message(again).message == decoded.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 255))
def test_random_payload_chains_only_raise_decode_error(data: bytes, first_type: int) -> None:
    try:
        decode_payloads(data, first_type, 50)
    except DecodeError:
        pass


# --- the message and the chain ---


def test_too_short_for_a_header() -> None:
    assert str(error_for(bytes(20))) == (
        "IKE header, field 'Header' at offset 0: message is 20 bytes, shorter than the 28-byte IKE header"
    )
    with pytest.raises(DecodeError):
        decode_header(bytes(27))


def test_header_length_must_match_the_datagram() -> None:
    data = encode(NoncePayload(b"n" * 16))
    assert str(error_for(data + b"\0")) == (
        "IKE header, field 'Length' at offset 24: header says 48 bytes but the datagram has 49; "
        "RFC 7296 §3.1 requires them to match"
    )
    assert decode_header(data + b"\0").length == 48  # decode_header only reads, for routing


def test_major_version_1_is_unsupported() -> None:
    data = patched(encode(NoncePayload(b"n" * 16)), 17, b"\x10")
    with pytest.raises(UnsupportedVersion) as info:
        decode_message(data)
    assert (info.value.major, info.value.field, info.value.offset) == (1, "Version", 17)
    assert decode_header(data).major == 1


def test_payload_length_below_the_generic_header() -> None:
    data = patched(encode(KePayload(14, b"k" * 8)), 30, b"\x00\x03")
    err = error_for(data)
    assert str(err) == (
        "KE payload, field 'Payload Length' at offset 30: length 3 is shorter than the 4-byte generic payload header"
    )
    assert (err.payload, err.field, err.offset, err.reason) == (
        "KE payload",
        "Payload Length",
        30,
        "length 3 is shorter than the 4-byte generic payload header",
    )


def test_payload_length_past_the_end() -> None:
    data = patched(encode(NoncePayload(b"n" * 16), KePayload(14, b"k" * 8)), 50, b"\x00\x20")
    assert str(error_for(data)) == (
        "KE payload, field 'Payload Length' at offset 50: length 32 runs past the end of the message (16 bytes left)"
    )


def test_chain_announcing_a_missing_payload() -> None:
    data = patched(encode(), 16, bytes([PayloadType.NONCE]))
    assert str(error_for(data)) == (
        "IKE header, field 'Next Payload' at offset 16: announces a Nonce payload but the message ends here"
    )


def test_bytes_after_the_last_payload() -> None:
    data = with_length(encode(NoncePayload(b"n" * 16)) + bytes(4))
    assert str(error_for(data)) == (
        "Nonce payload, field 'Next Payload' at offset 28: is NONE (end of the chain) but 4 bytes follow"
    )


def test_sk_must_be_last() -> None:
    _, nonce = encode_payloads([NoncePayload(b"n" * 16)])
    data = with_length(encode(EncryptedPayload(PayloadType.NONCE, b"ivct")) + nonce)
    assert str(error_for(data)) == (
        "SK payload, field 'Payload Length' at offset 30: the SK payload must be the last payload "
        "(RFC 7296 §3.14) but 20 bytes follow it"
    )


def test_unknown_critical_payload_rejects_the_message() -> None:
    data = encode(NoncePayload(b"n" * 16), UnknownPayload(99, b"abc", critical=True))
    with pytest.raises(UnsupportedCriticalPayload) as info:
        decode_message(data)
    assert (info.value.payload_type, info.value.field, info.value.offset) == (99, "Critical", 49)
    assert info.value.payload == "Unknown payload (type 99)"


def test_unknown_noncritical_payload_is_kept() -> None:
    decoded = decode_message(encode(UnknownPayload(99, b"abc"), NoncePayload(b"n" * 16)))
    assert decoded.message.payloads[0] == UnknownPayload(99, b"abc")
    node = decoded.tree.children[1]
    assert node.name == "Unknown payload (type 99)" and "skipped (unknown, not critical)" in node.note.lower()
    assert node.find("Payload Data").value == b"abc"


def test_nonzero_reserved_bits_are_accepted_and_noted() -> None:
    data = encode(KePayload(14, b"k" * 8))
    data = patched(patched(data, 34, b"\x00\x01"), 29, b"\x01")  # KE RESERVED, generic header RESERVED
    decoded = decode_message(data)
    assert decoded.message.payloads == [KePayload(14, b"k" * 8)]
    assert "Nonzero" in decoded.tree.find("Reserved").note
    assert "reserved bits are nonzero" in decoded.tree.find("Critical").note


def test_encrypted_payloads_cannot_nest() -> None:
    first, chain = encode_payloads([NoncePayload(b"n" * 16), EncryptedPayload(0, b"")])
    with pytest.raises(DecodeError, match="cannot be nested"):
        decode_payloads(chain, first)


# --- SA payload structure ---


def sa_error(sa_body_patch: tuple[int, bytes]) -> str:
    offset, new = sa_body_patch
    return str(error_for(patched(encode(SA), 32 + offset, new)))


def test_proposal_marker_says_more_but_sa_ends() -> None:
    assert sa_error((0, b"\x02")) == (
        "SA payload, field 'Last Substruc' at offset 32: says more proposals follow (2) but the SA payload ends here"
    )


def test_proposal_marker_must_be_0_or_2() -> None:
    assert (
        sa_error((0, b"\x03")) == "SA payload, field 'Last Substruc' at offset 32: must be 0 (last) or 2 "
        "(more proposals), got 3"
    )


def test_transform_count_too_high() -> None:
    assert sa_error((7, b"\x04")) == (
        "SA payload, field 'Last Substruc' at offset 60: says last transform (0) on transform 3 of 4"
    )


def test_transform_count_too_low() -> None:
    assert sa_error((7, b"\x02")) == (
        "SA payload, field 'Last Substruc' at offset 52: says more transforms follow (3) on the last of 2"
    )


def test_proposal_length_too_long() -> None:
    assert sa_error((2, b"\x00\x40")) == (
        "SA payload, field 'Proposal Length' at offset 34: length 64 runs past the end of the SA payload "
        "(36 bytes left)"
    )


def test_transform_length_too_short() -> None:
    assert sa_error((10, b"\x00\x04")) == (
        "SA payload, field 'Transform Length' at offset 42: length 4 is shorter than the 8-byte transform header"
    )


def test_key_length_must_be_tv() -> None:
    assert sa_error((16, b"\x00\x0e\x00\x00")) == (
        "SA payload, field 'Attribute Type' at offset 48: Key Length must use the TV format (RFC 7296 §3.3.5)"
    )


def test_tlv_attribute_overrunning_the_transform() -> None:
    assert sa_error((16, b"\x00\x07\x00\x09")) == (
        "SA payload, field 'Attribute Value' at offset 52: needs 9 bytes but only 0 remain"
    )


def test_proposal_numbers_count_up() -> None:
    sa = SaPayload([Proposal(1, 1, b"", []), Proposal(3, 1, b"", [])])
    assert str(error_for(encode(sa))) == (
        "SA payload, field 'Proposal Num' at offset 44: proposal numbers must count up by one "
        "(RFC 7296 §3.3.1): expected 2, got 3"
    )
    assert decode_message(encode(SaPayload([Proposal(3, 1, b"", [])]))).message.payloads[0].proposals[0].number == 3


def test_esp_proposal_needs_a_4_byte_spi() -> None:
    sa = SaPayload([Proposal(1, ProtocolId.ESP, b"", [])])
    assert (
        str(error_for(encode(sa))) == "SA payload, field 'SPI Size' at offset 38: SPI size 0 does not fit protocol ESP"
    )


# --- other payloads ---


def test_traffic_selector_start_above_end() -> None:
    ts = TrafficSelector.from_range("198.51.100.9", "198.51.100.1")
    assert str(error_for(encode(TsPayload(True, [ts])))) == (
        "TSi payload, field 'Ending Address' at offset 48: start address 198.51.100.9 is above end address 198.51.100.1"
    )


def test_traffic_selector_length_must_match_its_type() -> None:
    data = patched(encode(TsPayload(False, [TrafficSelector.from_network("198.51.100.0/24")])), 38, b"\x00\x28")
    assert str(error_for(data)) == (
        "TSr payload, field 'Selector Length' at offset 38: length 40 is wrong for TS_IPV4_ADDR_RANGE (must be 16)"
    )


def test_traffic_selector_count() -> None:
    data = patched(encode(TsPayload(True, [TrafficSelector.from_network("198.51.100.0/24")])), 32, b"\x02")
    assert (
        str(error_for(data)) == "TSi payload, field 'Number of TSs' at offset 32: says 2 selectors but the "
        "payload holds only 1"
    )


def test_short_nonce() -> None:
    assert str(error_for(encode(NoncePayload(b"n" * 15)))) == (
        "Nonce payload, field 'Nonce Data' at offset 32: nonce is 15 bytes; RFC 7296 §3.9 requires 16 to 256"
    )


def test_ke_needs_its_4_byte_header() -> None:
    data = with_length(encode(KePayload(14, b""))[:-2])
    data = patched(data, 30, b"\x00\x06")
    assert str(error_for(data)) == (
        "KE payload, field 'DH Group Num' at offset 32: the payload body is 2 bytes; "
        "a KE payload (group number and reserved) needs at least 4"
    )


def test_notify_spi_size_must_fit_the_protocol() -> None:
    data = encode(NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, b"s" * 8))
    assert str(error_for(data)) == (
        "Notify payload, field 'SPI Size' at offset 33: SPI size 8 does not fit protocol ESP (4 for ESP/AH, 8 for IKE)"
    )


def test_delete_spi_count() -> None:
    data = patched(encode(DeletePayload(ProtocolId.ESP, 4, [b"abcd"])), 34, b"\x00\x02")
    assert str(error_for(data)) == (
        "Delete payload, field 'Num of SPIs' at offset 34: 2 SPIs of 4 bytes need 8 bytes, but 4 follow"
    )


def test_fragment_numbers() -> None:
    assert str(error_for(encode(EncryptedFragmentPayload(0, 3, 2, b"x")))) == (
        "SKF payload, field 'Fragment Number' at offset 32: fragment 3 of 2 is out of range"
    )
    assert str(error_for(encode(EncryptedFragmentPayload(35, 2, 2, b"x")))) == (
        "SKF payload, field 'Next Payload' at offset 28: must be 0 in fragment 2; only fragment 1 names the first "
        "inner payload (RFC 7383 §2.5)"
    )
