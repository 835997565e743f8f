"""UDP GSO/GRO for ESP-in-UDP: runs of datagrams in one system call, the same datagrams on the wire."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from conftest import needs_lab, tcp_stream_through_lab
from ikelab.lab.lab import Lab, lab_ike_sockets
from ikelab.lab.netns import Topology, in_namespace
from ikelab.lab.reuseport import join_group
from ikelab.lab.udp_gso import GRO_CMSG_SPACE, SOL_UDP, UDP_GRO, SegmentingSender, enable_gro, split


def test_split_cuts_at_the_reported_segment_size():
    size = (100).to_bytes(4, sys.byteorder)
    data = bytes(range(250))
    assert split(data, [(SOL_UDP, UDP_GRO, size)]) == [data[:100], data[100:200], data[200:]]
    assert split(data, []) == [data]  # no run: one datagram
    assert split(data[:100], [(SOL_UDP, UDP_GRO, size)]) == [data[:100]]  # exactly one segment


class _RecordingSocket:
    """Stands in for a socket to see how datagrams are grouped into calls (no kernel involved)."""

    def __init__(self, refuse_segments: bool = False) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []
        self.refuse = refuse_segments

    def sendto(self, data, address):
        self.calls.append(("sendto", [bytes(data)]))

    def sendmsg(self, buffers, ancillary, flags, address):
        if self.refuse:
            raise OSError(22, "Invalid argument")  # a kernel that cannot segment here
        (level, kind, value), = ancillary
        assert (level, kind) == (SOL_UDP, 103)
        size = int.from_bytes(value, sys.byteorder)
        assert all(len(b) == size for b in buffers[:-1]) and 0 < len(buffers[-1]) <= size
        self.calls.append(("sendmsg", [bytes(b) for b in buffers]))


def test_runs_are_equal_sized_with_at_most_one_shorter_last():
    sock = _RecordingSocket()
    datagrams = [b"a" * 100] * 3 + [b"b" * 60] + [b"c" * 100] * 2 + [b"d" * 120]
    SegmentingSender(sock).send(datagrams, ("192.0.2.2", 4500))
    assert [kind for kind, _ in sock.calls] == ["sendmsg", "sendmsg", "sendto"]
    assert [d for _, run in sock.calls for d in run] == datagrams  # all of them, in order


def test_runs_keep_to_64_segments_and_64_kib():
    sock = _RecordingSocket()
    SegmentingSender(sock).send([b"x" * 100] * 130, ("192.0.2.2", 4500))
    assert [len(run) for _, run in sock.calls] == [64, 64, 2]
    sock = _RecordingSocket()
    SegmentingSender(sock).send([b"x" * 1500] * 50, ("192.0.2.2", 4500))
    assert [len(run) for _, run in sock.calls] == [43, 7]  # 43 * 1500 <= 65507 < 44 * 1500


def test_a_refusing_kernel_gets_one_datagram_per_call():
    sock = _RecordingSocket(refuse_segments=True)
    sender = SegmentingSender(sock)
    datagrams = [bytes([i]) * 100 for i in range(5)]
    sender.send(datagrams, ("192.0.2.2", 4500))
    assert not sender.enabled
    assert sock.calls == [("sendto", [d]) for d in datagrams]


@needs_lab()
@pytest.mark.parametrize("gro", [True, False], ids=["receiver-with-udp-gro", "receiver-without"])
def test_a_run_arrives_as_the_same_datagrams(gro):
    """Across a real veth pair: a receiver with UDP_GRO gets the run whole and split() restores the
    datagrams; one without (strongSwan's socket) gets them one by one from the kernel."""
    datagrams = [b"\x00\x00\x10\x01" + os.urandom(1400) for _ in range(20)] + [b"\x00\x00\x10\x01short"]
    with Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")]) as topo:
        left, right = topo.sides["left"].namespace, topo.sides["right"].namespace
        ike = in_namespace(right, lambda: lab_ike_sockets("192.0.2.2"))  # the port 4500 group, as in the lab
        receiver = in_namespace(right, lambda: join_group("192.0.2.2"))
        sender = in_namespace(left, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        try:
            sender.bind(("192.0.2.1", 4500))
            receiver.settimeout(2)
            if gro:
                assert enable_gro(receiver)
                # room for many runs of up to 64 KiB each (the kernel reports twice what was set)
                assert receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 4 << 20
            segmenting = SegmentingSender(sender)
            segmenting.send(datagrams, ("192.0.2.2", 4500))
            assert segmenting.enabled and segmenting.runs == 1 and segmenting.segments == len(datagrams)
            got: list[bytes] = []
            calls = 0
            while len(got) < len(datagrams):
                data, ancillary, _, _ = receiver.recvmsg(65535, GRO_CMSG_SPACE)
                got += split(data, ancillary)
                calls += 1
            assert got == datagrams
            assert calls == (1 if gro else len(datagrams))
        finally:
            for sock in (*ike, receiver, sender):
                sock.close()


def _available_strongswan() -> str | None:
    from ikelab.lab.strongswan import available

    return available()


@needs_lab()
@pytest.mark.skipif(_available_strongswan() is not None, reason=f"strongSwan cannot run here: {_available_strongswan()}")
def test_strongswan_receives_the_runs_of_a_tcp_stream():
    """A TCP stream from ikelab's side to strongSwan's (libipsec, ESP-in-UDP): ikelab sends runs with
    UDP GSO, strongSwan's socket (no UDP_GRO) gets them as single datagrams and decrypts every one."""
    import hashlib

    from ikelab.lab.runs import new_session
    from ikelab.lessons import load_lesson

    lesson = load_lesson("ikev2-strongswan")
    payload = os.urandom(3 << 20)
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        assert session.outcome.ike_up.get("left"), session.outcome.failures
        received = tcp_stream_through_lab(lab, payload)
        assert received == hashlib.sha256(payload).digest()
        sent = lab.datapath.workers["left"].call(op="counters")["udp_gso"]
        assert sent["sends"] > 0 and sent["segments"] > sent["sends"]  # runs were sent, not only singles
