"""RFC 3948 port-4500 demultiplexing, and the IPv4 header a raw ESP socket returns."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, NAT_KEEPALIVE, NON_ESP

from ikelab.esp.ipv4 import strip_ipv4_header
from ikelab.esp.packet import MalformedPacket
from ikelab.esp.udp_encap import (
    KEEPALIVE,
    NON_ESP_MARKER,
    classify_udp_4500,
    unwrap_ike,
    wrap_ike,
)

IKE_HEADER = (
    bytes(range(1, 9)) + bytes(8) + b"\x21\x20\x22\x08" + bytes(4) + (28).to_bytes(4, "big")
)
ESP_PACKET = b"\xc0\x01\x02\x03" + (1).to_bytes(4, "big") + bytes(40)


def test_classification():
    assert classify_udp_4500(KEEPALIVE) == "keepalive"
    assert classify_udp_4500(wrap_ike(IKE_HEADER)) == "ike"
    assert classify_udp_4500(ESP_PACKET) == "esp"
    assert (
        classify_udp_4500(NON_ESP_MARKER) == "ike"
    )  # an empty IKE message: the IKE codec refuses it


@pytest.mark.parametrize(
    "payload", [b"", b"\xfe", b"\xff\xff", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"]
)
def test_too_short_for_esp(payload):
    with pytest.raises(MalformedPacket, match="no keepalive, IKE or ESP"):
        classify_udp_4500(payload)


def test_agrees_with_scapy_dispatch():
    expected = {NAT_KEEPALIVE: "keepalive", NON_ESP: "ike", ESP: "esp"}
    for payload in (KEEPALIVE, wrap_ike(IKE_HEADER), ESP_PACKET):
        datagram = IP(
            bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500) / payload)
        )
        assert classify_udp_4500(payload) == expected[type(datagram[UDP].payload)]


def test_wrap_unwrap():
    assert wrap_ike(IKE_HEADER) == b"\0\0\0\0" + IKE_HEADER
    assert unwrap_ike(wrap_ike(IKE_HEADER)) == IKE_HEADER
    with pytest.raises(MalformedPacket, match="no non-ESP marker"):
        unwrap_ike(ESP_PACKET)


def outer(payload: bytes = ESP_PACKET, **fields) -> bytes:
    return bytes(IP(src="192.0.2.1", dst="192.0.2.2", proto=50, **fields) / payload)


def test_strip_ipv4_header():
    assert strip_ipv4_header(outer()) == ("192.0.2.1", "192.0.2.2", 50, ESP_PACKET)
    with_options = bytes(
        IP(src="192.0.2.1", dst="192.0.2.2", proto=50, options=b"\x01\x01\x01\x00") / ESP_PACKET
    )
    assert strip_ipv4_header(with_options)[3] == ESP_PACKET
    assert strip_ipv4_header(outer() + b"trailer")[3] == ESP_PACKET  # link-layer padding is cut off


@pytest.mark.parametrize(
    "packet, error",
    [
        (outer()[:19], "cannot hold an IPv4 header"),
        (b"\x65" + outer()[1:], "IP version 6"),
        (b"\x44" + outer()[1:], "header length 16"),
        (outer()[:-1], "total length 68 does not fit"),
        (outer(bytes(8), ihl=15), "total length 28 does not fit header 60"),
        (outer(flags="MF"), "fragment"),
        (outer(frag=10), "fragment"),
    ],
    ids=["short", "ipv6", "ihl4", "truncated", "ihl-beyond-length", "more-fragments", "offset"],
)
def test_strip_ipv4_header_refuses(packet, error):
    with pytest.raises(MalformedPacket, match=error):
        strip_ipv4_header(packet)
