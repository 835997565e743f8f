"""The state of one ISAKMP SA (phase 1) and its quick mode exchanges, as one peer holds it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ikelab.crypto.dh import DhKeyPair
from ikelab.effects import Endpoint
from ikelab.esp.sa import ChildSa
from ikelab.ikev1.proposals import Phase1Algorithms
from ikelab.ikev2.config import Identity
from ikelab.ikev2.proposals import Negotiated
from ikelab.wire.isakmp import IdPayload, SaPayload, Transform


class State(enum.Enum):
    SA_SENT = "main mode: SA sent"  # initiator, after message 1
    SA_REPLIED = "main mode: SA answered"  # responder, after message 2
    KE_SENT = "main mode: KE sent"  # initiator, after message 3
    KE_REPLIED = "main mode: KE answered"  # responder, after message 4
    ID_SENT = "main mode: identity sent"  # initiator, after message 5
    AGGRESSIVE_SENT = "aggressive mode: message 1 sent"
    AGGRESSIVE_REPLIED = "aggressive mode: message 2 sent"
    ESTABLISHED = "established"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass(frozen=True)
class Sent:
    """A message as we sent it, kept to send again."""

    data: bytes
    plaintext: bytes | None
    label: str  # "Main Mode message 3"
    number: int  # 3
    summary: str
    protection: str


@dataclass
class Exchange:
    """One exchange's messages: its IV chain, numbering, and what to send again.

    IKEv1 has no request/response pairs: a message that expects an answer is sent again when the
    answer is late (`deadline`), and the last message we sent is sent again when the peer repeats
    the message it answered (`last_received`), since that means our answer was lost.
    """

    name: str  # "Main Mode", "Quick Mode", ...
    message_id: int
    iv: bytes = b""  # the CBC IV of the next encrypted message of this exchange
    iv_origin: str = ""  # where that IV came from, for the trace
    count: int = 0  # messages of this exchange so far, in both directions
    last_received: bytes = b""
    last_sent: Sent | None = None
    deadline: float | None = None  # waiting for the peer's next message until then
    attempt: int = 0

    @property
    def message_id_bytes(self) -> bytes:
        return self.message_id.to_bytes(4, "big")


@dataclass
class QuickMode:
    """One quick mode exchange (RFC 2409 §5.5), which creates a pair of IPsec SAs."""

    exchange: Exchange
    role: str  # "initiator" or "responder" of this quick mode
    ni: bytes = b""
    nr: bytes = b""
    dh: DhKeyPair | None = None  # with PFS
    g_qm: bytes | None = None  # g(qm)^xy, with PFS
    spi_i: bytes = b""  # the initiator's inbound SPI (from its SA payload)
    spi_r: bytes = b""  # the responder's inbound SPI
    offered: list[Transform] = field(default_factory=list)
    esp: Negotiated | None = None
    id_ci: IdPayload | None = None
    id_cr: IdPayload | None = None
    child: ChildSa | None = None  # responder: derived with message 2, installed on message 3

    @property
    def is_initiator(self) -> bool:
        return self.role == "initiator"


@dataclass
class Dpd:
    """Dead peer detection on one ISAKMP SA (RFC 3706): when to ask next, and what is unanswered."""

    due: float  # the next R-U-THERE (or, while one is unanswered, its repetition) is due then
    sequence: int  # the last sequence number we sent; each R-U-THERE takes the next one (§7)
    unanswered: list[int] = field(default_factory=list)  # sequence numbers still waiting for an ACK
    attempt: int = 0  # R-U-THEREs sent since the peer was last heard from
    first_sent: float | None = None  # when the first of the unanswered R-U-THEREs went out


@dataclass
class IsakmpSa:
    role: str  # "initiator" or "responder" of phase 1, which fixes the meaning of I and R
    mode: str  # "main" or "aggressive"
    cky_i: bytes
    cky_r: bytes
    local: Endpoint
    remote: Endpoint
    state: State
    exchange: Exchange  # phase 1
    ni: bytes = b""
    nr: bytes = b""
    dh: DhKeyPair | None = None
    ke_i: bytes = b""  # g^xi: the initiator's KE data
    ke_r: bytes = b""  # g^xr
    g_xy: bytes = b""
    ike: Phase1Algorithms | None = None
    offer: SaPayload | None = None  # the initiator's SA payload, as sent
    sa_i_b: bytes = b""  # its body, as HASH_I and HASH_R cover it
    peer_id_b: bytes = b""  # the peer's ID payload body (aggressive mode: it comes before its HASH)
    skeyid: bytes = b""
    skeyid_d: bytes = b""
    skeyid_a: bytes = b""
    skeyid_e: bytes = b""
    ka: bytes = b""  # the encryption key
    last_phase1_block: bytes = b""  # seeds the IV of every later exchange
    peer_id: Identity | None = None
    peer_nat_t: bool = False  # the peer sent the RFC 3947 vendor ID
    peer_dpd: bool = False  # the peer sent the RFC 3706 vendor ID: it answers R-U-THERE
    dpd: "Dpd | None" = None  # our dead peer detection, once phase 1 is up and it is configured
    nat_local: bool = False
    nat_remote: bool = False
    quick: dict[int, QuickMode] = field(default_factory=dict)  # by message ID
    children: list[ChildSa] = field(default_factory=list)

    @property
    def is_initiator(self) -> bool:
        return self.role == "initiator"

    @property
    def cookies(self) -> bytes:
        return self.cky_i + self.cky_r
