"""Whole ESP packets from documents we did not write: RFC 3602 §4 (AES-CBC) and
draft-mcgrew-gcm-test-01 (AES-GCM, RFC 4106)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikelab.crypto.cipher import CIPHERS, ENCR_AES_CBC, ENCR_AES_GCM_16
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.packet import (
    InboundSa,
    MalformedPacket,
    OutboundSa,
    SequenceNumberExhausted,
)
from ikelab.esp.sa import EspSa

VECTORS = Path(__file__).parent / "vectors" / "esp"
RFC3602 = json.loads((VECTORS / "rfc3602.json").read_text())["cases"]
GCM = json.loads((VECTORS / "gcm_esp.json").read_text())["cases"]
SHA256 = INTEGRITY[12]
INTEGRITY_KEY = bytes(range(32))


def cbc_sa(case: dict) -> EspSa:
    # RFC 3602's packets carry no ICV, and ikelab refuses CBC without integrity (RFC 8221), so
    # the SA gets HMAC-SHA-256-128: it only appends an ICV, leaving SPI to ciphertext unchanged.
    return EspSa(
        spi=bytes.fromhex(case["spi"]),
        src="192.168.123.3",
        dst="192.168.123.100",
        cipher=CIPHERS[ENCR_AES_CBC, 128],
        integrity=SHA256,
        encryption_key=bytes.fromhex(case["key"]),
        integrity_key=INTEGRITY_KEY,
    )


def sender_at(sa: EspSa, seq: int, iv: bytes) -> OutboundSa:
    outbound = OutboundSa(sa, iv_source=lambda n: iv)
    outbound.seq = seq - 1  # as if seq - 1 packets had been sent
    return outbound


@pytest.mark.parametrize("case", RFC3602, ids=lambda c: f"case{c['case']}")
def test_rfc3602_packets_are_reproduced_byte_for_byte(case):
    sa = cbc_sa(case)
    outbound = sender_at(sa, case["seq"], bytes.fromhex(case["iv"]))
    packet = outbound.encapsulate(bytes.fromhex(case["payload"]), next_header=case["next_header"])
    expected = bytes.fromhex(case["esp"])
    assert packet[:-16] == expected
    assert packet[-16:] == SHA256.compute(INTEGRITY_KEY, expected)


@pytest.mark.parametrize(
    "case", [c for c in RFC3602 if c["next_header"] == 4], ids=lambda c: f"case{c['case']}"
)
def test_rfc3602_tunnel_packets_decapsulate(case):
    esp = bytes.fromhex(case["esp"])
    inbound = InboundSa(cbc_sa(case))
    assert inbound.decapsulate(esp + SHA256.compute(INTEGRITY_KEY, esp)) == bytes.fromhex(
        case["payload"]
    )
    assert inbound.replay_window.top == case["seq"]


def gcm_sa(case: dict) -> EspSa:
    key = bytes.fromhex(case["key"])
    return EspSa(
        spi=bytes.fromhex(case["spi"]),
        src="192.0.2.1",
        dst="192.0.2.2",
        cipher=CIPHERS[ENCR_AES_GCM_16, len(key) * 8],
        integrity=None,
        encryption_key=key + bytes.fromhex(case["salt"]),
    )


@pytest.mark.parametrize("case", GCM, ids=lambda c: c["name"])
def test_gcm_draft_packets_are_reproduced_byte_for_byte(case):
    plaintext = bytes.fromhex(case["plaintext"])
    pad_length, next_header = plaintext[-2], plaintext[-1]
    outbound = sender_at(gcm_sa(case), case["seq"], bytes.fromhex(case["iv"]))
    packet = outbound.encapsulate(plaintext[: -2 - pad_length], next_header=next_header)
    header = bytes.fromhex(case["spi"]) + case["seq"].to_bytes(4, "big")
    assert packet == header + bytes.fromhex(case["iv"] + case["ciphertext"] + case["tag"])


@pytest.mark.parametrize("case", GCM, ids=lambda c: c["name"])
def test_gcm_draft_packets_authenticate_and_stop_at_next_header_1(case):
    # The draft's next header 1 is not tunnel mode, so decapsulate refuses the packet, but only
    # after the tag verified, the window moved and the padding checked out.
    header = bytes.fromhex(case["spi"]) + case["seq"].to_bytes(4, "big")
    packet = header + bytes.fromhex(case["iv"] + case["ciphertext"] + case["tag"])
    inbound = InboundSa(gcm_sa(case))
    with pytest.raises(MalformedPacket, match="next header 1 "):
        inbound.decapsulate(packet)
    assert inbound.replay_window.top == case["seq"]
    assert (inbound.counters.integrity_failures, inbound.counters.malformed) == (0, 1)


def test_sequence_number_2_to_the_32_minus_1_is_the_last():
    case = GCM[-1]
    assert case["seq"] == 2**32 - 1
    outbound = sender_at(gcm_sa(case), case["seq"], bytes.fromhex(case["iv"]))
    outbound.encapsulate(b"", next_header=1)
    with pytest.raises(SequenceNumberExhausted, match="rekey"):
        outbound.encapsulate(b"", next_header=1)
    assert outbound.counters.packets == 1
