"""The IKEv2 peer: a sans-I/O state machine (RFC 7296).

It takes datagrams and time, and hands back effects (datagrams to send, Child SAs to install) while
it appends everything it computes to the trace. It never touches a socket, a clock or the kernel;
randomness comes from the injected RandomSource, so a seeded run is byte-for-byte repeatable.

This module owns what every exchange shares: finding the IKE SA of a datagram, message IDs,
protection, retransmission and failure. The exchanges themselves live in `exchanges/`, one module
each, with the initiator's and the responder's side side by side (strongSwan's task model).
"""

from __future__ import annotations

import traceback
from functools import partial
from typing import Callable

from ikelab.effects import ACTIONS, ENDPOINT_TEXT, DeleteChildSa, Effect, Endpoint, IkeSaFailed, NatKeepalive, Send
from ikelab.esp.udp_encap import KEEPALIVE
from ikelab.ikev2.config import Ikev2Config
from ikelab.ikev2.ike_sa import IkeSa, PendingRequest, Received, State  # Received: the exchanges' view of a message
from ikelab.ikev2 import fragmentation
# The exchanges import this module only for type hints (and ike_sa_init for Received when it runs), so
# they are imported here once, not inside the calls that use them (each such import of a package's
# module runs importlib's Python code again).
from ikelab.ikev2.exchanges import create_child_sa, dispatch_request, ike_auth, ike_sa_init, informational  # noqa: F401
from ikelab.ikev2.protection import ProtectionError, open_sk, seal
from ikelab.rng import RandomSource
from ikelab.trace import Event, IkeSaEvent, MessageEvent, NoteEvent, Trace
from ikelab.wire.errors import DecodeError, UnsupportedCriticalPayload
from ikelab.wire.ikev2 import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    Message,
    NotifyPayload,
    Payload,
    decode_header,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ikelab.wire.ikev2_constants import ExchangeType, NotifyType, name_of
from ikelab.wire.ikev2_message import INITIATOR_FLAG, RESPONSE_FLAG  # plain ints: IntFlag's | and & run in Python



ResponseHandler = Callable[[Received], None]

# Read once: an enum member read from its class goes through a Python-level lookup (EnumType has
# __getattr__), and every message asks whether it is IKE_SA_INIT a few times.
IKE_SA_INIT = ExchangeType.IKE_SA_INIT

# MessageEvent.protection of an SK message, by who sent it
PROTECTED_BY_INITIATOR = "encrypted with SK_ei, integrity by SK_ai"
PROTECTED_BY_RESPONDER = "encrypted with SK_er, integrity by SK_ar"


