"""UDP segmentation offload for ESP-in-UDP (RFC 3948): many datagrams per system call.

Sending, UDP_SEGMENT (Linux 4.18): one sendmsg carries a run of datagrams of one size (the last
may be shorter) and the kernel cuts it into ordinary datagrams, at the latest where it leaves the
host. Receiving, UDP_GRO (Linux 5.0): the kernel hands such a run over whole, with its segment
size, when it arrived as one (a GSO sender across a veth pair) or was merged on the way in.
The datagrams on the wire are the same as with one call each; what is saved is the system calls
and the kernel's trip through UDP, IP, routing and the veth pair, once per run instead of once
per packet. The receiver of a run need not know about any of it: a socket without UDP_GRO gets
the datagrams one by one, as the kernel splits the run before queueing them.

A packet capture on the sending veth (tcpdump) sees a run as one large datagram, as captures see
TSO segments on a NIC; the lab turns sending runs off while it captures, so its pcaps show the
wire as the receiver sees it.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h
UDP_GRO = 104
MAX_SEGMENTS = 64  # UDP_MAX_SEGMENTS of the kernels that have UDP_SEGMENT (newer ones allow more)
MAX_PAYLOAD = 65507  # the largest UDP payload in IPv4: 65535 - 20 (IP) - 8 (UDP); IPv6 allows more, so it is safe there too
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)  # the kernel reports the segment size as an int
SO_RCVBUFFORCE = 33  # asm-generic/socket.h
RECEIVE_BUFFER = 4 << 20  # as the raw ESP socket's
_SEGMENT_SIZE = struct.Struct("=H")  # UDP_SEGMENT takes a u16
# What the kernel answers when it cannot segment here (no checksum offload on the route, an old
# kernel, a segment too large for the MTU): send one datagram per call from then on.
_UNSUPPORTED = {errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP}


class SegmentingSender:
    """Sends datagrams through one UDP socket in runs of equal size (see the module doc)."""

    def __init__(self, sock: socket.socket, enabled: bool = True) -> None:
        self.sock = sock
        self.enabled = enabled  # False: one sendto per datagram (no UDP_SEGMENT, or a capture)
        self.runs = self.segments = 0  # statistics: sends with UDP_SEGMENT, datagrams in them

    def send(self, datagrams: list[bytes], address: tuple[str, int]) -> None:
        """Send every datagram, in order; one that cannot be sent (a full queue) is dropped, as a
        NIC drops what does not fit its queue."""
        sendto = self.sock.sendto
        if not self.enabled or len(datagrams) == 1:
            for datagram in datagrams:
                try:
                    sendto(datagram, address)
                except OSError:
                    pass
            return
        sendmsg, count, start = self.sock.sendmsg, len(datagrams), 0
        while start < count:
            size = len(datagrams[start])
            end, total, limit = start + 1, size, min(count, start + MAX_SEGMENTS)
            while end < limit and len(datagrams[end]) == size and total + size <= MAX_PAYLOAD:
                total += size
                end += 1
            if end < limit and len(datagrams[end]) < size and total + len(datagrams[end]) <= MAX_PAYLOAD:
                end += 1  # a run may end with one shorter datagram
            run, start = datagrams[start:end], end
            if len(run) > 1 and self.enabled:
                try:
                    sendmsg(run, [(SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))], 0, address)
                    self.runs += 1
                    self.segments += len(run)
                    continue
                except OSError as e:
                    if e.errno not in _UNSUPPORTED:
                        continue  # e.g. ENOBUFS: the run is dropped, as a full queue would
                    self.enabled = False  # from now on, and for this run, one datagram per call
            for datagram in run:
                try:
                    sendto(datagram, address)
                except OSError:
                    pass


def enable_gro(sock: socket.socket, buffer: int = RECEIVE_BUFFER) -> bool:
    """Ask for runs on receive (UDP_GRO); False where the kernel does not have it. The receive
    buffer grows to `buffer` bytes too: a run counts as up to 64 KiB in it, and the default
    (212992 bytes, net.core.rmem_default) holds three, so a burst of runs overflowed it and TCP
    through the tunnel saw one packet in ten lost (UdpRcvbufErrors)."""
    try:  # SO_RCVBUFFORCE: root may pass net.core.rmem_max, which caps SO_RCVBUF
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
        except OSError:
            pass
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def split(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> list[bytes]:
    """The datagrams of what one recvmsg(..., GRO_CMSG_SPACE) returned: `data` cut at the segment
    size the kernel reported, or `data` alone when it reported none."""
    for level, kind, value in ancillary:
        if level == SOL_UDP and kind == UDP_GRO and len(value) >= 2:
            size = int.from_bytes(value, sys.byteorder)
            if 0 < size < len(data):
                return [data[offset : offset + size] for offset in range(0, len(data), size)]
    return [data]
