"""One IKEv2 peer's configuration, as a lesson file or a test gives it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from ikelab.crypto.names import ProposalSpec
from ikelab.wire.ikev2_constants import IdType


# Read once for from_wire (every IKE_AUTH): an enum member read from its class is a Python-level lookup.
_ADDRESS_TYPES = (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR)
_NAME_TYPES = (IdType.ID_FQDN, IdType.ID_RFC822_ADDR)


@dataclass(frozen=True)
class Identity:
    """An IKE identity, parsed the way strongSwan reads `id = ...`."""

    id_type: int
    data: bytes
    text: str

    @classmethod
    def parse(cls, text: str) -> "Identity":
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            addr = None
        if addr is not None:
            kind = IdType.ID_IPV4_ADDR if addr.version == 4 else IdType.ID_IPV6_ADDR
            return cls(kind, addr.packed, text)
        if "=" in text:
            from ikelab.pki.validation import dn_der

            return cls(IdType.ID_DER_ASN1_DN, dn_der(text), text)
        if "@" in text and not text.startswith("@"):
            return cls(IdType.ID_RFC822_ADDR, text.encode(), text)
        name = text[1:] if text.startswith("@") else text
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"identity {text!r} is neither an IP address, an FQDN nor an email address")
        return cls(IdType.ID_FQDN, name.encode(), text)

    @classmethod
    def from_wire(cls, id_type: int, data: bytes) -> "Identity":
        if id_type in _ADDRESS_TYPES and len(data) in (4, 16):
            return cls(id_type, data, str(ipaddress.ip_address(data)))
        if id_type in _NAME_TYPES:
            return cls(id_type, data, data.decode("utf-8", "replace"))
        if id_type == IdType.ID_DER_ASN1_DN:
            from ikelab.pki.validation import format_dn

            try:
                return cls(id_type, data, format_dn(data))
            except ValueError:
                pass
        return cls(id_type, data, data.hex())

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RetransmitPolicy:
    """Request retransmission (RFC 7296 §2.1): timeout * base**n after the n-th try."""

    timeout: float = 2.0
    base: float = 1.8
    tries: int = 4  # retransmissions after the first send

    def delay(self, attempt: int) -> float:
        return self.timeout * self.base**attempt


@dataclass(frozen=True)
class Ikev2Config:
    name: str  # "left" / "right": names the peer in the trace
    local_id: Identity
    psk: bytes
    ike_proposals: tuple[ProposalSpec, ...]
    esp_proposals: tuple[ProposalSpec, ...]
    local_ts: tuple[str, ...]  # networks this side protects, e.g. "198.51.100.0/24"
    remote_ts: tuple[str, ...]
    remote_id: Identity | None = None  # None accepts any identity the PSK authenticates
    child_name: str = "net"
    retransmit: RetransmitPolicy = RetransmitPolicy()  # frozen: one default shared by every configuration
    nat_detection: bool = True
    force_encap: bool = False  # pretend to be behind a NAT so ESP is UDP-encapsulated (strongSwan's encap)
    ike_port: int = 500  # where an initiator starts: 500, or 4500 with the non-ESP marker (RFC 7296 §2.23)
    # Lifetimes on the run's clock, counted from when the SA was set up; None never rekeys.
    rekey_child_after: float | None = None
    rekey_ike_after: float | None = None
    liveness_every: float | None = None  # an empty INFORMATIONAL when this long has passed
    # Behind a NAT: a one-byte keepalive on port 4500 this often (RFC 3948 §2.3 suggests 20 s); None: never.
    nat_keepalive_every: float | None = 20.0
    cookie_threshold: int | None = None  # half-open IKE SAs above which a responder demands a COOKIE
    # Certificates (auth = "pubkey"): our certificate and key, and the CAs we trust for the peer's.
    auth: str = "psk"
    certificate: Any = None  # cryptography x509.Certificate
    private_key: Any = None
    intermediates: tuple = ()
    trusted_cas: tuple = ()
    signature: str = "auto"  # "auto", "classic" (methods 1/9/10/11) or "rfc7427" (method 14)
    # When "now" is for certificate validity: the run's clock counts from here (None: the wall clock).
    clock_origin: dt.datetime | None = None
    # IKE fragmentation (RFC 7383): offered in IKE_SA_INIT; used when both offer it. An encrypted
    # message whose IP datagram would exceed fragment_size bytes then goes out as SKF fragments.
    fragmentation: bool = True
    fragment_size: int = 1280
