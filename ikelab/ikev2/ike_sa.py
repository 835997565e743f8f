"""The state of one IKE SA as one peer holds it."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ikelab.crypto.dh import DhKeyPair
from ikelab.crypto.ikev2_kdf import IkeSaKeys
from ikelab.effects import Endpoint
from ikelab.esp.sa import ChildSa
from ikelab.ikev2.config import Identity
from ikelab.ikev2.proposals import Negotiated
from ikelab.wire.ikev2 import Header, Message, Payload, Proposal


class State(enum.Enum):
    INIT_SENT = "IKE_SA_INIT sent"
    INIT_DONE = "IKE_SA_INIT done"
    AUTH_SENT = "IKE_AUTH sent"
    ESTABLISHED = "established"
    REKEYED = "rekeyed (waiting to be deleted)"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass
class Received:
    """A message that arrived, as the exchange handlers see it. (A value, but not a frozen
    dataclass: one per message, and frozen ones cost three times as much to build.)"""

    data: bytes
    message: Message
    inner: list[Payload]  # decrypted SK contents ([] for IKE_SA_INIT)
    src: Endpoint
    dst: Endpoint

    @property
    def header(self) -> Header:
        return self.message.header

    def payloads(self) -> list[Payload]:
        return self.inner if self.inner else self.message.payloads


@dataclass
class PendingRequest:
    """A request we sent and whose response we wait for; retransmitted until it arrives."""

    exchange: int
    message_id: int
    data: bytes
    plaintext: bytes | None  # the SK contents, kept so a retransmission can be shown decrypted
    label: str
    deadline: float
    on_response: Callable  # called with the engine's Received
    attempt: int = 0
    fragments: list[tuple[bytes, bytes]] = field(default_factory=list)  # (datagram, plaintext) when sent as SKF fragments
    payloads: list = field(default_factory=list)  # what it carries, to send it again on a rekeyed IKE SA


@dataclass(slots=True)  # 41 fields: past 30, an instance dict gives up its compact shared-key form (slower to build and read)
class IkeSa:
    role: str  # "initiator" or "responder": the role in IKE_SA_INIT, which fixes I/R keys
    spi_i: bytes
    spi_r: bytes
    local: Endpoint
    remote: Endpoint
    state: State
    ni: bytes = b""
    nr: bytes = b""
    dh: DhKeyPair | None = None
    shared_secret: bytes = b""
    ike: Negotiated | None = None
    keys: IkeSaKeys | None = None
    init_request: bytes = b""  # RealMessage1: signed by the initiator's AUTH
    init_response: bytes = b""  # RealMessage2: signed by the responder's AUTH
    offered_ike: list[Proposal] = field(default_factory=list)
    offered_esp: list[Proposal] = field(default_factory=list)
    child_spi: bytes = b""  # our inbound SPI for the first Child SA
    peer_id: Identity | None = None
    next_request_id: int = 0  # message ID of the next request we send
    expected_request_id: int = 0  # message ID of the next request we accept
    pending: PendingRequest | None = None
    last_response: tuple[int, bytes, bytes | None] | None = None  # (message ID, data, plaintext), sent again for a repeated request
    children: list[ChildSa] = field(default_factory=list)
    queued: deque = field(default_factory=deque)  # requests waiting for the pending one (window size 1)
    timers: list[tuple[float, str]] = field(default_factory=list)  # (when, action): rekeys, liveness
    rekeying: dict = field(default_factory=dict)  # our inbound SPI of a Child SA -> our rekey request in flight
    cookie_retries: int = 0
    peer_hashes: tuple[int, ...] | None = None  # SIGNATURE_HASH_ALGORITHMS the peer announced (RFC 7427)
    nat_local: bool = False  # our side is behind a NAT (from NAT detection)
    nat_remote: bool = False
    fragmentation: bool = False  # both sides sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)
    last_response_fragments: list[tuple[bytes, bytes]] = field(default_factory=list)  # last_response as SKF fragments
    # fragmentation.Reassembly by is_response: the fragments of a request and of a response that arrived so far
    reassembly: dict = field(default_factory=dict)
    rekeying_ike: bool = False  # our CREATE_CHILD_SA rekeying this IKE SA waits for its response
    successor: "IkeSa | None" = None  # the IKE SA that replaced this one in a rekey (and holds its Child SAs)
    # role == "initiator", fixed with the role: read for every message, where a property is a Python call
    is_initiator: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.is_initiator = self.role == "initiator"

    def current(self) -> "IkeSa":
        """This IKE SA, or the one that now holds its Child SAs if it was rekeyed (exchanges that
        started on the old IKE SA end after the rekey moved the Child SAs: RFC 7296 §2.8)."""
        sa = self
        while sa.successor is not None:
            sa = sa.successor
        return sa

    @property
    def local_spi(self) -> bytes:
        return self.spi_i if self.is_initiator else self.spi_r

    @property
    def remote_spi(self) -> bytes:
        return self.spi_r if self.is_initiator else self.spi_i

    @property
    def label(self) -> str:
        return f"{self.spi_i.hex()}_i {self.spi_r.hex()}_r"

    def sending_keys(self) -> tuple[bytes, bytes]:
        """(SK_e, SK_a) protecting what this side sends."""
        k = self.keys
        return (k.sk_ei, k.sk_ai) if self.is_initiator else (k.sk_er, k.sk_ar)

    def receiving_keys(self) -> tuple[bytes, bytes]:
        k = self.keys
        return (k.sk_er, k.sk_ar) if self.is_initiator else (k.sk_ei, k.sk_ai)
