"""One UDP port 4500, two readers: IKE (the stepper) and ESP-in-UDP (the namespace's ESP worker).

The kernel splits them for us: both sockets join one SO_REUSEPORT group, and a classic BPF program
picks the socket by the first four bytes of the UDP payload. Zero is the non-ESP marker (RFC 3948):
IKE, socket 0 (bound first, by the lab). Anything else is an ESP SPI: socket 1 (the worker). A
one-byte NAT keepalive cannot be read as four bytes; the load fails, the program returns 0 and the
stepper skips it.
"""

from __future__ import annotations

import ctypes
import socket

SO_ATTACH_REUSEPORT_CBPF = 51


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# BPF_LD|BPF_W|BPF_ABS [0]; BPF_JMP|BPF_JEQ|BPF_K #0 ? ret 0 : ret 1
PROGRAM = [
    (0x20, 0, 0, 0),  # A = first 32-bit word of the UDP payload
    (0x15, 0, 1, 0),  # if A == 0 (the non-ESP marker) fall through, else skip one
    (0x06, 0, 0, 0),  # return 0: the IKE socket
    (0x06, 0, 0, 1),  # return 1: the ESP worker's socket
]


def steer_esp_in_udp(sock: socket.socket) -> None:
    """Attach the program to the group `sock` belongs to (it must have SO_REUSEPORT set)."""
    filters = (_SockFilter * len(PROGRAM))(*[_SockFilter(*ins) for ins in PROGRAM])
    prog = _SockFprog(len(PROGRAM), filters)
    # The kernel copies the program during setsockopt, so the ctypes buffers may go afterwards.
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(prog))
    del filters


def join_group(address: str, port: int = 4500) -> socket.socket:
    """The ESP worker's socket: joins the group as index 1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address, port))
    return sock
