"""Quick mode proxy IDs: the ID payloads IDci/IDcr that say which traffic an IPsec SA protects.

IKEv1 has no traffic selector payloads; it reuses ID payloads with address types (RFC 2409 §5.5,
RFC 2407 §4.6.2). There is no narrowing either: the responder accepts the initiator's pair when it
lies inside its own policy, and answers with the same IDs.
"""

from __future__ import annotations

import ipaddress

from ikelab.wire.isakmp import IdPayload
from ikelab.wire.isakmp_bodies import id_text
from ikelab.wire.isakmp_constants import IdType

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def to_id(text: str) -> IdPayload:
    """"198.51.100.0/24" as ID_IPV4_ADDR_SUBNET, a single host as ID_IPV4_ADDR (any protocol, any port)."""
    net = ipaddress.ip_network(text, strict=False)
    v4 = net.version == 4
    if net.num_addresses == 1:
        return IdPayload(IdType.ID_IPV4_ADDR if v4 else IdType.ID_IPV6_ADDR, net.network_address.packed)
    kind = IdType.ID_IPV4_ADDR_SUBNET if v4 else IdType.ID_IPV6_ADDR_SUBNET
    return IdPayload(kind, net.network_address.packed + net.netmask.packed)


def to_networks(p: IdPayload) -> list[Network] | None:
    """The networks an address-type ID covers, or None when it names no addresses (an FQDN, say)."""
    data, half = p.data, len(p.data) // 2
    try:
        if p.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            return [ipaddress.ip_network(ipaddress.ip_address(data))]
        if p.id_type in (IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV6_ADDR_SUBNET):
            address, mask = ipaddress.ip_address(data[:half]), ipaddress.ip_address(data[half:])
            return [ipaddress.ip_network(f"{address}/{mask}", strict=False)]
        if p.id_type in (IdType.ID_IPV4_ADDR_RANGE, IdType.ID_IPV6_ADDR_RANGE):
            first, last = ipaddress.ip_address(data[:half]), ipaddress.ip_address(data[half:])
            return list(ipaddress.summarize_address_range(first, last))
    except ValueError:  # a mask that is not contiguous, a range that runs backwards
        return None
    return None


def describe(p: IdPayload) -> str:
    text = id_text(p.id_type, p.data)
    if p.protocol:
        text += f" proto {p.protocol}" + (f" port {p.port}" if p.port else "")
    return text


def inside(p: IdPayload, policy: tuple[str, ...]) -> bool:
    """True when every address the ID names lies in one of the policy's networks."""
    networks = to_networks(p)
    if networks is None:
        return False
    allowed = [ipaddress.ip_network(n, strict=False) for n in policy]
    return all(any(n.version == a.version and n.subnet_of(a) for a in allowed) for n in networks)
