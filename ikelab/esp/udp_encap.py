"""What shares UDP port 4500 after NAT detection (RFC 3948 §2): IKE behind a zero marker, ESP, keepalives."""

from __future__ import annotations

from typing import Literal

from ikelab.esp.packet import HEADER_LENGTH, MalformedPacket

NAT_T_PORT = 4500  # IKE after NAT detection, and ESP-in-UDP (RFC 3948)
NON_ESP_MARKER = b"\0\0\0\0"  # where ESP has its SPI, which is never zero
KEEPALIVE = b"\xff"  # NAT-keepalive: one byte, keeps the NAT mapping alive (RFC 3948 §2.3)


def classify_udp_4500(payload: bytes) -> Literal["ike", "esp", "keepalive"]:
    """Which protocol a UDP payload on port 4500 carries; MalformedPacket if none."""
    if payload == KEEPALIVE:
        return "keepalive"
    if payload[:4] == NON_ESP_MARKER:
        return "ike"
    if len(payload) < HEADER_LENGTH:
        raise MalformedPacket(
            f"{len(payload)}-byte UDP payload on port 4500 is no keepalive, IKE or ESP packet"
        )
    return "esp"


def wrap_ike(ike: bytes) -> bytes:
    """An IKE message as sent on port 4500 (RFC 3948 §2.2)."""
    return NON_ESP_MARKER + ike


def unwrap_ike(payload: bytes) -> bytes:
    """The IKE message inside a port-4500 payload."""
    if payload[:4] != NON_ESP_MARKER:
        raise MalformedPacket(f"no non-ESP marker: payload starts {bytes(payload[:4]).hex()}")
    return payload[4:]
