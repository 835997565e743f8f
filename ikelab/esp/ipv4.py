"""The IPv4 header a raw IPPROTO_ESP socket hands back with every packet it receives."""

from __future__ import annotations

import struct
from socket import inet_ntoa

from ikelab.esp.packet import MalformedPacket

_IPV4 = struct.Struct(
    "!BxHxxHxB2x4s4s"
)  # version/IHL, total length, flags/offset, protocol, src, dst
_MORE_FRAGMENTS_OR_OFFSET = 0x3FFF


def strip_ipv4_header(packet: bytes) -> tuple[str, str, int, bytes]:
    """(source, destination, protocol, payload) of an IPv4 packet, after checking its lengths."""
    if len(packet) < _IPV4.size:
        raise MalformedPacket(f"{len(packet)} bytes cannot hold an IPv4 header")
    version_ihl, total_length, fragment, protocol, src, dst = _IPV4.unpack_from(packet)
    header_length = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4:
        raise MalformedPacket(f"IP version {version_ihl >> 4}, not 4")
    if header_length < _IPV4.size:
        raise MalformedPacket(f"IPv4 header length {header_length} is below the minimum 20")
    if not header_length <= total_length <= len(packet):
        raise MalformedPacket(
            f"IPv4 total length {total_length} does not fit header {header_length} "
            f"and packet {len(packet)} bytes"
        )
    if fragment & _MORE_FRAGMENTS_OR_OFFSET:
        raise MalformedPacket("IPv4 fragment: the kernel reassembles before a raw socket sees it")
    return inet_ntoa(src), inet_ntoa(dst), protocol, packet[header_length:total_length]
