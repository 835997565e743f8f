"""The loopback transport carries real UDP datagrams between two sockets on 127.0.0.1."""

from ikelab.effects import Endpoint, Send
from ikelab.lab.transports import LoopbackTransport


def test_loopback_carries_each_datagram_to_its_destination():
    transport = LoopbackTransport(["left", "right"])
    try:
        left, right = transport.endpoint("left"), transport.endpoint("right")
        for i in range(20):  # both directions, each datagram read from the socket it was sent to
            src, dst, receiver = (left, right, "right") if i % 2 else (right, left, "left")
            data = bytes([i]) * (100 + i)
            delivery = transport.carry(Send(data, src, dst, f"datagram {i}"))
            assert (delivery.data, delivery.src, delivery.dst, delivery.receiver) == (data, src, dst, receiver)
    finally:
        transport.close()


def test_loopback_datagram_to_an_address_nobody_holds_is_lost():
    transport = LoopbackTransport(["left", "right"])
    transport.RECEIVE_TIMEOUT = 0.05
    try:
        left = transport.endpoint("left")
        nowhere = Endpoint("127.0.0.1", 9)  # discard: no socket of ours
        assert transport.carry(Send(b"lost", left, nowhere, "lost")) is None
    finally:
        transport.close()


def test_loopback_finds_a_datagram_that_was_already_waiting():
    """A datagram queued before the one carried (e.g. a retransmission) is delivered first, as the
    general path would: the socket's queue keeps its order."""
    transport = LoopbackTransport(["left", "right"])
    try:
        left, right = transport.endpoint("left"), transport.endpoint("right")
        transport.send(Send(b"first", left, right, "first"))
        assert transport.carry(Send(b"second", left, right, "second")).data == b"first"
        assert transport.receive(timeout=1).data == b"second"
    finally:
        transport.close()
