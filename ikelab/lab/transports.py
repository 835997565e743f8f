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

from ikelab.effects import Endpoint, NatKeepalive, Send
from ikelab.esp.udp_encap import KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER

IKE_PORT = 500


@dataclass
class Delivery:
    """A datagram as it arrived: what the receiving socket saw, and whose socket it was. (A value,
    but not a frozen dataclass: one per datagram, and frozen ones cost three times as much to build.)"""

    data: bytes
    src: Endpoint
    dst: Endpoint
    receiver: str


class Transport(Protocol):
    name: str

    def endpoint(self, peer: str) -> Endpoint: ...

    def carry(self, send: Send) -> Delivery | None: ...

    def close(self) -> None: ...


class MemoryTransport:
    """Hands datagrams over in-process; a peer is found by its address, on any port (500 or 4500).

    A lesson's router is modelled the way the lab's nftables rules behave: UDP 500 dropped, and the
    left peer's address rewritten to the router's (ports kept) on the way to the right.
    """

    name = "memory"
    ROUTER_RIGHT = "192.0.2.129"

    def __init__(self, addresses: dict[str, str], *, nat: bool = False, block_udp_500: bool = False) -> None:
        self._endpoints = {peer: Endpoint(addr, IKE_PORT) for peer, addr in addresses.items()}
        self._peer_at = {addr: peer for peer, addr in reversed(addresses.items())}  # the first peer per address wins
        self.nat, self.block_udp_500 = nat, block_udp_500

    @classmethod
    def for_lesson(cls, lesson) -> "MemoryTransport":
        router = lesson.router
        return cls({p.name: p.address for p in lesson.peers}, nat=bool(router and router.nat),
                   block_udp_500=bool(router and router.block_udp_500))

    def endpoint(self, peer: str) -> Endpoint:
        return self._endpoints[peer]

    def carry(self, send: Send) -> Delivery | None:
        if self.block_udp_500 and send.dst.port == IKE_PORT:
            return None
        src, dst = send.src, send.dst
        left = self._endpoints.get("left")
        if self.nat and left is not None:
            if src.host == left.host:
                src = Endpoint(self.ROUTER_RIGHT, src.port)
            elif dst.host == self.ROUTER_RIGHT:
                dst = Endpoint(left.host, dst.port)
        receiver = self._peer_at.get(dst.host)
        if receiver is None:
            return None
        return Delivery(send.data, src, dst, receiver)

    def close(self) -> None:
        pass


class TransportError(RuntimeError):
    pass


class UdpTransport:
    """Bound UDP sockets per peer (port 500, and 4500 for NAT traversal); the stepper sends from
    one and reads whichever socket the datagram reaches (with a NAT in the path, that is not
    necessarily the address it was sent to)."""

    name = "udp"
    RECEIVE_TIMEOUT = 2.0

    def __init__(self, sockets: dict[str, list[socket.socket]]) -> None:
        self._owner: dict[Endpoint, tuple[str, socket.socket]] = {}
        for peer, socks in sockets.items():
            for sock in socks:
                self._owner[Endpoint(*sock.getsockname()[:2])] = (peer, sock)
        self._first = {peer: Endpoint(*socks[0].getsockname()[:2]) for peer, socks in sockets.items()}
        self._local = {sock: local for local, (_, sock) in self._owner.items()}  # no getsockname per datagram

    def endpoint(self, peer: str) -> Endpoint:
        return self._first[peer]

    def carry(self, send: Send) -> Delivery | None:
        sock = self.send(send)
        return None if sock is None else self.receive(exclude=sock)

    def send(self, send: Send) -> socket.socket | None:
        """Send from the socket bound to send.src; None when that is impossible (a lost datagram)."""
        owner = self._owner.get(send.src)
        if owner is None:
            return None
        sock = owner[1]
        # IKE on port 4500 goes behind the non-ESP marker; a NAT keepalive is its one byte alone.
        data = NON_ESP_MARKER + send.data if send.src.port == NAT_T_PORT and not isinstance(send, NatKeepalive) else send.data
        try:
            sock.sendto(data, tuple(send.dst))
        except OSError:
            return None  # e.g. unreachable: to the peers it is a lost datagram
        return sock

    def receive(self, exclude: socket.socket | None = None, timeout: float | None = None) -> Delivery | None:
        """The next IKE datagram (or NAT keepalive, for the peer to trace) on any socket; stray ESP is skipped."""
        socks = [s for _, s in self._owner.values() if s is not exclude]
        timeout = self.RECEIVE_TIMEOUT if timeout is None else timeout
        while True:
            ready, _, _ = select.select(socks, [], [], timeout)
            if not ready:
                return None
            sock = ready[0]
            delivery = self._delivery(sock, *sock.recvfrom(65535))
            if delivery is not None:
                return delivery

    def _delivery(self, sock: socket.socket, data: bytes, addr: tuple) -> Delivery | None:
        """What `sock` received from `addr`, as the peer sees it; None for ESP (the datapath's business)."""
        local = self._local[sock]
        if local.port == NAT_T_PORT and data != KEEPALIVE:
            if not data.startswith(NON_ESP_MARKER):
                return None
            data = data[len(NON_ESP_MARKER):]
        return Delivery(data, Endpoint(*addr[:2]), local, self._owner[local][0])

    def close(self) -> None:
        for _, sock in self._owner.values():
            sock.close()
        self._owner.clear()
        self._local.clear()


def bound_udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackTransport(UdpTransport):
    """UDP on 127.0.0.1 with ports the kernel picks (port 500 needs root): no privileges needed.
    There is no port 4500 here, so NAT traversal cannot be shown over loopback."""

    name = "loopback"

    def __init__(self, peers: list[str]) -> None:
        sockets: dict[str, list[socket.socket]] = {}
        try:
            for peer in peers:
                sockets[peer] = [bound_udp_socket("127.0.0.1", 0)]
        except OSError as e:
            for socks in sockets.values():
                for sock in socks:
                    sock.close()
            raise TransportError(f"cannot open a UDP socket on 127.0.0.1: {e}") from None
        super().__init__(sockets)

    def carry(self, send: Send) -> Delivery | None:
        """As UdpTransport.carry, but a datagram to one of our sockets is read from that socket at once.
        On 127.0.0.1 nothing rewrites addresses, and the kernel has queued the datagram by the time
        sendto returns, so one recvfrom takes it (handshake bench: a select and its socket list less
        per datagram); the general path remains for anything else."""
        sock = self.send(send)
        if sock is None:
            return None
        owner = self._owner.get(send.dst)
        if owner is not None:
            try:
                data, addr = owner[1].recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            else:
                delivery = self._delivery(owner[1], data, addr)
                if delivery is not None:
                    return delivery
        return self.receive(exclude=sock)