class Ikev2Peer:
    def __init__(self, config: Ikev2Config, rng: RandomSource, trace: Trace, local: Endpoint) -> None:
        self.config = config
        self.rng = rng
        self.trace = trace
        self.local = local
        self.now = 0.0
        self.sas: dict[bytes, IkeSa] = {}  # by our own SPI
        self.cookie_secret = b""  # drawn when first needed (RFC 7296 §2.6)
        self._effects: list[Effect] = []
        self.spare_dh: dict = {}  # DH key pairs made ahead, by purpose (see prepare)
        # record(event): the events of a turn (one entry point's run) are kept in a list of their own and
        # handed to the trace together when the turn ends (_run), in order: a list's append for each
        # event rather than the trace's locked emit, which a handshake would call some forty times.
        self._turn: list[Event] = []
        self.record = self._turn.append

    # ----------------------------------------------------------------- entry points

    def prepare(self) -> None:
        """Work that needs no datagram, done before any arrives: the key pair of our first DH group is made."""
        ike_sa_init.prepare(self)
        self._end_turn()  # not run through _run: anything it recorded reaches the trace now, not a turn later

    def initiate(self, remote: Endpoint, now: float) -> list[Effect]:
        """Start IKE_SA_INIT towards `remote`."""
        return self._run(now, ike_sa_init.start, self, remote)

    def receive(self, data: bytes, src: Endpoint, dst: Endpoint, now: float) -> list[Effect]:
        """Process one datagram that arrived from `src` on our address `dst`."""
        return self._run(now, self._receive, bytes(data), src, dst)

    def next_timer(self) -> float | None:
        """The earliest retransmission deadline or timer of our IKE SAs; None when there is none."""
        nearest = None
        for sa in self.sas.values():  # plain loops: no comprehension (a call each) for a few SAs
            if sa.pending and (nearest is None or sa.pending.deadline < nearest):
                nearest = sa.pending.deadline
            for when, _ in sa.timers:
                if nearest is None or when < nearest:
                    nearest = when
        return nearest

    def on_timer(self, now: float) -> list[Effect]:
        return self._run(now, self._timers_due)

    def busy(self) -> bool:
        """A request of ours waits for its response (so its retransmission timer matters)."""
        for sa in self.sas.values():  # a plain loop, as next_timer
            if sa.pending:
                return True
        return False

    def established(self) -> list[IkeSa]:
        return [sa for sa in self.sas.values() if sa.state is State.ESTABLISHED]

    def act(self, action: str, now: float) -> list[Effect]:
        """Start an exchange on the first established IKE SA: "create-child", "rekey-child",
        "rekey-ike", "delete-child", "delete-ike" or "liveness" (what a lesson or the TUI asks for)."""
        return self._run(now, self._act, action)

    def _act(self, action: str, sa: IkeSa | None = None) -> None:
        sa = sa or next(iter(self.established()), None)
        if sa is None:
            self.note("warning", f"cannot {action}: no established IKE SA")
            return
        name, _, spi = action.partition(" ")  # a retry timer names its Child SA: "rekey-child <inbound SPI>"
        starters = {
            "create-child": lambda: create_child_sa.create_child(self, sa),
            "rekey-child": lambda: create_child_sa.rekey_child(self, sa, spi=spi),
            "rekey-ike": lambda: create_child_sa.rekey_ike(self, sa),
            "delete-child": lambda: informational.delete_child(self, sa),
            "delete-ike": lambda: informational.delete_ike_sa(self, sa),
            "liveness": lambda: informational.check_liveness(self, sa),
        }
        if name not in starters:
            self.note("error", f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
            return
        if sa.pending is not None:
            # It waits for the request in flight, then runs on the IKE SA that holds the Child SAs by
            # then: a rekey answered meanwhile replaces this one (RFC 7296 §2.8).
            sa.queued.append(lambda: self._act(action, sa.current()))
            return
        starters[name]()

    def start_request(self, sa: IkeSa, build: Callable[[], None]) -> None:
        """Run `build` (which sends one request) now, or after the request in flight is answered."""
        if sa.pending is None:
            build()
        else:
            sa.queued.append(build)

    def schedule(self, sa: IkeSa, after: float | None, action: str) -> None:
        if after is not None:
            sa.timers.append((self.now + after, action))

    def schedule_keepalive(self, sa: IkeSa) -> None:
        """Only the side behind a NAT keeps the NAT's mapping alive (RFC 3948 §2.3)."""
        if sa.nat_local:
            self.schedule(sa, self.config.nat_keepalive_every, "nat-keepalive")

    def _send_keepalive(self, sa: IkeSa) -> None:
        # Sent on a fixed period, even when ESP flows (RFC 3948 lets an implementation skip it then).
        self.note("info", f"NAT keepalive: one byte 0xFF from {sa.local} to {sa.remote}, so the NAT keeps our mapping (RFC 3948 §2.3)",
                  nat_keepalive=True, src=str(sa.local), dst=str(sa.remote))
        self.effect(NatKeepalive(KEEPALIVE, sa.local, sa.remote, "NAT keepalive"))
        self.schedule_keepalive(sa)

    # ----------------------------------------------------------------- helpers for exchanges

    def emit(self, cls: type[Event], **fields) -> Event:
        """Record an event of this peer, now. (The events of every handshake are built directly with
        record(Cls(name, now, ...)): passing fields on as a dict costs a third of the event.)"""
        # peer and time by position: merging them into `fields` as keywords costs a third of the event
        event = cls(self.config.name, self.now, **fields)
        self.record(event)
        return event

    def note(self, level: str, text: str, **detail) -> None:
        self.record(NoteEvent(self.config.name, self.now, level, text, detail))  # a few per handshake: no kwargs dict

    def effect(self, effect: Effect) -> None:
        self._effects.append(effect)

    def random(self, n: int, purpose: str) -> bytes:
        return self.rng.bytes(n, f"{self.config.name} {purpose}")

    def new_child_spi(self) -> bytes:
        """A 4-byte SPI; values below 256 are reserved by IANA (RFC 4303 §2.1)."""
        while True:
            spi = self.random(4, "ESP SPI")
            if int.from_bytes(spi, "big") >= 256:
                return spi

    def send_request(self, sa: IkeSa, exchange: int, payloads: list[Payload], on_response: ResponseHandler) -> None:
        message_id = sa.next_request_id
        sa.next_request_id += 1
        header = self._header(sa, exchange, message_id, response=False)
        data, plaintext, fragments = self._send(sa, header, payloads, protected=exchange != IKE_SA_INIT)
        label = f"{name_of(ExchangeType, exchange)} request"
        deadline = self.now + self.config.retransmit.delay(0)
        sa.pending = PendingRequest(exchange, message_id, data, plaintext, label, deadline, on_response, fragments=fragments,
                                    payloads=list(payloads))

    def send_response(self, sa: IkeSa, request: Header, payloads: list[Payload]) -> None:
        header = self._header(sa, request.exchange, request.message_id, response=True)
        data, plaintext, fragments = self._send(sa, header, payloads, protected=request.exchange != IKE_SA_INIT)
        sa.last_response = (request.message_id, data, plaintext)
        sa.last_response_fragments = fragments

    def send_bare_response(self, request: Header, payloads: list[Payload], src: Endpoint, dst: Endpoint) -> None:
        """An unprotected answer that creates no state (e.g. NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD)."""
        flags = RESPONSE_FLAG | (0 if request.is_initiator else INITIATOR_FLAG)
        header = Header(request.spi_i, request.spi_r, 0, request.exchange, flags, request.message_id)
        message = Message(header, payloads)
        data = encode_message(message)
        self.emit_message("sent", data, dst, src, header=header, summary=message.summary())
        self.effect(Send(data, dst, src, f"{name_of(ExchangeType, request.exchange)} response"))

    def fail(self, sa: IkeSa, reason: str, notify: str = "") -> None:
        """Give up on an IKE SA: say why, remove its Child SAs, forget it."""
        sa.state = State.FAILED
        sa.pending = None
        self.sas.pop(sa.local_spi, None)
        for child in sa.children:
            self.effect(DeleteChildSa(child))
        sa.children.clear()
        algorithms = sa.ike.keywords() if sa.ike else ""
        self.emit(IkeSaEvent, state="failed", spi_i=sa.spi_i, spi_r=sa.spi_r, algorithms=algorithms, reason=reason)
        self.effect(IkeSaFailed(sa.spi_i, sa.spi_r, reason, notify))

    # ----------------------------------------------------------------- internals

    def _run(self, now: float, action: Callable[..., None], *args) -> list[Effect]:
        """Run action(*args) at `now` and hand back the effects it asked for."""
        self.now = now
        self._effects = []
        try:
            action(*args)
        except Exception as e:  # the engine must never raise into the lab; the trace says what broke
            self.note("error", f"internal error: {e}", traceback=traceback.format_exc())
        finally:
            self._end_turn()
        effects, self._effects = self._effects, []
        return effects

    def _end_turn(self) -> None:
        """Hand the events this turn recorded to the trace, in the order they were recorded."""
        if self._turn:
            self.trace.extend(self._turn)
            self._turn.clear()

    def _header(self, sa: IkeSa, exchange: int, message_id: int, *, response: bool) -> Header:
        flags = (INITIATOR_FLAG if sa.is_initiator else 0) | (RESPONSE_FLAG if response else 0)
        return Header(sa.spi_i, sa.spi_r, 0, exchange, flags, message_id)

    def _send(self, sa: IkeSa, header: Header, payloads: list[Payload], *, protected: bool) -> tuple[bytes, bytes | None, list]:
        """Send one message: (datagram, SK plaintext, []), or its first SKF fragment and all fragments."""
        encoded = None  # (first payload type, chain): encoded once, whether fragmented or not
        if protected and sa.fragmentation:
            encoded = encode_payloads(payloads)
            fragments = self._send_fragmented(sa, header, payloads, encoded)
            if fragments:
                return fragments[0][0], fragments[0][1], fragments
        if protected:
            data, plaintext = seal(sa, header, payloads, self.random(sa.ike.cipher.iv_length, "IV"), encoded)
            inner = tuple(payloads)
            summary = lambda: Message(header, [EncryptedPayload(0, b"")]).summary(inner)  # noqa: E731 - written when read
        else:
            message = Message(header, payloads)
            data, plaintext, summary = encode_message(message), None, message.summary
        self.emit_message("sent", data, sa.local, sa.remote, header=header, summary=summary, plaintext=plaintext)
        label = f"{name_of(ExchangeType, header.exchange)} {'response' if header.is_response else 'request'}"
        self.effect(Send(data, sa.local, sa.remote, label))
        return data, plaintext, []

    def _send_fragmented(self, sa: IkeSa, header: Header, payloads: list[Payload], encoded: tuple[int, bytes]) -> list[tuple[bytes, bytes]]:
        """RFC 7383 §2.5: SKF fragments, each its own datagram, if the message is too big for one; else []."""
        first, chain = encoded
        budget = fragmentation.ike_budget(self.config.fragment_size, sa.local)
        length = fragmentation.message_length(sa, len(chain))
        if length <= budget:
            return []
        fragments = fragmentation.split(sa, header, first, chain, budget, lambda n: self.random(sa.ike.cipher.iv_length, f"IV of fragment {n}"))
        label = f"{name_of(ExchangeType, header.exchange)} {'response' if header.is_response else 'request'}"
        self.note(
            "info",
            f"the {label} would be a {length}-byte IKE message, more than the {budget} bytes that fit into an IP datagram of "
            f"fragment_size {self.config.fragment_size}: sending its {len(chain)} bytes of payloads as {len(fragments)} SKF "
            "fragments, each encrypted and authenticated on its own (RFC 7383 §2.5)",
        )
        for n, (data, plaintext) in enumerate(fragments, 1):
            skf = EncryptedFragmentPayload(first if n == 1 else 0, n, len(fragments), b"")
            # The first fragment names what the whole message carries; the others are its continuation.
            summary = Message(header, [skf]).summary(payloads if n == 1 else None)
            self.emit_message("sent", data, sa.local, sa.remote, header=header, summary=summary, plaintext=plaintext)
            self.effect(Send(data, sa.local, sa.remote, f"{label} fragment {n}/{len(fragments)}"))
        return fragments

    def _retransmit(self, sa: IkeSa, copies: list[tuple[bytes, bytes | None]], label: str, *, fragmented: bool) -> None:
        """Send a message again: every fragment of it when it went out fragmented (RFC 7383 §2.6.1)."""
        for data, plaintext in copies:
            header = summary = None
            if fragmented:  # a fragment's plaintext is a slice of the payloads: nothing to decode
                message = decode_message(data).message
                header, summary = message.header, message.summary()
            self.emit_message("retransmitted", data, sa.local, sa.remote, header=header, summary=summary, plaintext=plaintext)
            self.effect(Send(data, sa.local, sa.remote, label))

    def emit_message(
        self,
        direction: str,
        data: bytes,
        src: Endpoint,
        dst: Endpoint,
        *,
        header: Header | None = None,
        summary: str | Callable[[], str] | None = None,
        plaintext: bytes | None = None,
    ) -> None:
        """Record a message; header and summary are decoded from `data` when not given. The summary
        may be a function that writes it, called when the event's summary is first read."""
        if header is None or summary is None:
            decoded = decode_message(data)
            header = decoded.message.header
            inner = None
            if plaintext is not None:
                chain = plaintext[: -(plaintext[-1] + 1)]
                inner, _ = decode_payloads(chain, decoded.message.payloads[-1].first_inner, sender_is_initiator=header.is_initiator)
            summary = decoded.message.summary(inner)
        if plaintext is None:
            protection = "none (IKE_SA_INIT is sent in the clear)" if header.exchange == IKE_SA_INIT else "none"
        else:
            protection = PROTECTED_BY_INITIATOR if header.is_initiator else PROTECTED_BY_RESPONDER
        ike_version, exchange = 2, name_of(ExchangeType, header.exchange)
        # The fields by position, in MessageEvent's order: a class called with keywords gets them as a
        # dict (some 450 instructions a keyword), and a handshake records eight messages.
        self.record(MessageEvent(
            self.config.name, self.now, direction, ike_version, exchange, header.message_id, header.is_response,
            summary, ENDPOINT_TEXT[src], ENDPOINT_TEXT[dst], data, plaintext, protection,
        ))

    def _receive(self, data: bytes, src: Endpoint, dst: Endpoint) -> None:
        if data == KEEPALIVE:  # no IKE message is one byte long
            self.note("info", f"NAT keepalive from {src}: nothing to do, ignored (RFC 3948 §2.3)", nat_keepalive=True)
            return
        try:
            header = decode_header(data)
        except DecodeError as e:
            self.note("warning", f"dropped a datagram from {src} that is not an IKEv2 message: {e}", data=data)
            return

        if header.major != 2:
            # RFC 7296 §1.5: drop it, and tell a requester which version we speak (in our header).
            self.note("warning", f"dropped an IKE version {header.major}.{header.minor} message from {src}: we speak IKEv2")
            if not header.is_response:
                self.send_bare_response(header, [NotifyPayload(NotifyType.INVALID_MAJOR_VERSION)], src, dst)
            return
        is_response = header.is_response
        if header.exchange == IKE_SA_INIT and not is_response and header.spi_r == bytes(8):
            ike_sa_init.receive_request(self, data, header, src, dst)
            return
        our_spi = header.spi_r if header.is_initiator else header.spi_i
        sa = self.sas.get(our_spi)
        if sa is None:
            self.note("warning", f"dropped {name_of(ExchangeType, header.exchange)} from {src}: no IKE SA with SPI {our_spi.hex()}")
            return
        if is_response:
            self._receive_response(sa, data, header, src, dst)
        else:
            self._receive_request(sa, data, header, src, dst)

    def decode_or_answer(self, data: bytes, header: Header, src: Endpoint, dst: Endpoint) -> Message | None:
        """Fully decode an IKE_SA_INIT message; a malformed request gets the notify RFC 7296 §2.21 asks for."""
        try:
            return decode_message(data, tree=False, header=header).message
        except UnsupportedCriticalPayload as e:
            self.note("warning", f"{e}; answering UNSUPPORTED_CRITICAL_PAYLOAD")
            if not header.is_response:
                notify = NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, data=bytes([e.payload_type]))
                self.send_bare_response(header, [notify], src, dst)
        except DecodeError as e:
            self.note("warning", f"malformed {name_of(ExchangeType, header.exchange)} from {src}: {e}", data=data)
            if not header.is_response:
                self.send_bare_response(header, [NotifyPayload(NotifyType.INVALID_SYNTAX)], src, dst)
        return None

    def _open(self, sa: IkeSa, data: bytes, header: Header, src: Endpoint, dst: Endpoint):
        """Decode and decrypt a protected message; None (with the reason traced) if it must be dropped."""
        try:
            message = decode_message(data, tree=False, header=header).message
        except DecodeError as e:
            self.note("warning", f"dropped malformed {name_of(ExchangeType, header.exchange)} from {src}: {e}", data=data)
            return None
        if sa.keys is None:
            self.note("warning", f"dropped {name_of(ExchangeType, header.exchange)} message {header.message_id} from {src}: this IKE SA has no keys yet")
            return None
        last = message.payloads[-1] if message.payloads else None
        if isinstance(last, EncryptedFragmentPayload):
            inner = self._reassemble(sa, data, message, last, src, dst)
            if inner is None:
                return None
            self._follow_nat(sa, src, dst)
            return message, inner
        try:
            opened = open_sk(sa, data, message, sender_is_initiator=header.is_initiator)
        except ProtectionError as e:
            # RFC 7296 §2.21.2: a message that fails its integrity check is discarded silently.
            self.emit_message("received", data, src, dst, header=header, summary=message.summary())
            self.note("warning", f"dropped {name_of(ExchangeType, header.exchange)} message {header.message_id}: {e}")
            return None
        except DecodeError as e:
            self.emit_message("received", data, src, dst, header=header, summary=message.summary())
            self._malformed_inner(sa, header, e)
            return None
        summary = partial(message.summary, opened.payloads)  # written when first read
        self.emit_message("received", data, src, dst, header=header, summary=summary, plaintext=opened.plaintext)
        self._follow_nat(sa, src, dst)
        return message, opened.payloads

    def _malformed_inner(self, sa: IkeSa, header: Header, e: DecodeError) -> None:
        """The decrypted payloads do not parse: answer a request with the notify RFC 7296 §2.21 asks for."""
        self.note("error", f"decrypted {name_of(ExchangeType, header.exchange)} is malformed: {e}")
        if not header.is_response:
            if isinstance(e, UnsupportedCriticalPayload):
                notify = NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, data=bytes([e.payload_type]))
            else:
                notify = NotifyPayload(NotifyType.INVALID_SYNTAX)
            sa.expected_request_id += 1
            self.send_response(sa, header, [notify])
        if not isinstance(e, UnsupportedCriticalPayload):
            self.fail(sa, f"malformed protected message: {e}", "INVALID_SYNTAX")

    def _follow_nat(self, sa: IkeSa, src: Endpoint, dst: Endpoint) -> None:
        if (sa.nat_local or sa.nat_remote) and (sa.remote, sa.local) != (src, dst):
            # RFC 7296 §2.23: behind a NAT, answer where authenticated messages come from.
            self.note("info", f"the peer now talks from {src} to {dst}: following it")
            sa.remote, sa.local = src, dst

    def _reassemble(self, sa: IkeSa, data: bytes, message: Message, fragment: EncryptedFragmentPayload,
                    src: Endpoint, dst: Endpoint) -> list[Payload] | None:
        """Keep one checked SKF fragment; the whole message's payloads once the last one is in."""
        header = message.header
        what = f"{name_of(ExchangeType, header.exchange)} message {header.message_id}"
        if not sa.fragmentation:
            self.emit_message("received", data, src, dst, header=header, summary=message.summary())
            self.note("warning", f"dropped an SKF fragment of {what}: IKE fragmentation was not negotiated (RFC 7383 §2.5)")
            return None
        result = fragmentation.accept(sa, data, header, fragment)
        inner = None
        if result.chain is not None:
            try:
                # As open_sk: payloads only (the trace shows each fragment's slice, not this tree); errors name SKF.
                inner, _ = decode_payloads(result.chain, result.first_inner, sender_is_initiator=header.is_initiator,
                                           tree=False, context="SKF payload")
            except DecodeError as e:
                self.emit_message("received", data, src, dst, header=header, summary=message.summary(), plaintext=result.plaintext)
                self.note("info", result.note)
                self._malformed_inner(sa, header, e)
                return None
        summary = message.summary()
        if inner is not None:
            summary += " completes {" + ", ".join(Message(header, inner).summary().split(", ")[1:]) + "}"
        self.emit_message("received", data, src, dst, header=header, summary=summary, plaintext=result.plaintext)
        if result.reason:
            self.note("warning", f"dropped an SKF fragment of {what}: {result.reason}")
            return None
        self.note("info", result.note, reassembled=inner is not None)
        return inner

    def _receive_request(self, sa: IkeSa, data: bytes, header: Header, src: Endpoint, dst: Endpoint) -> None:
        if sa.last_response and header.message_id == sa.last_response[0] and header.message_id == sa.expected_request_id - 1:
            number = fragmentation.fragment_number(data)
            if number is not None and number != 1:
                # RFC 7383 §2.6.1: only fragment 1 of a repeated request triggers our retransmission.
                self.note("info", f"fragment {number} of request {header.message_id} arrived again: ignored (only fragment 1 makes us resend)")
                return
            self.note("info", f"request {header.message_id} arrived again: retransmitting our response")
            _, data, plaintext = sa.last_response
            copies = sa.last_response_fragments or [(data, plaintext)]
            self._retransmit(sa, copies, "response (retransmission)", fragmented=bool(sa.last_response_fragments))
            return
        if header.message_id != sa.expected_request_id:
            self.note("warning", f"dropped request with message ID {header.message_id}: expected {sa.expected_request_id}")
            return
        if header.exchange == IKE_SA_INIT:
            self.note("warning", "dropped an IKE_SA_INIT request for an existing IKE SA")
            return
        opened = self._open(sa, data, header, src, dst)
        if opened is None:
            return
        message, inner = opened
        sa.expected_request_id += 1
        dispatch_request(self, sa, Received(data, message, inner, src, dst))

    def _receive_response(self, sa: IkeSa, data: bytes, header: Header, src: Endpoint, dst: Endpoint) -> None:
        pending = sa.pending
        if pending is None or header.message_id != pending.message_id or header.exchange != pending.exchange:
            self.note("warning", f"dropped an unexpected {name_of(ExchangeType, header.exchange)} response with message ID {header.message_id}")
            return
        if header.exchange == IKE_SA_INIT:
            message = self.decode_or_answer(data, header, src, dst)
            if message is None:
                return
            self.emit_message("received", data, src, dst, header=header, summary=message.summary)  # written when read
            inner: list = []
        else:
            opened = self._open(sa, data, header, src, dst)
            if opened is None:
                return
            message, inner = opened
        sa.pending = None
        pending.on_response(Received(data, message, inner, src, dst))
        holder = sa.current()
        if holder is not sa and sa.queued:
            # The IKE SA was rekeyed: what waited on it runs on the new one (the old one only gets deleted).
            holder.queued.extend(sa.queued)
            sa.queued.clear()
        if holder.pending is None and holder.queued and holder.state is State.ESTABLISHED:
            holder.queued.popleft()()

    def _timers_due(self) -> None:
        for sa in list(self.sas.values()):
            due = [action for when, action in sa.timers if when <= self.now]
            sa.timers = [(when, action) for when, action in sa.timers if when > self.now]
            for action in due:
                if action == "expire-half-open":
                    if sa.state is State.INIT_DONE:
                        self.note("info", f"half-open IKE SA {sa.label} got no IKE_AUTH in time: dropped")
                        self.sas.pop(sa.local_spi, None)
                elif action == "nat-keepalive":
                    if sa.state is State.ESTABLISHED:
                        self._send_keepalive(sa)
                elif sa.state is State.ESTABLISHED:
                    self.note("info", f"timer: {action.partition(' ')[0]} is due")
                    self._act(action, sa)
        self._retransmit_due()

    def _retransmit_due(self) -> None:
        policy = self.config.retransmit
        for sa in list(self.sas.values()):
            pending = sa.pending
            if pending is None or pending.deadline > self.now:
                continue
            if pending.attempt >= policy.tries:
                self.fail(sa, f"no response to {pending.label} after {policy.tries} retransmissions; the peer is unreachable")
                continue
            pending.attempt += 1
            pending.deadline = self.now + policy.delay(pending.attempt)
            self.note(
                "info",
                f"no response to {pending.label} (message ID {pending.message_id}): retransmission {pending.attempt} of {policy.tries}, next timeout in {policy.delay(pending.attempt):.1f} s",
            )
            copies = pending.fragments or [(pending.data, pending.plaintext)]
            self._retransmit(sa, copies, f"{pending.label} (retransmission)", fragmented=bool(pending.fragments))
