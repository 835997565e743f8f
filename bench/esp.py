"""ESP throughput of ikelab's userspace datapath core: encapsulate and decapsulate 1400-byte packets.

For each algorithm prints packets/s and Mbit/s (of inner packets) for both directions, the median
of several runs, and as its last line a JSON object with those figures.
Run: .venv/bin/python bench/esp.py [--packets N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ikelab.crypto.cipher import CIPHERS, ENCR_AES_CBC, ENCR_AES_GCM_16
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.packet import InboundSa, OutboundSa
from ikelab.esp.sa import EspSa

PACKET_SIZE = 1400
SUITES = {
    "aes128-sha256": (CIPHERS[ENCR_AES_CBC, 128], INTEGRITY[12]),
    "aes128gcm16": (CIPHERS[ENCR_AES_GCM_16, 128], None),
    "aes256gcm16": (CIPHERS[ENCR_AES_GCM_16, 256], None),
}


def make_sa(name: str) -> EspSa:
    cipher, integrity = SUITES[name]
    return EspSa(
        spi=b"\xc0\x00\x02\x01",
        src="192.0.2.1",
        dst="192.0.2.2",
        cipher=cipher,
        integrity=integrity,
        encryption_key=bytes(range(cipher.key_length)),
        integrity_key=bytes(range(integrity.key_length)) if integrity else b"",
    )


def inner_packet() -> bytes:
    """A 1400-byte IPv4/UDP packet between the protected subnets (ESP reads only its version)."""
    # version 4, length 0x0578 = 1400, DF, TTL 64, UDP, checksum unset, 198.51.100.1 -> 203.0.113.1
    header = bytes.fromhex("450005780000400040110000c6336401cb007101")
    return header + bytes(PACKET_SIZE - len(header))


def one_run(name: str, count: int) -> tuple[float, float]:
    """Seconds to encapsulate, then to decapsulate, `count` packets on a fresh SA pair."""
    sa, inner = make_sa(name), inner_packet()
    outbound, inbound = OutboundSa(sa), InboundSa(sa)
    encapsulate, decapsulate = outbound.encapsulate, inbound.decapsulate
    start = time.perf_counter()
    sealed = [encapsulate(inner) for _ in range(count)]
    middle = time.perf_counter()
    for packet in sealed:
        decapsulate(packet)
    end = time.perf_counter()
    assert inbound.counters.packets == count
    return middle - start, end - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for name in SUITES:
        runs = [one_run(name, args.packets) for _ in range(args.runs)]
        figures = {}
        for direction, seconds in zip(("encapsulate", "decapsulate"), zip(*runs)):
            pps = args.packets / statistics.median(seconds)
            figures[f"{direction}_pps"] = round(pps)
            figures[f"{direction}_mbps"] = round(pps * PACKET_SIZE * 8 / 1e6, 1)
        results[name] = figures
        print(
            f"{name:15} encapsulate {figures['encapsulate_pps']:>8} pkt/s "
            f"{figures['encapsulate_mbps']:>7} Mbit/s   decapsulate {figures['decapsulate_pps']:>8} "
            f"pkt/s {figures['decapsulate_mbps']:>7} Mbit/s"
        )
    print(
        json.dumps(
            {"packet_size": PACKET_SIZE, "runs": args.runs, "packets": args.packets, **results}
        )
    )


if __name__ == "__main__":
    main()
