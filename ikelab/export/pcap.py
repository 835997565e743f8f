"""Annotated pcapng: every IKE datagram of the trace, each carrying comments that explain it.

Frames are built from the exact bytes the peers sent (scapy does the Ethernet/IP/UDP framing and
the pcapng writing). Timestamps are the run's clock from a fixed epoch, so a seeded run gives a
byte-identical file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcapng

from ikelab.esp.udp_encap import KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER
from ikelab.trace import ChildSaEvent, Ikev1MessageEvent, MessageEvent, NoteEvent, Trace

EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z: the virtual clock's zero in captures
NAMES = {"left": 1, "right": 2}


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def _mac(peer: str) -> str:
    return f"02:00:00:00:00:{NAMES.get(peer, 9):02x}"


def wire_messages(trace: Trace) -> list[MessageEvent]:
    """The datagrams that crossed the wire, once each: what a peer sent or sent again."""
    return [e for e in trace.of(MessageEvent) if e.direction in ("sent", "retransmitted")]


def keepalives_sent(trace: Trace) -> list[NoteEvent]:
    """The NAT keepalives a peer sent (they are notes in the trace: no IKE message)."""
    return [e for e in trace.of(NoteEvent) if e.detail.get("nat_keepalive") and "src" in e.detail]


def keepalive_comments(sender: str = "") -> list[str]:
    who = f" from {sender}" if sender else ""
    return [f"NAT keepalive{who}: the single byte 0xFF on UDP 4500 (RFC 3948 §2.3), no non-ESP marker",
            "Sent by the side behind a NAT so the NAT keeps its port mapping while nothing else flows; "
            "the receiver ignores it."]


def keepalive_frame(event: NoteEvent, receiver: str):
    (src, sport), (dst, dport) = _split(event.detail["src"]), _split(event.detail["dst"])
    ip = IP(src=src, dst=dst, id=0, flags="DF") if ipaddress.ip_address(src).version == 4 else IPv6(src=src, dst=dst)
    return Ether(src=_mac(event.peer), dst=_mac(receiver)) / ip / UDP(sport=sport, dport=dport) / Raw(KEEPALIVE)


def frame(event: MessageEvent, receiver: str):
    (src, sport), (dst, dport) = _split(event.src), _split(event.dst)
    ip = IP(src=src, dst=dst, id=0, flags="DF") if ipaddress.ip_address(src).version == 4 else IPv6(src=src, dst=dst)
    # On port 4500 IKE travels behind the four-byte non-ESP marker (RFC 3948).
    payload = NON_ESP_MARKER + event.data if NAT_T_PORT in (sport, dport) else event.data
    return Ether(src=_mac(event.peer), dst=_mac(receiver)) / ip / UDP(sport=sport, dport=dport) / Raw(payload)


def message_label(event: MessageEvent) -> str:
    """"IKE_SA_INIT request" for IKEv2, "Main Mode message 5" for IKEv1: what lessons' steps match."""
    if isinstance(event, Ikev1MessageEvent):
        return event.label
    return f"{event.exchange} {'response' if event.is_response else 'request'}"


def comments(event: MessageEvent, narrative: str = "") -> list[str]:
    table = "ikev1_decryption_table" if event.ike_version == 1 else "ikev2_decryption_table"
    where = "" if event.ike_version == 1 else f", message ID {event.message_id}"
    lines = [
        f"{message_label(event)}{where}, from {event.peer}"
        + (" (retransmission)" if event.direction == "retransmitted" else "")
        + f": {event.summary}"
    ]
    if event.protection.startswith("encrypted"):
        lines.append(f"Protection: {event.protection}; keys in {table} beside this capture.")
    else:
        lines.append("Protection: none, this message travels in the clear.")
    payload_fields = [f for f in (event.tree.children if event.tree else []) if f.name != "Header"]
    payload_fields += event.inner_tree or []
    for f in payload_fields:
        if f.note:
            lines.append(f"{f.name}: {f.note}")
    if narrative:
        lines.append("Lesson: " + " ".join(narrative.split()))
    return lines


