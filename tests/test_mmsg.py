"""sendmmsg/recvmmsg for the raw ESP socket: the same datagrams, in order, with fewer system calls."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from conftest import needs_lab, tcp_stream_through_lab
from ikelab.lab import mmsg
from ikelab.lab.netns import Topology, in_namespace

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="this C library has no sendmmsg/recvmmsg")


def test_sockaddr_is_the_kernels_layout():
    v4 = mmsg.sockaddr(("192.0.2.2", 4500))
    assert len(v4) == 16 and struct.unpack("=H", v4[:2])[0] == socket.AF_INET
    assert v4[2:4] == (4500).to_bytes(2, "big") and v4[4:8] == bytes([192, 0, 2, 2])
    v6 = mmsg.sockaddr(("2001:db8::2", 0))
    assert len(v6) == 28 and struct.unpack("=H", v6[:2])[0] == socket.AF_INET6
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::2")


def test_a_datagram_socket_pair_carries_a_batch_in_order():
    """Without a lab: a Unix datagram pair. Sending to an IPv4 address is refused there (EINVAL):
    each refused datagram is dropped and counted, as a full queue's would be, and none is sent."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        b.setblocking(False)
        receiver = mmsg.BatchReceiver(b, slot=2048)
        assert receiver.receive() == []  # nothing queued: no exception
        datagrams = [os.urandom(100 + i) for i in range(70)]
        for d in datagrams:
            a.send(d)
        got = receiver.receive()
        assert got == datagrams[: mmsg.MAX_BATCH]
        assert receiver.receive() == datagrams[mmsg.MAX_BATCH :]
        sender = mmsg.BatchSender(a)
        sender.send(datagrams[:3], ("192.0.2.2", 0))
        assert sender.errors == 3 and receiver.receive() == []
    finally:
        a.close()
        b.close()


@needs_lab()
def test_raw_esp_batches_cross_a_veth_pair_unchanged():
    """Raw ESP (protocol 50) from one namespace to another: one sendmmsg for the batch, and one
    recvmmsg takes them all, stripped of their IPv4 headers, byte for byte what was sent."""
    datagrams = [b"\x00\x00\x10\x01" + struct.pack("!I", i + 1) + os.urandom(1300 + i) for i in range(40)]
    with Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")]) as topo:
        left, right = topo.sides["left"].namespace, topo.sides["right"].namespace
        sender = in_namespace(left, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 50))
        receiver = in_namespace(right, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 50))
        try:
            receiver.setblocking(False)
            batch = mmsg.BatchSender(sender)
            batch.send(datagrams, ("192.0.2.2", 0))
            assert batch.calls == 1 and batch.errors == 0
            got: list[bytes] = []
            incoming = mmsg.BatchReceiver(receiver)
            for _ in range(200):  # the kernel delivers within the send call; allow for a slow machine
                got += incoming.receive(ipv4_payloads=True)
                if len(got) >= len(datagrams):
                    break
                time.sleep(0.01)
            assert got == datagrams
            batch.send(datagrams[:1], ("192.0.2.2", 0))  # whole IPv4 packets without ipv4_payloads
            whole = []
            for _ in range(200):
                whole = incoming.receive()
                if whole:
                    break
                time.sleep(0.01)
            assert whole[0][0] == 0x45 and whole[0][9] == 50 and whole[0][20:] == datagrams[0]
        finally:
            sender.close()
            receiver.close()


@needs_lab()
@pytest.mark.parametrize("esp", ["aes128-sha256", "aes128gcm16"])
def test_a_tcp_stream_through_the_lab_goes_in_batches_and_every_packet_decrypts(tmp_path, esp):
    """A TCP stream through the raw ESP tunnel: the workers send batches with sendmmsg, and the
    capture of the veth holds ordinary ESP packets, one per sequence number and in order, each of
    which scapy decrypts and authenticates with the negotiated keys; the stream arrives intact."""
    import hashlib

    from scapy.layers.inet import IP, TCP
    from scapy.layers.ipsec import ESP
    from scapy.utils import rdpcap

    from conftest import lesson_with
    from ikelab.lab.lab import Lab
    from ikelab.lab.session import Session
    from ikelab.trace import ChildSaEvent
    from test_lab import scapy_sa

    payload = os.urandom(400_000)
    capture = tmp_path / "veth.pcap"
    lesson = lesson_with(both={"esp": esp})
    with Lab(lesson, capture=capture) as lab:
        session = Session(lesson, lab.transport, seed=5, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        assert session.outcome.success
        received = tcp_stream_through_lab(lab, payload)
        batches = lab.datapath.workers["left"].call(op="counters")["raw_batches"]
        counters = lab.datapath.counters("left")
        time.sleep(0.2)  # the capture's last packets
        lab.stop_capture()
    assert received == hashlib.sha256(payload).digest()
    assert batches["sends"] > 0 and batches["packets"] > batches["sends"]  # batches went out in single calls
    child = session.trace.of(ChildSaEvent, "left")[0]
    sas = {int(d["spi"], 16): scapy_sa(d) for d in (child.outbound, child.inbound)}
    sent = list(counters["outbound"].values())[0]["packets"]
    esp_packets = [p for p in rdpcap(str(capture)) if p.haslayer(ESP)]
    outbound = [p for p in esp_packets if p[ESP].spi == int(child.outbound["spi"], 16)]
    # Every packet the worker counted is in the capture (tcpdump's buffer is large enough for the
    # burst, see lab.CAPTURE_BUFFER_KIB), each once and in order; the last ACKs may come after the count.
    assert sent > 100 and len(outbound) >= sent
    sequence = [p[ESP].seq for p in outbound]
    assert sequence == list(range(1, len(outbound) + 1))
    for packet in esp_packets:
        inner = sas[packet[ESP].spi].decrypt(packet[IP])  # raises if the ICV does not verify
        assert inner.haslayer(TCP) and {inner[IP].src, inner[IP].dst} == {"198.51.100.1", "203.0.113.1"}
