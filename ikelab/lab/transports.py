"""How datagrams get from one peer to the other. The stepper decides when; a transport decides how.

- `memory`: handed over in-process, addresses as the lesson gives them (tests, byte-exact replays);
- `loopback`: real UDP sockets on 127.0.0.1, no privileges needed;
- `netns` (the lab): real UDP inside two network namespaces joined by veth (lab/netns.py).
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Protocol

from ikelab.effects import Endpoint, Send

IKE_PORT = 500


@dataclass(frozen=True)
class Delivery:
    """A datagram as it arrived: what the receiving socket saw."""

    data: bytes
    src: Endpoint
    dst: Endpoint


class Transport(Protocol):
    name: str

    def endpoint(self, peer: str) -> Endpoint: ...

    def carry(self, send: Send) -> Delivery | None: ...

    def close(self) -> None: ...


class MemoryTransport:
    name = "memory"

    def __init__(self, addresses: dict[str, str]) -> None:
        self._endpoints = {peer: Endpoint(addr, IKE_PORT) for peer, addr in addresses.items()}

    def endpoint(self, peer: str) -> Endpoint:
        return self._endpoints[peer]

    def carry(self, send: Send) -> Delivery | None:
        if send.dst not in self._endpoints.values():
            return None
        return Delivery(send.data, send.src, send.dst)

    def close(self) -> None:
        pass


class TransportError(RuntimeError):
    pass


class UdpTransport:
    """One bound UDP socket per peer; the stepper sends from one and reads on the other."""

    name = "udp"
    RECEIVE_TIMEOUT = 2.0

    def __init__(self, sockets: dict[str, socket.socket]) -> None:
        self._sockets = sockets
        self._endpoints = {peer: Endpoint(*s.getsockname()[:2]) for peer, s in sockets.items()}

    def endpoint(self, peer: str) -> Endpoint:
        return self._endpoints[peer]

    def _peer_at(self, endpoint: Endpoint) -> str | None:
        return next((p for p, e in self._endpoints.items() if e == endpoint), None)

    def carry(self, send: Send) -> Delivery | None:
        sender, receiver = self._peer_at(send.src), self._peer_at(send.dst)
        if sender is None or receiver is None:
            return None
        try:
            self._sockets[sender].sendto(send.data, tuple(send.dst))
        except OSError:
            return None  # e.g. unreachable: to the peers it is a lost datagram
        sock = self._sockets[receiver]
        ready, _, _ = select.select([sock], [], [], self.RECEIVE_TIMEOUT)
        if not ready:
            return None
        data, addr = sock.recvfrom(65535)
        return Delivery(data, Endpoint(*addr[:2]), self._endpoints[receiver])

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


def bound_udp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackTransport(UdpTransport):
    """UDP on 127.0.0.1 with ports the kernel picks (port 500 needs root): no privileges needed."""

    name = "loopback"

    def __init__(self, peers: list[str]) -> None:
        sockets: dict[str, socket.socket] = {}
        try:
            for peer in peers:
                sockets[peer] = bound_udp_socket("127.0.0.1", 0)
        except OSError as e:
            for sock in sockets.values():
                sock.close()
            raise TransportError(f"cannot open a UDP socket on 127.0.0.1: {e}") from None
        super().__init__(sockets)
