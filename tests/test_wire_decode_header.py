"""decode_header (the engine's routing look at a datagram) gives the header the full decoder reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.wire.ikev2_decode import _read_header, decode_header
from ikelab.wire.reader import Reader


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=28, max_size=64))
def test_decode_header_matches_the_full_decoders_header(data):
    assert decode_header(data) == _read_header(Reader(data, context="IKE header"))
