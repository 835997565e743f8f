"""The trace: the one record of what happened in a run.

Every view (the transcript, the JSON lines, the TUI panels, the pcapng comments, the Wireshark
tables) reads these events; none of them recomputes a protocol value.  The engines append events
as they compute, so every value here is the value a peer actually used.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, TypeVar

from ikelab.wire.fields import Field


@dataclass
class Event:
    """Base of all trace events. `peer` is "left", "right" or "lab"; `time` is the run's clock."""

    kind: ClassVar[str] = "event"
    peer: str
    time: float
    seq: int = field(default=-1, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name != "seq" and not f.name.startswith("_"):
                out[f.name] = to_jsonable(getattr(self, f.name))
        return out


class Deferred:
    """A field of an event that may also be given as a function of no arguments, called when the
    field is first read (a descriptor-typed dataclass field; it has no default). For views of what an
    event already holds, such as a message's summary or a Child SA's description: like the payload
    trees, they are written when someone looks, not for every event whether or not anyone does.
    The value itself is never callable (a text, a dict, None)."""

    # The value lives in an ordinary attribute (getattr/setattr), not in event.__dict__: asking an
    # object for its __dict__ makes CPython build one in place of the object's compact attribute
    # values, and made building a MessageEvent half as costly again (1.0 µs instead of 0.66).

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_{name}_value"

    def __get__(self, event: object, owner: type | None = None) -> Any:
        if event is None:
            raise AttributeError("no default")  # dataclass asks the class: the field stays required
        value = getattr(event, self._key)
        if callable(value):
            value = value()
            setattr(event, self._key, value)
        return value

    def __set__(self, event: object, value: Any) -> None:
        setattr(event, self._key, value)


@dataclass
class MessageEvent(Event):
    """An IKE message a peer built and sent, or received and parsed.

    The decoded payload trees are views of `data` and `plaintext` (the exact bytes on the wire and
    inside SK), decoded when first asked for, so recording a message costs no parsing.
    """

    kind: ClassVar[str] = "message"
    direction: str  # "sent", "received", "retransmitted"
    ike_version: int
    exchange: str  # "IKE_SA_INIT"
    message_id: int
    is_response: bool
    summary: str = Deferred()  # "HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP)"; see Deferred
    src: str  # "192.0.2.1:500"
    dst: str
    data: bytes
    plaintext: bytes | None = None  # decrypted SK contents (with padding), when there were any
    protection: str = ""  # "none" or which keys encrypt and authenticate it
    _decoded: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def tree(self) -> Field:
        """The whole datagram, field by field, with byte spans into `data`."""
        return self._decode()[0]

    @property
    def inner_tree(self) -> list[Field] | None:
        """The decrypted SK payloads, with byte spans into `plaintext`."""
        return self._decode()[1]

    def _decode(self) -> tuple:
        if self._decoded is None:
            from ikelab.wire.ikev2 import decode_message, decode_payloads

            decoded = decode_message(self.data)
            inner = None
            if self.plaintext:
                chain = self.plaintext[: -(self.plaintext[-1] + 1)]
                last = decoded.message.payloads[-1]
                if hasattr(last, "fragment_number"):
                    # An SKF fragment (RFC 7383) holds a slice of the payload chain, not whole payloads.
                    inner = [_fragment_field(last.fragment_number, last.total_fragments, chain)]
                else:
                    _, inner = decode_payloads(chain, last.first_inner, sender_is_initiator=decoded.message.header.is_initiator)
            self._decoded = (decoded.tree, inner)
        return self._decoded

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["tree"] = to_jsonable(self.tree)
        out["inner_tree"] = to_jsonable(self.inner_tree)
        return out


def _fragment_field(number: int, total: int, chunk: bytes) -> Field:
    return Field(
        f"Fragment {number} of {total}",
        0,
        len(chunk),
        chunk,
        display=f"{len(chunk)} bytes of the payload chain",
        note="A slice of the encrypted message's payloads; the receiver joins the slices of all fragments in order "
        "and only then decodes the payloads (RFC 7383 §2.6).",
    )


@dataclass
class DhKeyPairEvent(Event):
    kind: ClassVar[str] = "dh_keypair"
    group: int
    group_name: str
    private: bytes
    public: bytes


@dataclass
class DhSharedEvent(Event):
    kind: ClassVar[str] = "dh_shared"
    group: int
    group_name: str
    own_public: bytes
    peer_public: bytes
    shared: bytes


@dataclass
class PrfEvent(Event):
    """One prf() computation, e.g. SKEYSEED = prf(Ni | Nr, g^ir)."""

    kind: ClassVar[str] = "prf"
    label: str
    formula: str
    prf: str
    key: bytes
    data: bytes
    output: bytes


@dataclass
class PrfPlusEvent(Event):
    """prf+(K, S) with each block T(i) = prf(K, T(i-1) | S | i) and how the output was split."""

    kind: ClassVar[str] = "prf_plus"
    label: str
    formula: str
    prf: str
    key: bytes
    seed: bytes
    blocks: list[dict[str, Any]]  # {"index": i, "input": bytes, "output": bytes}
    output: bytes
    split: dict[str, bytes]  # "SK_d" -> bytes, in the order taken from the stream


@dataclass
class IkeKeysEvent(Event):
    """The keys of an IKE SA, with what Wireshark's ikev2_decryption_table needs."""

    kind: ClassVar[str] = "ike_keys"
    spi_i: bytes
    spi_r: bytes
    cipher: str  # strongSwan keyword, e.g. "aes128"
    integrity: str  # "sha256", or "" for AEAD
    prf: str
    keys: dict[str, bytes]  # "SK_d" ... "SK_pr"


@dataclass
class AuthEvent(Event):
    """The AUTH payload computation (RFC 7296 §2.15), on the sending or the verifying side."""

    kind: ClassVar[str] = "auth"
    action: str  # "computed" (for our AUTH payload) or "verified" (the peer's)
    of_role: str  # whose AUTH: "initiator" or "responder"
    method: str
    message: bytes  # RealMessage1 or RealMessage2
    nonce: bytes  # the other side's nonce
    id_body: bytes  # IDx' (the ID payload body)
    sk_p_label: str  # "SK_pi" or "SK_pr"
    maced_id: bytes  # prf(SK_px, IDx')
    signed_octets: bytes
    auth_key: bytes  # prf(shared secret, "Key Pad for IKEv2")
    expected: bytes  # what this peer computed
    received: bytes | None = None  # what the peer sent (verify only)
    ok: bool | None = None


@dataclass
class CertificateEvent(Event):
    """A peer's certificate as received and checked: subject, chain, every check and its result."""

    kind: ClassVar[str] = "certificate"
    of_role: str  # whose certificate: "initiator" or "responder"
    subject: str
    ok: bool
    reason: str
    checks: list[dict[str, Any]]
    chain: list[str]
    der: bytes


@dataclass
class ProposalEvent(Event):
    """How a proposal was chosen or refused: offered vs configured and the reason per proposal."""

    kind: ClassVar[str] = "proposal"
    protocol: str  # "IKE" or "ESP"
    offered: Sequence[str]  # a list, or a DeferredList
    configured: list[str]
    chosen: str | None = Deferred()  # see Deferred
    reasons: Sequence[str]


@dataclass
class TrafficSelectorEvent(Event):
    kind: ClassVar[str] = "traffic_selectors"
    offered_tsi: list[str]
    offered_tsr: list[str]
    local: list[str]
    remote: list[str]
    chosen_tsi: list[str]
    chosen_tsr: list[str]
    reason: str


@dataclass
class ChildSaEvent(Event):
    """A Child SA installed or deleted, with both directions' SPIs and keys."""

    kind: ClassVar[str] = "child_sa"
    action: str  # "installed" / "deleted"
    name: str
    mode: str
    protocol: str
    algorithms: str
    inbound: dict[str, Any] = Deferred()  # EspSa.describe(); see Deferred
    outbound: dict[str, Any] = Deferred()
    local_ts: list[str]
    remote_ts: list[str]


@dataclass
class IkeSaEvent(Event):
    """A change of IKE SA state: established, failed, deleted."""

    kind: ClassVar[str] = "ike_sa"
    state: str
    spi_i: bytes
    spi_r: bytes
    algorithms: str
    reason: str = ""


class DeferredList(Sequence):
    """A list made from immutable inputs when first read. For texts that are only ever shown, such
    as the `ip xfrm` equivalent of every Child SA install: a run nobody looks at (a benchmark) does
    not format them, and whoever reads them (transcript, JSON, TUI) gets the same list."""

    def __init__(self, make: Callable[[], list]) -> None:
        self._make: Callable[[], list] | None = make
        self._items: list = []

    def _list(self) -> list:
        if self._make is not None:
            self._items, self._make = self._make(), None
        return self._items

    def __getitem__(self, index):
        return self._list()[index]

    def __len__(self) -> int:
        return len(self._list())

    def __eq__(self, other: object) -> bool:
        return self._list() == (list(other) if isinstance(other, Sequence) else other)

    def __repr__(self) -> str:
        return repr(self._list())


@dataclass
class CommandEvent(Event):
    """Commands of the lab: run for real (`executed`), or shown as the equivalent a student could type."""

    kind: ClassVar[str] = "commands"
    purpose: str
    commands: list[str] | DeferredList
    executed: bool


@dataclass
class PingEvent(Event):
    """One line of the live ping, and the ESP counters of both peers at that moment."""

    kind: ClassVar[str] = "ping"
    line: str
    counters: dict[str, Any] = field(default_factory=dict)


@dataclass
class NoteEvent(Event):
    """Anything else a student should see: a dropped datagram and why, a retransmission, a failure."""

    kind: ClassVar[str] = "note"
    level: str  # "info", "warning", "error"
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


E = TypeVar("E", bound=Event)


class Trace:
    """An ordered list of events from both peers (and the lab)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()  # the lab's live stage emits from a second thread

    def emit(self, event: E) -> E:
        events, lock = self.events, self._lock
        lock.acquire()  # acquire and release: half the cost of `with` here, and emit runs a few dozen times a handshake
        try:
            event.seq = len(events)
            events.append(event)
        finally:
            lock.release()
        return event

    def extend(self, events: list[Event]) -> None:
        """Append events in their order, numbered as emit numbers each: all of them under one lock."""
        lock = self._lock
        lock.acquire()
        try:
            seq = len(self.events)
            for event in events:
                event.seq = seq
                seq += 1
            self.events.extend(events)
        finally:
            lock.release()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of(self, cls: type[E], peer: str | None = None) -> list[E]:
        return [e for e in self.events if isinstance(e, cls) and (peer is None or e.peer == peer)]


def to_jsonable(value: Any) -> Any:
    """Bytes become hex strings, fields and events become dicts, enums their integer value."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Field):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, DeferredList)):
        return [to_jsonable(v) for v in value]
    return value


# --- IKEv1 (RFC 2409): what IKEv2's events do not cover ---------------------------------------


@dataclass
class Ikev1MessageEvent(MessageEvent):
    """An ISAKMP message; as MessageEvent, but its trees come from the ISAKMP codec.

    `plaintext` is the decrypted payload chain with its padding, when the message was encrypted.
    IKEv1 has no request/response pairs, so `number` counts the messages of the exchange from 1
    ("Main Mode message 5"); `is_response` is true for the even ones.
    """

    number: int = 0

    @property
    def label(self) -> str:
        return f"{self.exchange} message {self.number}"

    def _decode(self) -> tuple:
        if self._decoded is None:
            from ikelab.wire.isakmp import decode_message, decode_payloads

            decoded = decode_message(self.data)
            inner = None
            if self.plaintext is not None:
                inner = decode_payloads(self.plaintext, decoded.message.header.next_payload).fields
            self._decoded = (decoded.tree, inner)
        return self._decoded


@dataclass
class Ikev1HashEvent(Event):
    """An IKEv1 HASH value (HASH_I, HASH_R, HASH(1), HASH(2), HASH(3)) with every input of its prf.

    `action` is "computed" for the hash this peer sends and "verified" for the peer's, which also
    records what arrived and whether it matched.
    """

    kind: ClassVar[str] = "ikev1_hash"
    label: str  # "HASH_I"
    formula: str  # "HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)"
    prf: str
    key_label: str  # "SKEYID" or "SKEYID_a"
    key: bytes
    parts: dict[str, bytes]  # the inputs, in the order they were concatenated
    output: bytes
    action: str
    received: bytes | None = None
    ok: bool | None = None


@dataclass
class Ikev1IvEvent(Event):
    """The CBC IV of an encrypted IKEv1 message: hashed at the start of a phase or exchange, else the
    last ciphertext block of the message before it (RFC 2409 appendix B)."""

    kind: ClassVar[str] = "ikev1_iv"
    label: str  # "phase 1 IV", "IV of quick mode 0x0a190a17"
    formula: str
    inputs: dict[str, bytes]
    output: bytes


@dataclass
class Ikev1KeysEvent(Event):
    """The keys of an ISAKMP SA, with what Wireshark's ikev1_decryption_table needs (CKY-I, Ka)."""

    kind: ClassVar[str] = "ikev1_keys"
    cky_i: bytes
    cky_r: bytes
    cipher: str  # strongSwan keyword, e.g. "aes128"
    hash: str  # "sha256"
    keys: dict[str, bytes]  # "SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e", "Ka", "IV"
