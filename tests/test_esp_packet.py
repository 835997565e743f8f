"""OutboundSa and InboundSa: format, checks in RFC 4303 §3.4 order, and what each refusal counts."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikelab.crypto.cipher import CIPHERS, ENCR_AES_CBC, ENCR_AES_GCM_16
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.packet import (
    EspError,
    InboundSa,
    IntegrityFailure,
    MalformedPacket,
    OutboundSa,
    ReplayedPacket,
    SaCounters,
    WrongSpi,
)
from ikelab.esp.sa import EspSa

SUITES = [
    (CIPHERS[ENCR_AES_CBC, bits], INTEGRITY[n]) for bits in (128, 192, 256) for n in (2, 12, 13, 14)
]
SUITES += [(CIPHERS[ENCR_AES_GCM_16, bits], None) for bits in (128, 192, 256)]
CBC_SHA256 = SUITES[1]
GCM128 = SUITES[-3]
IPV4 = (
    bytes.fromhex("450000210000400040010000c6336407cb007109") + b"\x08\x00" + bytes(11)
)  # 33 bytes
IPV6 = bytes.fromhex("6000000000083a40") + bytes(32) + bytes(8)
PADDED = (
    IPV4 + bytes(range(1, 14)) + bytes([13, 4])
)  # IPV4 with its trailer: 33 + 13 + 2 = 48 bytes


def suite_id(suite) -> str:
    return suite[0].name + (f"-{suite[1].name}" if suite[1] else "")


def make_sa(suite=CBC_SHA256, spi: bytes = b"\x00\x00\x10\x01") -> EspSa:
    cipher, integrity = suite
    return EspSa(
        spi=spi,
        src="192.0.2.1",
        dst="192.0.2.2",
        cipher=cipher,
        integrity=integrity,
        encryption_key=os.urandom(cipher.key_length),
        integrity_key=os.urandom(integrity.key_length) if integrity else b"",
    )


def seal_by_hand(sa: EspSa, seq: int, plaintext: bytes) -> bytes:
    """An ESP packet around an arbitrary (padded) plaintext, built with the reference crypto
    functions rather than OutboundSa, so tests can send what OutboundSa never would."""
    header = sa.spi + seq.to_bytes(4, "big")
    iv = os.urandom(sa.cipher.iv_length)
    if sa.cipher.is_aead:
        return header + iv + sa.cipher.encrypt(sa.encryption_key, iv, plaintext, header)
    body = header + iv + sa.cipher.encrypt(sa.encryption_key, iv, plaintext)
    return body + sa.integrity.compute(sa.integrity_key, body)


def open_by_hand(sa: EspSa, packet: bytes) -> bytes:
    """The padded plaintext, decrypted with the reference crypto functions."""
    iv_end = 8 + sa.cipher.iv_length
    if sa.cipher.is_aead:
        return sa.cipher.decrypt(sa.encryption_key, packet[8:iv_end], packet[iv_end:], packet[:8])
    return sa.cipher.decrypt(
        sa.encryption_key, packet[8:iv_end], packet[iv_end : -sa.integrity.icv_length]
    )


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_round_trip_and_format(suite):
    sa = make_sa(suite)
    outbound, inbound = OutboundSa(sa), InboundSa(sa)
    icv_length = suite[1].icv_length if suite[1] else 16
    for seq, inner in enumerate(
        [IPV4 + bytes(n) for n in range(20)] + [IPV6, IPV6 + b"z"], start=1
    ):
        packet = outbound.encapsulate(inner)
        assert packet[:8] == sa.spi + seq.to_bytes(4, "big")  # sequence numbers start at 1
        assert len(packet) == 8 + sa.cipher.iv_length + len(open_by_hand(sa, packet)) + icv_length
        plaintext = open_by_hand(sa, packet)
        assert len(plaintext) % sa.cipher.block_size == 0
        pad = plaintext[-2]
        assert pad < sa.cipher.block_size  # minimal padding
        assert plaintext == inner + bytes(range(1, pad + 1)) + bytes(
            [pad, 4 if inner[0] == 0x45 else 41]
        )
        assert inbound.decapsulate(packet) == inner
    assert outbound.counters == inbound.counters
    assert outbound.counters.packets == 22


def test_gcm_iv_is_the_sequence_number_and_cbc_iv_is_random():
    gcm = OutboundSa(make_sa(GCM128))
    assert [gcm.encapsulate(IPV4)[8:16] for _ in range(3)] == [
        i.to_bytes(8, "big") for i in (1, 2, 3)
    ]
    cbc = OutboundSa(make_sa())
    assert len({cbc.encapsulate(IPV4)[8:24] for _ in range(3)}) == 3


def test_injected_iv_source_is_asked_for_iv_length_bytes():
    asked = []
    outbound = OutboundSa(make_sa(), iv_source=lambda n: asked.append(n) or bytes(n))
    assert outbound.encapsulate(IPV4)[8:24] == bytes(16)
    assert asked == [16]


@pytest.mark.parametrize("inner", [b"", b"\x50" + bytes(30)], ids=["empty", "version5"])
def test_outbound_refuses_what_is_not_ip(inner):
    outbound = OutboundSa(make_sa())
    with pytest.raises(MalformedPacket, match="not IPv4 or IPv6: it starts with"):
        outbound.encapsulate(inner)
    assert outbound.counters == SaCounters(malformed=1)
    assert outbound.seq == 0  # no sequence number spent


@pytest.mark.parametrize(
    "change, error",
    [
        ({"esn": True}, "extended sequence numbers"),
        ({"integrity": None}, "needs an integrity algorithm"),
        ({"spi": bytes(4)}, "not zero"),
        ({"spi": b"\x01\x02"}, "4 bytes"),
        ({"encryption_key": bytes(3)}, "needs a 16-byte key"),
    ],
)
def test_unusable_sas_are_refused(change, error):
    sa = dataclasses.replace(make_sa(), **change)
    for direction in (OutboundSa, InboundSa):
        with pytest.raises(ValueError, match=error):
            direction(sa)


def test_aead_with_a_separate_integrity_algorithm_is_refused():
    sa = dataclasses.replace(make_sa(GCM128), integrity=INTEGRITY[12], integrity_key=bytes(32))
    with pytest.raises(ValueError, match="takes no separate integrity"):
        OutboundSa(sa)


@pytest.mark.parametrize("suite", [CBC_SHA256, GCM128], ids=suite_id)
def test_every_tampered_byte_fails_integrity_and_leaves_the_window_alone(suite):
    sa = make_sa(suite)
    packet = OutboundSa(sa).encapsulate(IPV4)
    inbound = InboundSa(sa)
    for position in range(4, len(packet)):  # past the SPI, which would select another SA
        tampered = bytearray(packet)
        tampered[position] ^= 0x80  # a high bit: never turns sequence number 1 into 0
        with pytest.raises(IntegrityFailure, match="does not verify"):
            inbound.decapsulate(bytes(tampered))
    assert inbound.counters == SaCounters(integrity_failures=len(packet) - 4)
    assert inbound.replay_window.top == 0
    assert inbound.decapsulate(packet) == IPV4


def test_a_forged_high_sequence_number_does_not_move_the_window():
    sa = make_sa()
    outbound, inbound = OutboundSa(sa), InboundSa(sa)
    first = outbound.encapsulate(IPV4)
    forged = bytearray(first)
    forged[4:8] = (10_000).to_bytes(4, "big")
    with pytest.raises(IntegrityFailure):
        inbound.decapsulate(bytes(forged))
    assert (
        inbound.decapsulate(first) == IPV4
    )  # had the forgery moved the window, 1 would be too old


def test_replay_out_of_order_and_too_old():
    sa = make_sa()
    outbound, inbound = OutboundSa(sa), InboundSa(sa, replay_window=32)
    packets = [outbound.encapsulate(IPV4) for _ in range(100)]
    inbound.decapsulate(packets[0])
    with pytest.raises(ReplayedPacket, match="sequence number 1 was already received"):
        inbound.decapsulate(packets[0])
    inbound.decapsulate(packets[99])  # seq 100: the window now covers 69..100
    inbound.decapsulate(packets[68])  # seq 69, the left edge, out of order: accepted
    with pytest.raises(ReplayedPacket, match="68 is older than the window 69..100"):
        inbound.decapsulate(packets[67])
    for seq in range(99, 69, -1):
        inbound.decapsulate(packets[seq - 1])
    assert inbound.counters == SaCounters(packets=33, bytes=33 * len(IPV4), replay_drops=2)


def test_replay_is_checked_before_the_icv():
    sa = make_sa()
    outbound, inbound = OutboundSa(sa), InboundSa(sa)
    packet = outbound.encapsulate(IPV4)
    inbound.decapsulate(packet)
    garbled = packet[:-1] + bytes([packet[-1] ^ 1])
    with pytest.raises(ReplayedPacket):  # not IntegrityFailure: no ICV work spent on a replay
        inbound.decapsulate(garbled)


def test_sequence_number_zero_is_never_accepted():
    sa = make_sa()
    with pytest.raises(ReplayedPacket, match="0 is never sent"):
        InboundSa(sa).decapsulate(seal_by_hand(sa, 0, PADDED))


def test_wrong_spi_is_not_this_sas_business():
    sa = make_sa()
    packet = OutboundSa(dataclasses.replace(sa, spi=b"\x00\x00\x10\x02")).encapsulate(IPV4)
    inbound = InboundSa(sa)
    with pytest.raises(WrongSpi, match="SPI 00001002 is not this SA's 00001001"):
        inbound.decapsulate(packet)
    assert inbound.counters == SaCounters()


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_every_truncation_is_malformed_or_unauthentic(suite):
    sa = make_sa(suite)
    packet = OutboundSa(sa).encapsulate(IPV6)
    inbound = InboundSa(sa)
    for length in range(len(packet)):
        with pytest.raises((MalformedPacket, IntegrityFailure)):
            inbound.decapsulate(packet[:length])
    counters = inbound.counters
    assert counters.malformed + counters.integrity_failures == len(packet)
    assert inbound.decapsulate(packet) == IPV6


@pytest.mark.parametrize(
    "plaintext, error",
    [
        (IPV4 + bytes(range(1, 13)) + b"\x0e" + bytes([13, 4]), "padding .* is not 1, 2, 3"),
        (IPV4 + bytes(13) + bytes([13, 4]), "padding .* is not 1, 2, 3"),
        (bytes(46) + bytes([47, 4]), "pad length 47 exceeds"),
        (PADDED[:-1] + b"\x06", "next header 6 is not IPv4"),
        (PADDED[:-1] + b"\x29", "next header 41 but the inner packet is not IPv6"),
        (bytes(range(1, 15)) + bytes([14, 4]), "next header 4 but the inner packet is not IPv4"),
    ],
    ids=["wrong-pad-byte", "zero-padding", "pad-too-long", "tcp", "v4-as-v6", "empty-inner"],
)
@pytest.mark.parametrize("suite", [CBC_SHA256, GCM128], ids=suite_id)
def test_authentic_but_malformed_plaintext(suite, plaintext, error):
    sa = make_sa(suite)
    inbound = InboundSa(sa)
    with pytest.raises(MalformedPacket, match=error):
        inbound.decapsulate(seal_by_hand(sa, 1, plaintext))
    assert inbound.counters == SaCounters(malformed=1)
    assert inbound.replay_window.top == 1  # authentic, so the window moved before the padding check


def test_padding_beyond_the_block_is_accepted():
    # RFC 4303 §2.4 allows up to 255 bytes of padding, e.g. to hide the length.
    sa = make_sa()
    plaintext = IPV4 + bytes(range(1, 30)) + bytes([29, 4])  # 64 bytes, two blocks more than needed
    assert InboundSa(sa).decapsulate(seal_by_hand(sa, 1, plaintext)) == IPV4


def test_dummy_packet_yields_nothing():
    sa = make_sa(GCM128)
    inbound = InboundSa(sa)
    assert inbound.decapsulate(seal_by_hand(sa, 1, b"\xaa\xbb" + bytes([0, 59]))) == b""
    assert inbound.counters == SaCounters(packets=1)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_packets_raise_only_esp_errors(data):
    suite = data.draw(st.sampled_from([CBC_SHA256, GCM128]), label="suite")
    sa = make_sa(suite)
    packet = bytearray(OutboundSa(sa).encapsulate(IPV4))
    for _ in range(data.draw(st.integers(0, 4))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    mutated = bytes(packet[:cut]) + data.draw(st.binary(max_size=40))
    try:
        InboundSa(sa).decapsulate(mutated)
    except EspError:
        pass
