"""The ESP worker: its integer traffic-selector check, and TCP through a real tunnel - the receiver
merges segments (GRO) while every ESP packet on the veth still carries one standard inner packet,
as the sender's kernel made it, with valid checksums, inside the MTUs."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
from conftest import lesson_with, needs_lab, tcp_stream_through_lab
from scapy.layers.inet import IP, TCP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.utils import rdpcap

from ikelab.lab.esp_worker import Inbound, Selectors
from ikelab.lab.lab import Lab
from ikelab.lab.session import Session
from ikelab.trace import ChildSaEvent


def ipv4(src: str, dst: str) -> bytes:
    return bytes(IP(src=src, dst=dst) / (b"x" * 8))


def test_selectors_are_integer_ranges():
    selectors = Selectors(["198.51.100.0/24", "203.0.113.7/32", "2001:db8::/32"])
    assert socket.inet_aton("198.51.100.255") in selectors
    assert socket.inet_aton("198.51.101.0") not in selectors
    assert socket.inet_aton("203.0.113.7") in selectors and socket.inet_aton("203.0.113.8") not in selectors
    assert socket.inet_pton(socket.AF_INET6, "2001:db8:ffff::1") in selectors
    assert socket.inet_pton(socket.AF_INET6, "2001:db9::1") not in selectors


def test_inbound_policy_checks_source_and_destination_and_caches():
    entry = Inbound(None, Selectors(["198.51.100.0/24"]), Selectors(["203.0.113.0/24"]))
    assert entry.allows(ipv4("198.51.100.1", "203.0.113.1"))
    assert not entry.allows(ipv4("198.51.100.1", "192.0.2.1"))  # destination outside
    assert not entry.allows(ipv4("10.0.0.1", "203.0.113.1"))  # source outside
    assert entry.verdicts == {
        socket.inet_aton("198.51.100.1") + socket.inet_aton("203.0.113.1"): True,
        socket.inet_aton("198.51.100.1") + socket.inet_aton("192.0.2.1"): False,
        socket.inet_aton("10.0.0.1") + socket.inet_aton("203.0.113.1"): False,
    }
    assert not entry.allows(b"\x45" + bytes(10))  # too short to hold addresses
    v6 = Inbound(None, Selectors(["2001:db8:1::/48"]), Selectors(["2001:db8:2::/48"]))
    header = bytes.fromhex("6000000000003b40")
    inside = header + socket.inet_pton(socket.AF_INET6, "2001:db8:1::1") + socket.inet_pton(socket.AF_INET6, "2001:db8:2::9")
    assert v6.allows(inside) and not v6.allows(inside[:8] + inside[24:40] + inside[8:24])


SCAPY_CIPHERS = {"aes128": "AES-CBC", "aes128gcm16": "AES-GCM"}
SCAPY_AUTH = {"sha256": "SHA2-256-128", None: None}


def scapy_sa(direction: dict) -> SecurityAssociation:
    return SecurityAssociation(
        ESP,
        spi=int(direction["spi"], 16),
        crypt_algo=SCAPY_CIPHERS[direction["cipher_name"]],
        crypt_key=bytes.fromhex(direction["encryption_key"]),
        auth_algo=SCAPY_AUTH[direction["integrity_name"]],
        auth_key=bytes.fromhex(direction["integrity_key"]) if direction["integrity_key"] else None,
        tunnel_header=IP(src=direction["src"], dst=direction["dst"]),
    )


def checksums_valid(packet: bytes) -> bool:
    parsed, rebuilt = IP(packet), IP(packet)
    del rebuilt.chksum
    if parsed.haslayer(TCP):
        del rebuilt[TCP].chksum
    rebuilt = IP(bytes(rebuilt))
    return parsed.chksum == rebuilt.chksum and (not parsed.haslayer(TCP) or parsed[TCP].chksum == rebuilt[TCP].chksum)


@needs_lab()
@pytest.mark.parametrize("esp", ["aes128-sha256", "aes128gcm16"])
def test_tcp_through_the_tunnel_is_merged_on_receive_and_standard_on_the_wire(tmp_path, esp):
    lesson = lesson_with(both={"esp": esp})
    capture = tmp_path / "veth.pcap"
    payload = os.urandom(2 << 20)
    with Lab(lesson, capture=capture) as lab:
        session = Session(lesson, lab.transport, seed=3, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        received = tcp_stream_through_lab(lab, payload)
        right = lab.datapath.workers["right"].call(op="counters")
        lab.stop_capture()
    assert received == hashlib.sha256(payload).digest()
    assert right["gro"]["segments"] > 2 * right["gro"]["packets"] > 0, right["gro"]  # merged, often

    child = session.trace.of(ChildSaEvent, "left")[0]
    sas = {int(d["spi"], 16): scapy_sa(d) for d in (child.outbound, child.inbound)}
    esp_packets = [p for p in rdpcap(str(capture)) if p.haslayer(ESP)]
    assert len(esp_packets) > 300  # tcpdump may not keep up with all of them; it need not
    full = 0
    for packet in esp_packets:
        assert len(packet[IP]) <= 1500  # the outer packet fits the veth, never fragmented
        assert packet[IP].flags.MF == 0 and packet[IP].frag == 0
        inner = bytes(sas[packet[ESP].spi].decrypt(packet[IP]))
        assert len(inner) <= 1400  # one inner packet of at most the TUN MTU per ESP packet
        assert checksums_valid(inner), IP(inner).summary()
        full += len(inner) == 1400
    assert full > 100  # full-sized segments (MSS 1348 + 52 bytes of headers), one per ESP packet


def test_cpu_policy_keeps_to_the_busy_cpu_only_under_heavy_traffic():
    from ikelab.lab.esp_worker import BUSY_RATE, BUSY_WINDOW, QUIET_MS, CpuPolicy

    calls: list[set[int]] = []
    policy = CpuPolicy(1, idle_cpu=0, set_cpus=lambda cpus: calls.append(cpus) or True, allowed=[4, 5])
    assert calls == [{4}] and policy.timeout is None  # the quiet CPU from the start, sleeping freely
    policy._since = now = 0.0
    policy.update(False, 10, now + BUSY_WINDOW)  # a ping's worth: stays
    assert calls == [{4}]
    policy.update(False, BUSY_RATE, now + 2 * BUSY_WINDOW)  # iperf3 rates
    assert calls == [{4}, {5}] and policy.timeout == QUIET_MS
    policy.update(False, 0, now + 2.5 * BUSY_WINDOW)  # busy, still
    assert calls == [{4}, {5}]
    policy.update(True, 0, now + 2.6 * BUSY_WINDOW)  # QUIET_MS without a packet
    assert calls == [{4}, {5}, {4}] and policy.timeout is None
    floating = CpuPolicy(3, set_cpus=lambda cpus: calls.append(cpus) or True, allowed=[0, 1])
    assert calls[-1] == {0, 1} and floating.busy == {1}
    refused = CpuPolicy(1, 0, set_cpus=lambda cpus: False, allowed=[0, 1])
    refused.update(False, 10**6, refused._since + 1)
    assert not refused.enabled and not refused.on_busy_cpu


def test_a_removed_inbound_sa_takes_stragglers_for_a_grace_period(monkeypatch):
    """After a rekey the peer's Delete (IKE socket) can overtake its last ESP packets under the old
    SA (still queued in its worker): those are accepted until INBOUND_GRACE has passed, then the SPI
    is unknown. Counters no longer list the removed SA."""
    import ikelab.lab.esp_worker as esp_worker
    from test_esp_packet import IPV4, make_sa

    from ikelab.esp.packet import OutboundSa
    from ikelab.lab.esp_worker import Worker
    from ikelab.lab.sa_messages import esp_sa_to_dict

    clock = [1000.0]
    monkeypatch.setattr(esp_worker.time, "monotonic", lambda: clock[0])
    tun_read, tun_write = os.pipe()
    raw, raw_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    control, control_peer = socket.socketpair()
    try:
        worker = Worker(tun_read, raw, control)
        old = make_sa()  # inner packets 198.51.100.7 -> 203.0.113.9
        worker.handle({"op": "install", "inbound": esp_sa_to_dict(old), "outbound": esp_sa_to_dict(make_sa(spi=b"\0\0\x20\x01")),
                       "local_ts": ["203.0.113.0/24"], "remote_ts": ["198.51.100.0/24"]})
        sender = OutboundSa(old)
        assert worker.open([sender.encapsulate(IPV4)], ip=False) == [IPV4]
        worker.handle({"op": "remove", "inbound_spi": old.spi.hex(), "outbound_spi": "00002001"})
        assert worker.handle({"op": "counters"})["inbound"] == {}
        clock[0] += esp_worker.INBOUND_GRACE - 0.1
        assert worker.open([sender.encapsulate(IPV4)], ip=False) == [IPV4]  # a straggler
        clock[0] += 0.2
        assert worker.open([sender.encapsulate(IPV4)], ip=False) == []
        assert worker.dropped["unknown_spi"] == 1 and worker.retiring == {}
    finally:
        for fd in (tun_read, tun_write):
            os.close(fd)
        for s in (raw, raw_peer, control, control_peer):
            s.close()
