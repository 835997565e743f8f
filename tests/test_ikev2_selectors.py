"""Traffic selector checks: the initiator's containment test agrees with intersecting and comparing."""

import itertools

from ikelab.ikev2 import selectors
from ikelab.wire.ikev2 import TrafficSelector

V4, V6 = 7, 8  # TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE


def _selectors():
    addresses = [bytes([10, 0, 0, n]) for n in (1, 5, 9)]
    for ts_type, protocol, (start_port, end_port), (first, last) in itertools.product(
        (V4, V6), (0, 6, 17), ((0, 65535), (80, 80), (1000, 2000), (443, 80)), itertools.product(addresses, repeat=2)
    ):
        if ts_type == V6:
            first, last = bytes(12) + first, bytes(12) + last
        yield TrafficSelector(ts_type, protocol, start_port, end_port, first, last)


def test_inside_is_what_intersecting_and_comparing_says():
    every = list(_selectors())  # empty ranges included (ports 443-80, addresses backwards)
    for inner, outer in itertools.product(every, repeat=2):
        assert selectors._inside(inner, outer) == (selectors._intersect(inner, outer) == inner), (inner, outer)


def test_covered_needs_every_inner_selector_inside_one_outer():
    wide = selectors.from_network("10.0.0.0/24")
    host, other = selectors.from_network("10.0.0.5"), selectors.from_network("10.0.1.5")
    assert selectors.covered([host], [wide])
    assert not selectors.covered([host, other], [wide])
    assert not selectors.covered([wide], [host])
