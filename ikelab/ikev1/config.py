"""One IKEv1 peer's configuration, as a lesson file or a test gives it.

The same settings as IKEv2's (identities, PSK, strongSwan proposal keywords, traffic selectors),
plus what only IKEv1 has: the phase 1 mode and explicit lifetimes, which IKEv1 negotiates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ikelab.crypto.names import ProposalSpec
from ikelab.ikev2.config import Identity, RetransmitPolicy

MODES = ("main", "aggressive")


@dataclass(frozen=True)
class Ikev1Config:
    name: str  # "left" / "right": names the peer in the trace
    local_id: Identity
    psk: bytes
    ike_proposals: tuple[ProposalSpec, ...]
    esp_proposals: tuple[ProposalSpec, ...]  # a DH group here means PFS: KE payloads in quick mode
    local_ts: tuple[str, ...]  # networks this side protects; quick mode proposes the first one
    remote_ts: tuple[str, ...]
    remote_id: Identity | None = None  # None accepts any identity the PSK authenticates
    mode: str = "main"  # phase 1: "main" (identity protection) or "aggressive"
    child_name: str = "net"
    retransmit: RetransmitPolicy = field(default_factory=RetransmitPolicy)
    nat_detection: bool = True
    force_encap: bool = False  # pretend to be behind a NAT so ESP is UDP-encapsulated (strongSwan's encap)
    ike_lifetime: int = 10800  # seconds, offered in the phase 1 SA
    esp_lifetime: int = 3600  # seconds, offered in the quick mode SA
    # Signatures (auth = "pubkey"): our certificate and key, and the CAs we trust for the peer's.
    auth: str = "psk"
    certificate: Any = None  # cryptography x509.Certificate
    private_key: Any = None
    trusted_cas: tuple = ()
    clock_origin: dt.datetime | None = None  # the run's clock counts from here for validity (None: wall clock)
    # Dead peer detection (RFC 3706): an R-U-THERE when this long has passed since the peer was last
    # heard from; unanswered ones are repeated on the retransmission schedule, then the peer is dead.
    dpd_every: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"IKEv1 mode must be 'main' or 'aggressive', not {self.mode!r}")
        if self.auth not in ("psk", "pubkey"):
            raise ValueError(f"IKEv1 auth must be 'psk' or 'pubkey', not {self.auth!r}")
        if self.auth == "pubkey" and (self.certificate is None or self.private_key is None):
            raise ValueError("IKEv1 auth 'pubkey' needs a certificate and its private key")


def config_for(spec, mode: str, credentials=None) -> Ikev1Config:
    """The IKEv1 configuration of a lesson's peer (a `lessons.PeerSpec`); `mode` is the lesson's phase 1
    mode, `credentials` the peer's certificate from the lab CA (`lab.credentials.Credentials`) if it has one."""
    pki = credentials.config_fields() if credentials is not None else {}
    return Ikev1Config(
        name=spec.name,
        local_id=spec.identity,
        remote_id=spec.remote_identity,
        psk=spec.psk,
        ike_proposals=spec.ike,
        esp_proposals=spec.esp,
        local_ts=spec.local_ts,
        remote_ts=spec.remote_ts,
        mode=mode,
        dpd_every=getattr(spec, "liveness_every", None),
        **pki,
    )
