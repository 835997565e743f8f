"""The engine decodes without trees (tree=False): the same messages and payloads as the full
decoder, and for malformed input the very same DecodeError."""

from __future__ import annotations

import pytest
from conftest import messages, run
from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.lessons import load_lesson
from ikelab.wire.errors import DecodeError
from ikelab.wire.ikev2 import decode_message, decode_payloads

SESSIONS = [run(seed=2), run(load_lesson("ikev2-certs"), seed=2), run(load_lesson("ikev2-rekey"), seed=2)]
SENT = [m for s in SESSIONS for m in messages(s)]


def outcome(decode, *args, **kwargs):
    try:
        return "ok", decode(*args, **kwargs)
    except DecodeError as e:
        return type(e).__name__, str(e), e.payload, e.field, e.offset


def message_of(result):
    return result if result[0] != "ok" else ("ok", result[1].message)


def payloads_of(result):
    return result if result[0] != "ok" else ("ok", result[1][0])


def inner_chain(event):
    return event.plaintext[: -(event.plaintext[-1] + 1)]


@pytest.mark.parametrize("event", SENT, ids=lambda m: f"{m.peer}-{m.exchange}-{'response' if m.is_response else 'request'}")
def test_quiet_decode_gives_the_same_message(event):
    full = decode_message(event.data)
    assert decode_message(event.data, tree=False).message == full.message
    assert decode_message(event.data, tree=False).tree is None
    if event.plaintext:
        first, initiator = full.message.payloads[-1].first_inner, full.message.header.is_initiator
        quiet = decode_payloads(inner_chain(event), first, sender_is_initiator=initiator, tree=False)
        assert quiet == (decode_payloads(inner_chain(event), first, sender_is_initiator=initiator)[0], [])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SENT), st.data())
def test_quiet_decode_fails_exactly_as_the_full_decoder(event, data):
    raw = bytearray(event.data)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    mangled = bytes(raw[:cut])
    assert message_of(outcome(decode_message, mangled, tree=False)) == message_of(outcome(decode_message, mangled))
    if event.plaintext:
        chain = bytearray(inner_chain(event))
        if chain:
            chain[data.draw(st.integers(0, len(chain) - 1))] = data.draw(st.integers(0, 255))
        first = data.draw(st.sampled_from([33, 35, 36, 37, 39, 40, 41, 44, 45]))
        args = (bytes(chain[: data.draw(st.integers(0, len(chain)))]), first)
        assert payloads_of(outcome(decode_payloads, *args, tree=False)) == payloads_of(outcome(decode_payloads, *args))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=12), st.data())
def test_quiet_reader_reads_and_refuses_exactly_as_the_reader(data, draw):
    from ikelab.wire.reader import QuietReader, Reader

    limit = draw.draw(st.integers(0, len(data)))
    pos = draw.draw(st.integers(0, limit))
    method = draw.draw(st.sampled_from(["u8", "u16", "u32", "uint", "raw", "rest", "reserved"]))
    size = draw.draw(st.integers(0, 6))
    args = {"uint": ("Field", size), "raw": ("Field", size), "reserved": (size,)}.get(method, ("Field",))

    def read(cls):
        r = cls(data, context="test", pos=pos)
        r.limit = limit
        try:
            return getattr(r, method)(*args), r.pos
        except DecodeError as e:
            return str(e)

    assert read(QuietReader) == read(Reader)
