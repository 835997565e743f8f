"""GRO for the TUN device: TcpCoalescer merges in-order TCP segments into one GSO packet whose
headers and checksums are right (checked against scapy), passes everything else through in
order, and - with a real TUN device - the kernel takes the merged packet, delivers the data, and
rejects it when one segment's checksum was wrong: the checksum is verified, never skipped."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess

import pytest
from conftest import needs_lab
from scapy.layers.inet import ICMP, IP, TCP, UDP

from ikelab.esp.ipv4 import (
    GSO_NONE,
    GSO_TCPV4,
    NO_OFFLOAD,
    VNET_HDR,
    VNET_HDR_LEN,
    TcpCoalescer,
    finish_checksum,
    internet_checksum,
    ones_complement_sum,
)

MSS = 1348  # a 1400-byte TUN MTU with TCP timestamps
OPTIONS = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]


def segment(
    seq: int, size: int = MSS, flags: str = "A", fill: int = 0, *, tos: int = 0, dst: str = "203.0.113.1",
    dport: int = 5201, ack: int = 77, window: int = 502, options: list = OPTIONS,
) -> bytes:
    tcp = TCP(sport=40000, dport=dport, seq=seq, ack=ack, flags=flags, window=window, options=options)
    return bytes(IP(src="198.51.100.1", dst=dst, tos=tos, flags="DF") / tcp / (bytes([fill]) * size))


def stream(count: int, start: int = 1000, last_size: int = MSS, **fields) -> list[bytes]:
    return [
        segment((start + i * MSS) % 2**32, MSS if i < count - 1 else last_size, fill=i, **fields)
        for i in range(count)
    ]


def run(packets: list[bytes]) -> list[list]:
    written: list[list] = []
    TcpCoalescer(written.append).write_batch(packets)
    return written


def segments_in(buffers: list) -> int:
    return 1 if bytes(buffers[0]) == NO_OFFLOAD else len(buffers) - 3


def joined(buffers: list) -> tuple[tuple, bytes]:
    return VNET_HDR.unpack(bytes(buffers[0])), b"".join(bytes(b) for b in buffers[1:])


def assert_valid(packet: bytes) -> IP:
    """IP and TCP checksums as scapy computes them from scratch."""
    parsed = IP(packet)
    rebuilt = IP(packet)
    del rebuilt.chksum
    del rebuilt[TCP].chksum
    rebuilt = IP(bytes(rebuilt))
    assert (parsed.chksum, parsed[TCP].chksum) == (rebuilt.chksum, rebuilt[TCP].chksum)
    return parsed


def test_checksum_arithmetic_is_rfc1071():
    header = bytes(IP(src="192.0.2.1", dst="192.0.2.2", proto=50, id=7) / b"x")[:20]
    zeroed = header[:10] + b"\0\0" + header[12:]
    assert internet_checksum(zeroed) == int.from_bytes(header[10:12], "big")
    assert ones_complement_sum(b"\x01") == 0x0100  # an odd byte is padded on the right
    assert finish_checksum(0) == 0 and finish_checksum(0xFFFF * 3) == 0 and finish_checksum(1) == 0xFFFE


@pytest.mark.parametrize("count, last", [(2, MSS), (10, MSS), (10, 100), (48, MSS)])
def test_a_run_becomes_one_gso_packet_with_correct_headers(count, last):
    segments = stream(count, last_size=last)
    written = run(segments)
    assert len(written) == 1
    vnet, merged = joined(written[0])
    assert vnet == (0, GSO_TCPV4, 52, MSS, 0, 0)
    parsed = assert_valid(merged)
    assert parsed.len == len(merged) == 52 + (count - 1) * MSS + last
    assert parsed[TCP].seq == 1000 and parsed.id == IP(segments[0]).id
    assert bytes(parsed[TCP].payload) == b"".join(bytes(IP(s)[TCP].payload) for s in segments)


def test_sequence_numbers_wrap():
    written = run(stream(5, start=2**32 - 2 * MSS - 10))
    assert len(written) == 1
    assert_valid(joined(written[0])[1])


def test_psh_ends_a_run_and_is_kept():
    segments = stream(6)
    segments[2] = segment(1000 + 2 * MSS, flags="PA", fill=2)
    written = run(segments)
    assert [segments_in(w) for w in written] == [3, 3]  # two merged packets of three segments
    first = assert_valid(joined(written[0])[1])
    assert first[TCP].flags == "PA" and assert_valid(joined(written[1])[1])[TCP].flags == "A"


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 1000 + 4 * MSS},  # segment 3 lost: 4 follows 2
        {"tos": 3},  # ECN CE: must not be merged away
        {"window": 600},
        {"options": [("NOP", None), ("NOP", None), ("Timestamp", (2, 2))]},
        {"dport": 5202},
        {"dst": "203.0.113.2"},
        {"ack": 78},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_difference_starts_a_new_run(change):
    segments = stream(6)
    segments[3] = segment(**{"seq": 1000 + 3 * MSS, "fill": 3, **change})
    written = run(segments)  # the odd one out also differs from the segment after it
    assert [segments_in(w) for w in written] == [3, 1, 2]
    out = [joined(w)[1] for w in written]
    assert [assert_valid(p)[TCP].payload.load for p in out] == [
        b"".join(IP(s)[TCP].payload.load for s in part) for part in (segments[:3], segments[3:4], segments[4:])
    ]


def test_what_cannot_merge_passes_through_alone_and_in_order():
    ping = bytes(IP(src="198.51.100.1", dst="203.0.113.1") / ICMP() / b"hello")
    datagram = bytes(IP(src="198.51.100.1", dst="203.0.113.1") / UDP(sport=1, dport=2) / (b"u" * 100))
    syn = segment(999, size=0, flags="S")
    ack = segment(5000, size=0)
    odd = segment(7000, size=101)
    cwr = segment(9000, flags="AC")
    fragment = bytes(IP(src="198.51.100.1", dst="203.0.113.1", flags="MF") / TCP() / (b"f" * 64))
    packets = [ping, *stream(3), datagram, syn, ack, odd, segment(7101, size=101), cwr, fragment]
    written = run(packets)
    alone = [w for w in written if bytes(w[0]) == NO_OFFLOAD]
    assert [w[1] for w in alone] == [ping, datagram, syn, ack, odd, packets[8], cwr, fragment]
    assert len(written) == len(alone) + 1 and segments_in(written[1]) == 3  # the run, after the ping
    assert assert_valid(joined(written[1])[1]).len == 52 + 3 * MSS


def test_the_64k_limit_splits_long_runs():
    written = run(stream(120))
    sizes = [len(joined(w)[1]) for w in written]
    assert all(size <= 65535 for size in sizes) and sum(size - 52 for size in sizes) == 120 * MSS
    assert len(written) == 3


def test_merging_can_be_turned_off():
    written: list[list] = []
    coalescer = TcpCoalescer(written.append)
    coalescer.merge = False
    segments = stream(4)
    coalescer.write_batch(segments)
    assert written == [[NO_OFFLOAD, s] for s in segments]


def test_a_wrong_segment_checksum_makes_the_merged_checksum_wrong():
    segments = stream(5)
    broken = bytearray(segments[2])
    broken[-1] ^= 0x40  # payload changed, checksum not
    segments[2] = bytes(broken)
    merged = joined(run(segments)[0])[1]
    parsed, rebuilt = IP(merged), IP(merged)
    del rebuilt[TCP].chksum
    assert IP(bytes(rebuilt))[TCP].chksum != parsed[TCP].chksum


# ------------------------------------------------------------------ with the kernel

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI, IFF_NAPI, IFF_VNET_HDR = 0x0001, 0x1000, 0x0010, 0x4000


def _tcp_counters() -> dict[str, int]:
    with open("/proc/thread-self/net/snmp") as snmp:  # this thread's namespace, not the process's
        lines = [line.split() for line in snmp if line.startswith("Tcp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def _deliver_through_tun(corrupt: bool) -> dict:
    """Inside a fresh namespace: a TUN device with virtio-net headers; we play a TCP client
    (10.77.0.2) talking to a real listening socket, and write ten data segments as GSO."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"grotest0", IFF_TUN | IFF_NO_PI | IFF_NAPI | IFF_VNET_HDR))
        subprocess.run(["ip", "addr", "add", "10.77.0.1/24", "dev", "grotest0"], check=True)
        subprocess.run(["ip", "link", "set", "grotest0", "mtu", "1400", "up"], check=True)
        server = socket.socket()
        server.bind(("10.77.0.1", 5000))
        server.listen()

        def write(packet) -> None:
            os.write(tun, bytes(VNET_HDR_LEN) + bytes(packet))

        client = {"src": "10.77.0.2", "dst": "10.77.0.1"}
        write(IP(**client) / TCP(sport=4000, dport=5000, flags="S", seq=1000))
        while True:
            data = os.read(tun, 70000)
            assert VNET_HDR.unpack(data[:VNET_HDR_LEN])[1] == GSO_NONE
            reply = IP(data[VNET_HDR_LEN:])
            if reply.haslayer(TCP) and reply[TCP].flags & 0x12 == 0x12:
                break
        ack = reply[TCP].seq + 1
        write(IP(**client) / TCP(sport=4000, dport=5000, flags="A", seq=1001, ack=ack))
        connection, _ = server.accept()
        connection.settimeout(1.0)
        payload = os.urandom(10 * MSS)
        segments = []
        for i in range(10):
            packet = bytearray(
                bytes(
                    IP(id=10 + i, flags="DF", **client)
                    / TCP(sport=4000, dport=5000, flags="A", seq=1001 + i * MSS, ack=ack, window=502)
                    / payload[i * MSS : (i + 1) * MSS]
                )
            )
            if corrupt and i == 4:
                packet[-1] ^= 0x55
            segments.append(bytes(packet))
        before = _tcp_counters()
        for buffers in run(segments):
            os.writev(tun, buffers)
        received = b""
        try:
            while len(received) < len(payload):
                chunk = connection.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
        after = _tcp_counters()
        connection.close()
        server.close()
        return {
            "intact": received == payload,
            "received": len(received),
            "segments_in": after["InSegs"] - before["InSegs"],
            "checksum_errors": after["InCsumErrors"] - before["InCsumErrors"],
        }
    finally:
        os.close(tun)


@needs_lab()
@pytest.mark.parametrize("corrupt", [False, True], ids=["intact", "one-segment-corrupt"])
def test_the_kernel_takes_the_merged_packet_and_verifies_its_checksum(corrupt):
    from ikelab.lab.netns import in_namespace, namespace_name, run_id

    namespace = namespace_name(run_id(), "gro")
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        outcome = in_namespace(namespace, lambda: _deliver_through_tun(corrupt))
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True)
    if corrupt:  # one bad segment: the kernel's check over the merged data fails, nothing delivered
        assert outcome == {"intact": False, "received": 0, "segments_in": 1, "checksum_errors": 1}
    else:  # ten segments, one packet through the kernel's TCP receive path
        assert outcome == {"intact": True, "received": 10 * MSS, "segments_in": 1, "checksum_errors": 0}
