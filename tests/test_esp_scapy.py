"""scapy's ESP (scapy.layers.ipsec) as an independent second implementation: what one side
seals, the other opens, and with the same IV and sequence number both build the same bytes."""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation

from ikelab.crypto.cipher import CIPHERS, ENCR_AES_CBC, ENCR_AES_GCM_16
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.packet import InboundSa, OutboundSa
from ikelab.esp.sa import EspSa

SPI = 0xC0DE0001
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
SCAPY_INTEGRITY = {
    "sha1": "HMAC-SHA1-96",
    "sha256": "SHA2-256-128",
    "sha384": "SHA2-384-192",
    "sha512": "SHA2-512-256",
}
SUITES = [
    (CIPHERS[ENCR_AES_CBC, bits], INTEGRITY[number])
    for bits in (128, 256)
    for number in (2, 12, 13, 14)
]
SUITES += [(CIPHERS[ENCR_AES_GCM_16, bits], None) for bits in (128, 256)]


def suite_id(suite) -> str:
    cipher, integrity = suite
    return cipher.name + (f"-{integrity.name}" if integrity else "")


def inner_packets(lengths=(0, 3, 1000)) -> list[bytes]:
    v4 = IP(src="198.51.100.7", dst="203.0.113.9") / ICMP(id=7, seq=1)
    v6 = IPv6(src="2001:db8:1::7", dst="2001:db8:2::9") / ICMPv6EchoRequest(id=7, seq=1)
    return [bytes(v4 / (b"x" * n)) for n in lengths] + [bytes(v6 / (b"y" * n)) for n in (0, 1)]


EVERY_PAD_LENGTH = range(16)  # 16 consecutive lengths meet each padding length of both block sizes


@pytest.fixture(params=SUITES, ids=suite_id)
def pair(request) -> tuple[EspSa, SecurityAssociation]:
    cipher, integrity = request.param
    sa = EspSa(
        spi=SPI.to_bytes(4, "big"),
        src=OUTER.src,
        dst=OUTER.dst,
        cipher=cipher,
        integrity=integrity,
        encryption_key=os.urandom(cipher.key_length),
        integrity_key=os.urandom(integrity.key_length) if integrity else b"",
    )
    theirs = SecurityAssociation(
        ESP,
        spi=SPI,
        crypt_algo="AES-GCM" if cipher.is_aead else "AES-CBC",
        crypt_key=sa.encryption_key,  # for GCM this includes the salt, as scapy expects
        auth_algo=SCAPY_INTEGRITY[integrity.name] if integrity else None,
        auth_key=sa.integrity_key or None,
        tunnel_header=OUTER,
    )
    return sa, theirs


def scapy_parse(inner: bytes):
    return IP(inner) if inner[0] >> 4 == 4 else IPv6(inner)


def test_scapy_opens_what_we_seal(pair):
    sa, theirs = pair
    outbound = OutboundSa(sa)  # default IVs: random for CBC, the sequence number for GCM
    for inner in inner_packets():
        esp = outbound.encapsulate(inner)
        opened = theirs.decrypt(IP(bytes(OUTER / ESP(esp))))
        assert bytes(opened) == inner


def test_we_open_what_scapy_seals(pair):
    sa, theirs = pair
    inbound = InboundSa(sa)
    packets = inner_packets()
    for inner in packets:
        sealed = theirs.encrypt(scapy_parse(inner))
        assert inbound.decapsulate(bytes(sealed[ESP])) == inner
    assert inbound.counters.packets == len(packets)
    assert inbound.counters.bytes == sum(map(len, packets))


def test_same_iv_and_sequence_number_give_the_same_bytes(pair):
    sa, theirs = pair
    iv = os.urandom(sa.cipher.iv_length)
    outbound = OutboundSa(sa, iv_source=lambda n: iv)
    for seq, inner in enumerate(inner_packets(EVERY_PAD_LENGTH), start=1):
        ours = outbound.encapsulate(inner)
        assert ours == bytes(theirs.encrypt(scapy_parse(inner), iv=iv, seq_num=seq)[ESP])
