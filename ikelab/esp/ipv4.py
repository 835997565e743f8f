"""IPv4 for the userspace datapath: the header a raw IPPROTO_ESP socket hands back with every
packet it receives, and GRO for the TUN device the decrypted packets are written to.

Each packet written to a TUN device runs the kernel's receive path (IP, TCP, socket wake-up) in
the writer's system call. Opened with IFF_VNET_HDR, the device also takes "GSO" packets of up to
64 KiB, described by a virtio-net header, which that path handles once: `TcpCoalescer` merges
in-order TCP segments of one connection as a NIC's GRO would. The wire is not involved: each
segment travelled in its own ESP packet, exactly as the sender's kernel made it.

Checksums use the identity 2^16 = 1 (mod 65535): the one's complement sum of a byte string is its
big-endian integer value modulo 65535 (RFC 1071's arithmetic), which CPython computes in C.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
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


def ipv4_payload(packet: bytes) -> bytes:
    """The payload of an IPv4 packet, with the checks of `strip_ipv4_header`: a per-packet fast
    path for the common header (20 bytes, no fragment, total length = packet length)."""
    if (
        len(packet) >= 20
        and packet[0] == 0x45
        and not packet[6] & 0x3F
        and not packet[7]
        and packet[2] << 8 | packet[3] == len(packet)
    ):
        return packet[20:]
    return strip_ipv4_header(packet)[3]


# ------------------------------------------------------------------ checksums (RFC 1071)

_from_bytes = int.from_bytes


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of `data` (a trailing odd byte padded with zero), modulo
    65535: 0 stands for both 0x0000 and 0xFFFF, which one's complement arithmetic cannot tell
    apart anyway."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    return _from_bytes(data, "big") % 0xFFFF


def finish_checksum(total: int) -> int:
    """The checksum field for data whose one's complement sum (with the field zero) is `total`,
    which may be any non-negative integer congruent to it modulo 65535. Never 0xFFFF, as Linux."""
    total %= 0xFFFF
    return 0xFFFF - total if total else 0


def internet_checksum(data: bytes) -> int:
    """The checksum of `data` with its checksum field zero (IP header, ICMP, or TCP/UDP after the
    pseudo-header sum is added with `finish_checksum`)."""
    return finish_checksum(ones_complement_sum(data))


# ------------------------------------------------------------------ virtio-net header (TUN)

# struct virtio_net_hdr, in the host's byte order (little-endian here) as TUN expects by default.
VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_LEN = VNET_HDR.size  # 10: the TUN default (TUNSETVNETHDRSZ not needed)
GSO_NONE, GSO_TCPV4 = 0, 1
NO_OFFLOAD = bytes(VNET_HDR_LEN)  # "a complete, ordinary packet", checksums included

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80,
)
_PROTO_TCP = 6
_pack_into_u16 = struct.Struct("!H").pack_into


_TCP4_FIELDS = struct.Struct("!BBH2xH1xB2x12xI4xBB2xH")
# version/IHL, TOS, total length, flags/fragment offset, protocol, sequence number, data offset,
# TCP flags, (window skipped), checksum: one C call per packet instead of a dozen indexings.


class TcpCoalescer:
    """Merges consecutive, in-order TCP/IPv4 segments of one connection into one packet of up to
    64 KiB for a TUN device with IFF_VNET_HDR, as GRO does for a NIC; anything else passes
    through alone, and order is kept (a packet that does not continue the run ends it first).

    Segments merge only when everything but sequence number, IP ID, TTL and DF, lengths, checksums
    and a PSH on the last one matches (TCP options included, as Linux's tcp_gro_receive demands),
    every payload but the last has the same even size (the GSO size), and flags are ACK or
    ACK|PSH. The merged TCP checksum is derived from the segments' own checksums without reading
    their payloads: the kernel verifies it over the merged data, so a segment whose checksum was
    wrong makes the merged packet fail the kernel's check and be dropped, as it would have alone.

    `emit(buffers)` receives the virtio-net header and the packet as a list of buffers (for one
    os.writev). A batch is merged as a whole and nothing waits for a next batch, so merging
    adds no latency: what arrived together is written together.
    """

    def __init__(self, emit: Callable[[list], object], limit: int = 65535) -> None:
        self._emit = emit
        self._limit = limit
        self.merge = True  # False: every packet goes alone (for a kernel that refuses GSO writes)
        self.merged_packets = 0  # statistics: packets written with GSO, and segments in them
        self.merged_segments = 0

    def write_batch(self, packets: list[bytes]) -> None:
        """Emit every packet of the batch, in order, merging runs of segments."""
        emit, limit, unpack = self._emit, self._limit, _TCP4_FIELDS.unpack_from
        if not self.merge or len(packets) == 1:
            for packet in packets:
                emit([NO_OFFLOAD, packet])
            return
        run: list[bytes] = []
        # The pending run: its first segment's header slices, sizes and checksum bookkeeping.
        key = acknowledgment = window = options = b""
        tos = header_length = mss = length = next_seq = sums = 0
        for packet in packets:
            size = len(packet)
            if size > 40:
                version_ihl, p_tos, total, fragment, protocol, seq, offset, flags, check = unpack(packet)
                plain = not (
                    version_ihl != 0x45
                    or protocol != _PROTO_TCP
                    or flags & ~TCP_PSH != TCP_ACK
                    or fragment & 0xBFFF
                    or total != size
                    or offset < 0x50
                )
            else:
                plain = False
            if plain:
                p_header_length = 20 + (offset >> 4) * 4
                payload = size - p_header_length
                if payload <= 0:
                    plain = False
            if not plain:  # not a data segment we can merge: it goes alone, after the run
                if run:
                    self._flush(run, header_length, mss, length, sums)
                    run = []
                emit([NO_OFFLOAD, packet])
                continue
            if run:
                if (
                    seq == next_seq
                    and payload <= mss
                    and length + payload <= limit
                    and p_tos == tos
                    and packet[12:24] == key  # addresses and ports
                    and packet[28:33] == acknowledgment  # acknowledgment number, header length
                    and packet[34:36] == window  # window
                    and packet[38:header_length] == options  # urgent pointer, options
                ):
                    run.append(packet)
                    length += payload
                    next_seq = (seq + payload) & 0xFFFFFFFF
                    sums += seq + check + flags
                    if payload < mss or flags & TCP_PSH:  # a run ends with a short or PSH segment
                        self._flush(run, header_length, mss, length, sums)
                        run = []
                    continue
                self._flush(run, header_length, mss, length, sums)
                run = []
            if payload & 1 or flags & TCP_PSH:  # cannot start a run
                emit([NO_OFFLOAD, packet])
                continue
            run = [packet]
            header_length, mss, length, tos = p_header_length, payload, size, p_tos
            next_seq = (seq + payload) & 0xFFFFFFFF
            sums = seq + check + flags
            key, acknowledgment = packet[12:24], packet[28:33]
            window, options = packet[34:36], packet[38:header_length]
        if run:
            self._flush(run, header_length, mss, length, sums)

    def _flush(self, run: list[bytes], header_length: int, mss: int, total: int, sums: int) -> None:
        head = run[0]
        count = len(run)
        if count == 1:
            self._emit([NO_OFFLOAD, head])
            return
        # IP header: the first segment's, with the merged length and its checksum.
        ip_header = bytearray(head[:20])
        _pack_into_u16(ip_header, 2, total)
        ip_header[10:12] = b"\0\0"
        _pack_into_u16(ip_header, 10, internet_checksum(ip_header))
        # TCP header: the first segment's, PSH from the last, and a checksum built from the
        # segments' own. A valid segment i sums to zero: P + L_i + S(header_i) + S(payload_i) = 0,
        # with P the pseudo header's addresses and protocol, L_i its TCP length. The headers
        # differ only in sequence number, flags and checksum (sums holds the total of those,
        # the data offset byte aside), so all the payloads together sum to
        #   -(n P + sum L_i + n F + sums + n (offset << 8)), F the sum of the shared fields.
        tcp_header = bytearray(head[20:header_length])
        tcp_header[13] |= run[-1][33] & TCP_PSH
        tcp_header[16:18] = b"\0\0"
        tcp_length = total - 20
        tcp_header_length = header_length - 20
        shared = bytearray(tcp_header)
        shared[4:8] = b"\0\0\0\0"
        shared[12:14] = b"\0\0"
        fixed = _from_bytes(shared, "big")
        pseudo = _from_bytes(head[12:20], "big") + _PROTO_TCP
        segment_lengths = tcp_length + (count - 1) * tcp_header_length
        payloads = -(count * pseudo + segment_lengths + count * fixed + sums + count * (head[32] << 8))
        check = finish_checksum(pseudo + tcp_length + _from_bytes(tcp_header, "big") + payloads)
        _pack_into_u16(tcp_header, 16, check)
        buffers = [
            VNET_HDR.pack(0, GSO_TCPV4, header_length, mss, 0, 0),
            ip_header,
            tcp_header,
        ]
        buffers += [memoryview(segment)[header_length:] for segment in run]
        self.merged_packets += 1
        self.merged_segments += count
        self._emit(buffers)
