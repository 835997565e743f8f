"""Port 4500 shared by IKE and ESP-in-UDP: the kernel steers each datagram by its first four bytes."""

from __future__ import annotations

import socket

from conftest import needs_lab
from ikelab.lab.lab import lab_ike_sockets
from ikelab.lab.netns import Topology, in_namespace
from ikelab.lab.reuseport import join_group

pytestmark = needs_lab()


def test_marker_goes_to_ike_and_esp_to_the_worker():
    with Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")]) as topo:
        left, right = topo.sides["left"].namespace, topo.sides["right"].namespace
        ike = in_namespace(right, lambda: lab_ike_sockets("192.0.2.2"))
        worker = in_namespace(right, lambda: join_group("192.0.2.2"))
        sender = in_namespace(left, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        for sock in (*ike, worker, sender):
            sock.settimeout(2)
        try:
            for payload in (b"\0\0\0\0ike message", b"\x00\x00\x10\x01esp packet", b"\xff", b"\0\0\0\0second ike"):
                sender.sendto(payload, ("192.0.2.2", 4500))
            got_ike = [ike[1].recv(100) for _ in range(3)]
            assert got_ike == [b"\0\0\0\0ike message", b"\xff", b"\0\0\0\0second ike"]
            assert worker.recv(100) == b"\x00\x00\x10\x01esp packet"
        finally:
            for sock in (*ike, worker, sender):
                sock.close()