def _narrative(event: MessageEvent, narratives: dict[str, str]) -> str:
    return narratives.get(message_label(event), "") if event.direction == "sent" else ""


def esp_comments(spi: bytes, seq: int, trace: Trace, encapsulated: bool = False) -> list[str]:
    for e in trace.of(ChildSaEvent):
        for direction in (e.outbound, e.inbound):
            if direction["spi"] == spi.hex():
                return [
                    f"ESP{' in UDP (RFC 3948)' if encapsulated else ''}, SPI 0x{spi.hex()}, sequence number {seq}: "
                    f"Child SA '{e.name}' {direction['src']} -> {direction['dst']}",
                    f"Encrypted with {direction['cipher']}" + (f", integrity by {direction['integrity']}" if direction["integrity"] else "")
                    + "; keys in esp_sa beside this capture (KEYMAT = prf+(SK_d, Ni | Nr)).",
                    f"Inside: a packet between {', '.join(e.local_ts)} and {', '.join(e.remote_ts)} (tunnel mode).",
                ]
    return [f"ESP, SPI 0x{spi.hex()}, sequence number {seq}: no Child SA of this run has this SPI"]


def annotate_captured(source: Path, path: Path, trace: Trace, narratives: dict[str, str] | None = None) -> int:
    """Add comments to a real capture (tcpdump on the lab's veth) and write it as pcapng."""
    from scapy.utils import rdpcap

    narratives = narratives or {}
    by_data = {}
    for event in wire_messages(trace):
        by_data.setdefault(event.data, event)
    packets = list(rdpcap(str(source)))
    for packet in packets:
        lines: list[str] = []
        udp = bytes(packet[UDP].payload) if packet.haslayer(UDP) else b""
        if NAT_T_PORT in ((packet[UDP].sport, packet[UDP].dport) if udp else ()) and udp.startswith(NON_ESP_MARKER):
            udp = udp[len(NON_ESP_MARKER):]
        if udp in by_data:
            event = by_data.pop(udp)
            lines = comments(event, _narrative(event, narratives))
        elif udp == KEEPALIVE and NAT_T_PORT in (packet[UDP].sport, packet[UDP].dport):
            lines = keepalive_comments()
        elif udp and len(udp) >= 8 and NAT_T_PORT in (packet[UDP].sport, packet[UDP].dport):
            lines = esp_comments(udp[:4], int.from_bytes(udp[4:8], "big"), trace, encapsulated=True)
        elif packet.haslayer(IP) and packet[IP].proto == 50:
            esp = bytes(packet[IP].payload)
            if len(esp) >= 8:
                lines = esp_comments(esp[:4], int.from_bytes(esp[4:8], "big"), trace)
        packet.comments = [line.encode() for line in lines] or None
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcapng(str(path), packets)
    return len(packets)


def write_pcapng(path: Path, trace: Trace, narratives: dict[str, str] | None = None) -> int:
    """Write the capture; `narratives` maps "IKE_SA_INIT request" to the lesson's text for it."""
    narratives = narratives or {}
    packets = []
    keepalives = {e.seq for e in keepalives_sent(trace)}
    sent = {e.seq for e in wire_messages(trace)}
    for event in (e for e in trace if e.seq in sent or e.seq in keepalives):
        receiver = "right" if event.peer == "left" else "left"
        if event.seq in keepalives:
            packet = keepalive_frame(event, receiver)
            packet.comments = [line.encode() for line in keepalive_comments(event.peer)]
        else:
            packet = frame(event, receiver)
            packet.comments = [line.encode() for line in comments(event, _narrative(event, narratives))]
        packet.time = EPOCH + event.time
        packets.append(packet)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcapng(str(path), packets)
    return len(packets)
