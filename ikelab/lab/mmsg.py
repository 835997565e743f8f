"""sendmmsg and recvmmsg (Linux, glibc): a batch of datagrams per system call, for the raw ESP socket.

Python's socket module has neither, so they are called through ctypes with message vectors built
once per socket. What they save is the per-packet system call and Python's per-call argument
handling (address parsing, a fresh 64 KiB buffer for every recv, the exception that ends every
drain); the kernel still handles each datagram on its own, so the packets on the wire are the
same as with one sendto or recv each. `available()` says whether this C library has them; where
it does not, the worker keeps its one-call-per-packet loops.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from itertools import accumulate, chain

from ikelab.esp.ipv4 import ipv4_payload
from ikelab.esp.packet import MalformedPacket

MAX_BATCH = 64  # messages per call, as the worker's batches
MAX_DATAGRAM = 65535  # an IPv4 packet's largest size: what a raw socket may hand over
MSG_DONTWAIT = 0x40

try:
    _libc = ctypes.CDLL(None, use_errno=True)  # the C library this Python runs on
    _sendmmsg, _recvmmsg = _libc.sendmmsg, _libc.recvmmsg
except (OSError, AttributeError):  # not glibc, or too old (both came in 2.14)
    _sendmmsg = _recvmmsg = None
else:
    for _function in (_sendmmsg, _recvmmsg):
        _function.restype = ctypes.c_int
    _sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    _recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("header", _Msghdr), ("length", ctypes.c_uint)]


_IOVEC_SIZE, _MMSGHDR_SIZE = ctypes.sizeof(_Iovec), ctypes.sizeof(_Mmsghdr)
_LENGTH_OFFSET = _Mmsghdr.length.offset
_FLAGS_OFFSET = _Mmsghdr.header.offset + _Msghdr.flags.offset
MSG_TRUNC = 0x20
# What a failed datagram in a batch is skipped for (the rest is still sent), as the per-packet
# loop skipped it: a full queue, an unreachable destination, a too-large packet.
_DROPPED = {errno.EAGAIN, errno.ENOBUFS, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EMSGSIZE,
            errno.ECONNREFUSED, errno.EPERM, errno.EACCES, errno.EINVAL, errno.EHOSTDOWN}


def available() -> bool:
    return _sendmmsg is not None


def _vector(count: int) -> ctypes.Array:
    """`count` message headers, each pointing at an iovec of its own (filled per call)."""
    messages = (_Mmsghdr * count)()
    iovecs = (_Iovec * count)()
    for index in range(count):
        messages[index].header.iov = ctypes.addressof(iovecs) + index * _IOVEC_SIZE
        messages[index].header.iovlen = 1
    messages._iovecs = iovecs  # kept alive with the headers that point at them
    return messages


def sockaddr(address: tuple[str, int]) -> bytes:
    """The struct sockaddr_in or sockaddr_in6 of (host, port), host a numeric address."""
    host, port = address[0], address[1]
    if ":" in host:
        return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + socket.inet_pton(socket.AF_INET6, host) + bytes(4)
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)


class BatchSender:
    """Sends datagrams to one address per call with as few sendmmsg calls as possible."""

    def __init__(self, sock: socket.socket) -> None:
        self.fd = sock.fileno()
        self._messages = _vector(MAX_BATCH)
        self._base = ctypes.addressof(self._messages)
        self._iovecs = memoryview(self._messages._iovecs).cast("B")
        self._name = ctypes.create_string_buffer(28)  # room for a sockaddr_in6
        self._address: tuple | None = None
        for message in self._messages:
            message.header.name = ctypes.addressof(self._name)
        self._iovec_formats: dict[int, struct.Struct] = {}
        self.calls = self.datagrams = self.errors = 0  # statistics: sendmmsg calls, datagrams sent, refused (dropped)

    def send(self, datagrams: list[bytes], address: tuple[str, int]) -> None:
        """Send every datagram, in order; one the kernel refuses (a full queue) is dropped, as a
        NIC drops what does not fit its queue. OSError for an error that is not about one datagram."""
        if address != self._address:
            name = sockaddr(address)
            ctypes.memmove(self._name, name, len(name))
            for message in self._messages:
                message.header.namelen = len(name)
            self._address = address
        for start in range(0, len(datagrams), MAX_BATCH):
            self._send(datagrams[start : start + MAX_BATCH])

    def _send(self, datagrams: list[bytes]) -> None:
        count = len(datagrams)
        joined = b"".join(datagrams)  # one buffer: its address stays valid while `joined` lives
        base = ctypes.cast(ctypes.c_char_p(joined), ctypes.c_void_p).value or 0
        lengths = [len(d) for d in datagrams]
        layout = self._iovec_formats.get(count)
        if layout is None:
            layout = self._iovec_formats[count] = struct.Struct(f"={2 * count}Q")
        starts = accumulate(lengths[:-1], initial=base)
        layout.pack_into(self._iovecs, 0, *chain.from_iterable(zip(starts, lengths)))
        sent = 0
        while sent < count:
            self.calls += 1
            result = _sendmmsg(self.fd, self._base + sent * _MMSGHDR_SIZE, count - sent, 0)
            if result > 0:
                sent += result
                self.datagrams += result
                continue
            error = ctypes.get_errno()
            if error == errno.EINTR:
                continue
            if error not in _DROPPED:
                raise OSError(error, f"sendmmsg: {errno.errorcode.get(error, error)}")
            self.errors += 1
            sent += 1  # the datagram at `sent` was refused: drop it, send the rest


class BatchReceiver:
    """Receives up to MAX_BATCH datagrams per recvmmsg call into a buffer kept for the socket's life."""

    def __init__(self, sock: socket.socket, slot: int = MAX_DATAGRAM) -> None:
        self.fd = sock.fileno()
        self.slot = slot
        self._messages = _vector(MAX_BATCH)
        self._base = ctypes.addressof(self._messages)
        # Pages of the buffer that no datagram ever reaches are never touched, so never allocated.
        self._buffer = ctypes.create_string_buffer(slot * MAX_BATCH)
        self.view = memoryview(self._buffer).cast("B")
        start = ctypes.addressof(self._buffer)
        for index, message in enumerate(self._messages):
            iovec = message.header.iov
            _Iovec.from_address(iovec).base = start + index * slot
            _Iovec.from_address(iovec).length = slot
        self._header_view = memoryview(self._messages).cast("B")
        self._lengths: dict[int, struct.Struct] = {}

    def receive(self, count: int = MAX_BATCH, ipv4_payloads: bool = False) -> list[bytes]:
        """Up to `count` datagrams that are queued now (none: an empty list), as bytes. A datagram
        longer than the slot (it cannot be, for IPv4 and a 64 KiB slot) is left out. With
        `ipv4_payloads` (a raw IPv4 socket, which hands over the IP header too) each is the
        payload, as `ipv4_payload` gives it, cut from the buffer in one copy; a datagram that
        function refuses is left out."""
        while True:
            result = _recvmmsg(self.fd, self._base, count, MSG_DONTWAIT, None)
            if result >= 0:
                break
            error = ctypes.get_errno()
            if error == errno.EINTR:
                continue
            if error in (errno.EAGAIN, errno.EWOULDBLOCK):
                return []
            raise OSError(error, f"recvmmsg: {errno.errorcode.get(error, error)}")
        layout = self._lengths.get(result)
        if layout is None:  # each message's length and flags, in one unpack
            pad = _MMSGHDR_SIZE - _LENGTH_OFFSET - 4
            layout = self._lengths[result] = struct.Struct(
                "=" + f"{_FLAGS_OFFSET}xi{_LENGTH_OFFSET - _FLAGS_OFFSET - 4}xI{pad}x" * result)
        fields = layout.unpack_from(self._header_view)
        view, slot = self.view, self.slot
        out: list[bytes] = []
        append = out.append
        for index in range(result):
            flags, length = fields[2 * index], fields[2 * index + 1]
            if flags & MSG_TRUNC:
                continue
            start = index * slot
            if not ipv4_payloads:
                append(view[start : start + length].tobytes())
            elif (  # the common header (ipv4_payload's fast path): 20 bytes, no fragment, whole
                length >= 20
                and view[start] == 0x45
                and not view[start + 6] & 0x3F
                and not view[start + 7]
                and view[start + 2] << 8 | view[start + 3] == length
            ):
                append(view[start + 20 : start + length].tobytes())
            else:
                try:
                    append(ipv4_payload(view[start : start + length].tobytes()))
                except MalformedPacket:
                    continue
        return out
