"""Traffic selectors: which packets a Child SA protects, and narrowing (RFC 7296 §2.9).

The responder narrows what the initiator proposed to the intersection with its own policy; if
either side's intersection is empty it answers TS_UNACCEPTABLE.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from ikelab.wire.ikev2 import TrafficSelector
from ikelab.wire.ikev2_constants import TsType


# Parsing and printing addresses with `ipaddress` costs more than the rest of a Child SA's
# selector work; a peer uses the same few networks in every exchange, so the results are kept
# (by value: a TrafficSelector is mutable, so each caller gets its own).


def from_network(text: str) -> TrafficSelector:
    """"198.51.100.0/24" (or a single address) as a selector for every protocol and port."""
    return TrafficSelector(*_network_fields(text))


@lru_cache(maxsize=256)
def _network_fields(text: str) -> tuple:
    net = ipaddress.ip_network(text, strict=False)
    ts_type = TsType.TS_IPV4_ADDR_RANGE if net.version == 4 else TsType.TS_IPV6_ADDR_RANGE
    return ts_type, 0, 0, 65535, net.network_address.packed, net.broadcast_address.packed


def to_text(ts: TrafficSelector) -> str:
    """The range as a CIDR where it is one, else "first-last"; protocol and ports when narrowed."""
    return _text(ts.ts_type, ts.ip_protocol, ts.start_port, ts.end_port, ts.start_address, ts.end_address)


@lru_cache(maxsize=256)
def _text(*fields) -> str:
    ts = TrafficSelector(*fields)
    first = ipaddress.ip_address(ts.start_address)
    last = ipaddress.ip_address(ts.end_address)
    nets = list(ipaddress.summarize_address_range(first, last))
    text = str(nets[0]) if len(nets) == 1 else f"{first}-{last}"
    if ts.ip_protocol:
        text += f" proto {ts.ip_protocol}"
    if (ts.start_port, ts.end_port) != (0, 65535):
        text += f" ports {ts.start_port}-{ts.end_port}"
    return text


def to_networks(ts: TrafficSelector) -> list[str]:
    """CIDR blocks covering the range: what a datapath routes."""
    return list(_networks(ts.start_address, ts.end_address))


@lru_cache(maxsize=256)
def _networks(start: bytes, end: bytes) -> tuple[str, ...]:
    first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    return tuple(str(n) for n in ipaddress.summarize_address_range(first, last))


def _intersect(a: TrafficSelector, b: TrafficSelector) -> TrafficSelector | None:
    if a.ts_type != b.ts_type:
        return None
    if a.ip_protocol and b.ip_protocol and a.ip_protocol != b.ip_protocol:
        return None
    # One type, one address length (the decoder checks it): big-endian addresses of the same length
    # compare as bytes like the numbers they are, with no conversion to int and back.
    start, end = max(a.start_address, b.start_address), min(a.end_address, b.end_address)
    low_port, high_port = max(a.start_port, b.start_port), min(a.end_port, b.end_port)
    if start > end or low_port > high_port:
        return None
    return TrafficSelector(a.ts_type, a.ip_protocol or b.ip_protocol, low_port, high_port, start, end)


def narrow(offered: list[TrafficSelector], configured: list[TrafficSelector]) -> list[TrafficSelector]:
    """Every non-empty intersection of an offered selector with a configured one."""
    out = []
    for o in offered:
        for c in configured:
            # Inside the configured one (the usual case), a selector is its own intersection: kept as it is.
            common = o if _inside(o, c) else _intersect(o, c)
            if common is not None and common not in out:
                out.append(common)
    return out


def covered(inner: list[TrafficSelector], outer: list[TrafficSelector]) -> bool:
    """True when every selector of `inner` lies inside one of `outer` (the initiator's check)."""
    for i in inner:
        for o in outer:
            if _inside(i, o):
                break
        else:
            return False  # inside none of them
    return True


def _inside(i: TrafficSelector, o: TrafficSelector) -> bool:
    """_intersect(i, o) == i, without making the intersection: `i` is a non-empty range of `o`'s type,
    of `o`'s protocol (unless `o` allows any), and its addresses and ports lie within `o`'s."""
    return (
        i.ts_type == o.ts_type
        and (not o.ip_protocol or o.ip_protocol == i.ip_protocol)
        and o.start_address <= i.start_address <= i.end_address <= o.end_address
        and o.start_port <= i.start_port <= i.end_port <= o.end_port
    )


@dataclass  # a value; not frozen (one per Child SA: a frozen dataclass costs three times as much to build)
class Narrowed:
    tsi: list[TrafficSelector]
    tsr: list[TrafficSelector]
    reason: str

    @property
    def ok(self) -> bool:
        return bool(self.tsi) and bool(self.tsr)


def responder_narrow(tsi: list[TrafficSelector], tsr: list[TrafficSelector], local: list[str], remote: list[str]) -> Narrowed:
    """The responder's view: TSi is the initiator's side (our remote), TSr is ours (our local)."""
    ours = [from_network(n) for n in local]
    theirs = [from_network(n) for n in remote]
    new_tsi, new_tsr = narrow(tsi, theirs), narrow(tsr, ours)
    if not new_tsi:
        reason = f"TSi {', '.join(map(to_text, tsi))} does not overlap our remote {', '.join(remote)}"
    elif not new_tsr:
        reason = f"TSr {', '.join(map(to_text, tsr))} does not overlap our local {', '.join(local)}"
    elif new_tsi == tsi and new_tsr == tsr:
        reason = "accepted as proposed"
    else:
        reason = "narrowed to the intersection with our policy"
    return Narrowed(new_tsi, new_tsr, reason)
