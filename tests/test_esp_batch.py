"""The datapath's batch paths (encapsulate_batch, decapsulate_batch) do exactly what the
per-packet methods do, packet for packet: same wire bytes (GCM), same inner packets, same
sequence numbers, same replay window and the same counters, whatever the batch holds."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_esp_packet import (
    CBC_SHA256,
    GCM128,
    IPV4,
    IPV6,
    PADDED,
    SUITES,
    make_sa,
    seal_by_hand,
    suite_id,
)

from ikelab.esp.packet import EspError, InboundSa, OutboundSa, SaCounters

INNER = [IPV4 + bytes(n) for n in range(0, 40, 3)] + [IPV6, IPV6 + b"z" * 1300, IPV4 + bytes(1367)]


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_encapsulate_batch_opens_to_the_same_packets(suite):
    sa = make_sa(suite)
    batch, single = OutboundSa(sa), OutboundSa(sa)
    wire = batch.encapsulate_batch(INNER) + batch.encapsulate_batch(INNER[:1])
    expected = [single.encapsulate(p) for p in INNER + INNER[:1]]
    assert [p[:8] for p in wire] == [p[:8] for p in expected]  # SPI and sequence numbers 1, 2, ...
    assert [len(p) for p in wire] == [len(p) for p in expected]
    if suite[0].is_aead:
        assert wire == expected  # the IV is the sequence number: byte for byte the same
    inbound = InboundSa(sa)
    assert [inbound.decapsulate(p) for p in wire] == INNER + INNER[:1]
    assert batch.counters == single.counters == inbound.counters
    assert batch.seq == len(INNER) + 1


def test_encapsulate_batch_leaves_out_what_is_not_ip():
    outbound = OutboundSa(make_sa())
    wire = outbound.encapsulate_batch([IPV4, b"", b"\x50" + bytes(30), IPV6])
    assert [p[4:8] for p in wire] == [(1).to_bytes(4, "big"), (2).to_bytes(4, "big")]  # none spent
    assert outbound.counters == SaCounters(packets=2, bytes=len(IPV4) + len(IPV6), malformed=2)


def test_cbc_ivs_never_repeat_across_batches_and_single_packets():
    outbound = OutboundSa(make_sa(CBC_SHA256))
    wire = []
    for size in (1, 300, 7, 1, 255, 1, 600):  # past the 256-block pool several times
        wire += outbound.encapsulate_batch([IPV4] * size) if size > 1 else [outbound.encapsulate(IPV4)]
    ivs = [p[8:24] for p in wire]
    assert len(set(ivs)) == len(ivs) == 1165


def test_injected_iv_source_is_used_by_batches_too():
    outbound = OutboundSa(make_sa(), iv_source=lambda n: bytes(n))
    assert [p[8:24] for p in outbound.encapsulate_batch([IPV4, IPV4])] == [bytes(16)] * 2


def dummy(sa, seq: int) -> bytes:
    """A dummy packet (next header 59, RFC 4303 §2.6), padded to the cipher's block size."""
    pad = -4 % sa.cipher.block_size
    return seal_by_hand(sa, seq, b"\xaa\xbb" + bytes(range(1, pad + 1)) + bytes([pad, 59]))


def variants(sa, outbound: OutboundSa, count: int) -> dict[str, list[bytes]]:
    good = [outbound.encapsulate(IPV4 + bytes(n)) for n in range(count)]
    tampered = []
    for packet in good:
        changed = bytearray(packet)
        changed[len(packet) // 2] ^= 0x10
        tampered.append(bytes(changed))
    other_spi = OutboundSa(dataclasses.replace(sa, spi=b"\x00\x00\x10\x09"))
    odd = [
        dummy(sa, count + 1),
        seal_by_hand(sa, count + 2, IPV4 + bytes(13) + bytes([13, 4])),  # bad padding
        seal_by_hand(sa, count + 3, PADDED[:-1] + b"\x06"),  # next header 6: not tunnel mode
        seal_by_hand(sa, 0, PADDED),  # sequence number 0
        other_spi.encapsulate(IPV4),  # another SA's packet
    ]
    return {"good": good, "tampered": tampered, "odd": odd, "short": [p[:n] for p in good[:3] for n in (0, 7, 30)]}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decapsulate_batch_matches_decapsulate_one_by_one(data):
    suite = data.draw(st.sampled_from([CBC_SHA256, GCM128]), label="suite")
    window = data.draw(st.sampled_from([4, 32, 64]), label="window")
    sa = make_sa(suite)
    pools = variants(sa, OutboundSa(sa), 40)
    every = [p for pool in pools.values() for p in pool]
    arrivals = data.draw(st.lists(st.sampled_from(every), min_size=1, max_size=60), label="arrivals")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=5), label="cuts"))

    one_by_one = InboundSa(sa, replay_window=window)
    expected = []
    for packet in arrivals:
        try:
            inner = one_by_one.decapsulate(packet)
        except EspError:
            continue
        if inner:
            expected.append(inner)

    batched = InboundSa(sa, replay_window=window)
    got = []
    for start, stop in zip([0, *cuts], [*cuts, len(arrivals)]):
        got += batched.decapsulate_batch(arrivals[start:stop])

    assert got == expected
    assert batched.counters == one_by_one.counters
    assert (batched.replay_window.top, batched.replay_window.bitmap) == (
        one_by_one.replay_window.top,
        one_by_one.replay_window.bitmap,
    )


@pytest.mark.parametrize("suite", [CBC_SHA256, GCM128], ids=suite_id)
def test_decapsulate_batch_counts_replays_forgeries_and_dummies(suite):
    sa = make_sa(suite)
    outbound = OutboundSa(sa)
    first, second = outbound.encapsulate(IPV4), outbound.encapsulate(IPV6)
    forged = bytearray(second)
    forged[-1] ^= 1
    inbound = InboundSa(sa)
    assert inbound.decapsulate_batch([first, bytes(forged), first, second, dummy(sa, 3), second]) == [IPV4, IPV6]
    assert inbound.counters == SaCounters(
        packets=3, bytes=len(IPV4) + len(IPV6), replay_drops=2, integrity_failures=1
    )
    assert inbound.replay_window.top == 3
