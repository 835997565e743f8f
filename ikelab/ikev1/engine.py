"""The IKEv1 peer: a sans-I/O state machine (RFC 2409 over ISAKMP, RFC 2408).

Same interface as `Ikev2Peer`: it takes datagrams and time and hands back effects, appending
everything it computes to the trace; randomness comes from the injected RandomSource, and it never
raises into the lab (an internal error becomes a NoteEvent).

This module owns what every exchange shares: finding the ISAKMP SA of a datagram, sending
(encrypted or not, with the IV chain), opening encrypted messages, retransmission and failure.
The exchanges live in `exchanges/`, one module each: main mode, aggressive mode, quick mode and
informational, the initiator's and the responder's side side by side; beside them what phase 1's
modes share (`phase1`), how a side proves its identity (`authentication`: HASH, or CERT and SIG)
and dead peer detection (`dpd`).
"""

from __future__ import annotations

import traceback
from typing import Callable

from ikelab.effects import IKEV1_ACTIONS, DeleteChildSa, Effect, Endpoint, IkeSaFailed, Send
from ikelab.ikev1.config import Ikev1Config
from ikelab.ikev1.protection import ProtectionError, seal, unseal
from ikelab.ikev1.sa import Exchange, IsakmpSa, Sent, State
from ikelab.rng import RandomSource
from ikelab.trace import Event, IkeSaEvent, Ikev1IvEvent, Ikev1MessageEvent, NoteEvent, Trace
from ikelab.wire.errors import DecodeError
from ikelab.wire.isakmp import (
    DecodedChain,
    Header,
    Message,
    Payload,
    decode_header,
    decode_message,
    decode_payloads,
    encode_message,
)
from ikelab.wire.isakmp_constants import ExchangeType, exchange_label
from ikelab.wire.isakmp_payloads import HashPayload, IdPayload, SigPayload, short_name

PHASE1 = (ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE)


def summarize(payloads: list[Payload], *, encrypted: bool, exchange: int, sender_is_initiator: bool, number: int) -> str:
    """RFC 2409's names: "HDR*, IDii, HASH_I" in phase 1, "HDR*, HASH(1), SA, Ni, IDci, IDcr" in quick mode."""
    names = []
    ids = iter(("IDci", "IDcr"))
    for p in payloads:
        name = short_name(p, sender_is_initiator=sender_is_initiator)
        if isinstance(p, IdPayload):
            name = ("IDii" if sender_is_initiator else "IDir") if exchange in PHASE1 else next(ids, "ID")
        elif isinstance(p, HashPayload):
            name = ("HASH_I" if sender_is_initiator else "HASH_R") if exchange in PHASE1 else f"HASH({number})"
        elif isinstance(p, SigPayload):
            name = "SIG_I" if sender_is_initiator else "SIG_R"
        names.append(name)
    return ", ".join(["HDR*" if encrypted else "HDR"] + names)


class Ikev1Peer:
    def __init__(self, config: Ikev1Config, rng: RandomSource, trace: Trace, local: Endpoint) -> None:
        self.config = config
        self.rng = rng
        self.trace = trace
        self.local = local
        self.now = 0.0
        self.sas: dict[bytes, IsakmpSa] = {}  # by initiator cookie: the one value every message carries
        self._effects: list[Effect] = []

    # ----------------------------------------------------------------- entry points

    def initiate(self, remote: Endpoint, now: float) -> list[Effect]:
        """Start phase 1 (main or aggressive mode, as configured) towards `remote`; quick mode follows."""
        from ikelab.ikev1.exchanges import phase1

        return self._run(now, lambda: phase1.start(self, remote))

    def receive(self, data: bytes, src: Endpoint, dst: Endpoint, now: float) -> list[Effect]:
        """Process one datagram that arrived from `src` on our address `dst`."""
        return self._run(now, lambda: self._receive(bytes(data), src, dst))

    def next_timer(self) -> float | None:
        deadlines = [e.deadline for e in self._exchanges() if e.deadline is not None]
        deadlines += [sa.dpd.due for sa in self.sas.values() if sa.dpd is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> list[Effect]:
        return self._run(now, self._timers_due)

    def busy(self) -> bool:
        """An exchange waits for the peer's next message (dead peer detection's R-U-THEREs do not count)."""
        return any(e.deadline is not None for e in self._exchanges())

    def established(self) -> list[IsakmpSa]:
        return [sa for sa in self.sas.values() if sa.state is State.ESTABLISHED]

    def act(self, action: str, now: float) -> list[Effect]:
        """On the first established ISAKMP SA: "create-child" (another quick mode), "delete-child",
        "delete-ike" or "liveness" (a dead peer detection R-U-THERE)."""
        return self._run(now, lambda: self._act(action))

    def _act(self, action: str) -> None:
        from ikelab.ikev1.exchanges import dpd, informational, quick_mode

        sa = next(iter(self.established()), None)
        if sa is None:
            self.note("warning", f"cannot {action}: no established ISAKMP SA")
            return
        actions = {
            "create-child": lambda: quick_mode.start(self, sa),
            "delete-child": lambda: informational.delete_child(self, sa),
            "delete-ike": lambda: informational.delete_isakmp_sa(self, sa),
            "liveness": lambda: dpd.are_you_there(self, sa),
        }
        assert tuple(actions) == IKEV1_ACTIONS  # what lessons are checked against
        if action not in actions:
            self.note("error", f"unknown action {action!r} (known: {', '.join(actions)})")
            return
        actions[action]()

    # ----------------------------------------------------------------- helpers for exchanges

    def emit(self, cls: type[Event], **fields) -> Event:
        return self.trace.emit(cls(peer=self.config.name, time=self.now, **fields))

    def note(self, level: str, text: str, **detail) -> None:
        self.emit(NoteEvent, level=level, text=text, detail=detail)

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

    def new_message_id(self, sa: IsakmpSa) -> int:
        """A random, non-zero M-ID not in use on this SA (RFC 2408 §3.1)."""
        while True:
            mid = int.from_bytes(self.random(4, "message ID"), "big")
            if mid and mid not in sa.quick:
                return mid

    def send(
        self,
        sa: IsakmpSa,
        exchange: Exchange,
        exchange_type: int,
        payloads: list[Payload],
        *,
        encrypt: bool,
        expect_reply: bool,
        sender_is_initiator: bool,
    ) -> None:
        """Send the next message of `exchange`; with `expect_reply` it is sent again until answered."""
        exchange.count += 1
        header = Header(sa.cky_i, sa.cky_r, 0, exchange_type, 0, exchange.message_id)
        if encrypt:
            c = sa.ike.cipher
            self._trace_iv(exchange, exchange.count)
            data, plaintext, exchange.iv = seal(c, sa.ka, exchange.iv, header, payloads)
            exchange.iv_origin = f"the last ciphertext block of {exchange.name} message {exchange.count}"
            protection = f"encrypted with Ka ({c.description}), IV chained as RFC 2409 appendix B says"
        else:
            data, plaintext = encode_message(Message(header, payloads)), None
            protection = "none: this message travels in the clear"
        label = f"{exchange.name} message {exchange.count}"
        summary = summarize(payloads, encrypted=encrypt, exchange=exchange_type, sender_is_initiator=sender_is_initiator, number=exchange.count)
        self._emit_message("sent", data, sa.local, sa.remote, exchange, summary, plaintext, protection)
        self.effect(Send(data, sa.local, sa.remote, label))
        exchange.last_sent = Sent(data, plaintext, label, exchange.count, summary, protection)
        exchange.deadline = self.now + self.config.retransmit.delay(0) if expect_reply else None
        exchange.attempt = 0

    def send_unprotected(self, cky_i: bytes, cky_r: bytes, payloads: list[Payload], src: Endpoint, dst: Endpoint, why: str) -> None:
        """An Informational exchange in the clear: how phase 1 reports a failure before keys are shared."""
        exchange = Exchange("Informational", int.from_bytes(self.random(4, "message ID"), "big") or 1)
        exchange.count = 1
        header = Header(cky_i, cky_r, 0, ExchangeType.INFORMATIONAL, 0, exchange.message_id)
        data = encode_message(Message(header, payloads))
        summary = summarize(payloads, encrypted=False, exchange=ExchangeType.INFORMATIONAL, sender_is_initiator=False, number=1)
        self._emit_message("sent", data, src, dst, exchange, summary, None, f"none: {why}")
        self.effect(Send(data, src, dst, "Informational message 1"))

    def receive_plain(self, exchange: Exchange, data: bytes, src: Endpoint, dst: Endpoint, *, sender_is_initiator: bool):
        """Decode a message that must not be encrypted; None (with the reason traced) if it must be dropped."""
        try:
            decoded = decode_message(data)
        except DecodeError as e:
            self.note("warning", f"dropped a malformed {exchange.name} message from {src}: {e}", data=data)
            return None
        message = decoded.message
        if message.encrypted is not None:
            self.note("warning", f"dropped an encrypted {exchange.name} message from {src}: this one must travel in the clear")
            return None
        exchange.count += 1
        exchange.last_received = data
        summary = summarize(message.payloads, encrypted=False, exchange=message.header.exchange, sender_is_initiator=sender_is_initiator, number=exchange.count)
        self._emit_message("received", data, src, dst, exchange, summary, None, "none: this message travels in the clear")
        return decoded

    def open(self, sa: IsakmpSa, exchange: Exchange, data: bytes, src: Endpoint, dst: Endpoint, *, sender_is_initiator: bool) -> DecodedChain | DecodeError | None:
        """Decrypt and decode a message of `exchange`.

        Returns the payload chain; or the DecodeError when the plaintext is no valid payload chain
        (the sign of a key that differs from the sender's); or None when the message is dropped.
        The IV chain moves on only for a message that decodes.
        """
        try:
            message = decode_message(data).message
        except DecodeError as e:
            self.note("warning", f"dropped a malformed {exchange.name} message from {src}: {e}", data=data)
            return None
        name = f"{exchange.name} message {exchange.count + 1}"
        if message.encrypted is None:
            self.note("warning", f"dropped {name} from {src}: it must be encrypted but the E flag is clear")
            return None
        c = sa.ike.cipher
        self._trace_iv(exchange, exchange.count + 1)
        try:
            plaintext, next_iv = unseal(c, sa.ka, exchange.iv, message.encrypted)
        except ProtectionError as e:
            self.note("warning", f"dropped {name}: {e}")
            return None
        protection = f"encrypted with Ka ({c.description})"
        try:
            chain = decode_payloads(plaintext, message.header.next_payload)
        except DecodeError as e:
            summary = summarize([], encrypted=True, exchange=message.header.exchange, sender_is_initiator=sender_is_initiator, number=exchange.count + 1)
            self._emit_message("received", data, src, dst, exchange, summary + ", (undecryptable)", None, protection, number=exchange.count + 1)
            self.note("error", f"{name} decrypted with our Ka into bytes that are no valid payloads: {e}", plaintext=plaintext)
            return e
        exchange.count += 1
        exchange.iv = next_iv
        exchange.iv_origin = f"the last ciphertext block of {exchange.name} message {exchange.count}"
        exchange.last_received = data
        summary = summarize(chain.payloads, encrypted=True, exchange=message.header.exchange, sender_is_initiator=sender_is_initiator, number=exchange.count)
        self._emit_message("received", data, src, dst, exchange, summary, plaintext, protection)
        return chain

    def follow(self, sa: IsakmpSa, src: Endpoint, dst: Endpoint) -> None:
        """Behind a NAT, answer where authenticated messages come from (RFC 3947 §4)."""
        if (sa.nat_local or sa.nat_remote) and (sa.remote, sa.local) != (src, dst):
            self.note("info", f"the peer now talks from {src} to {dst}: following it")
            sa.remote, sa.local = src, dst

    def fail(self, sa: IsakmpSa, reason: str, notify: str = "") -> None:
        """Give up on an ISAKMP SA: say why, remove its IPsec SAs, forget it."""
        from ikelab.ikev1.keys import trace_child

        sa.state = State.FAILED
        self.sas.pop(sa.cky_i, None)
        for child in sa.children:
            trace_child(self, child, "deleted")
            self.effect(DeleteChildSa(child))
        sa.children.clear()
        algorithms = sa.ike.keywords() if sa.ike else ""
        self.emit(IkeSaEvent, state="failed", spi_i=sa.cky_i, spi_r=sa.cky_r, algorithms=algorithms, reason=reason)
        self.effect(IkeSaFailed(sa.cky_i, sa.cky_r, reason, notify))

    # ----------------------------------------------------------------- internals

    def _run(self, now: float, action: Callable[[], None]) -> list[Effect]:
        self.now = now
        self._effects = []
        try:
            action()
        except Exception as e:  # the engine must never raise into the lab; the trace says what broke
            self.note("error", f"internal error: {e}", traceback=traceback.format_exc())
        effects, self._effects = self._effects, []
        return effects

    def _exchanges(self):
        for sa in self.sas.values():
            yield sa.exchange
            for qm in sa.quick.values():
                yield qm.exchange

    def _trace_iv(self, exchange: Exchange, number: int) -> None:
        """Which IV encrypts this message: the exchange's first, or chained from the message before."""
        self.emit(Ikev1IvEvent, label=f"IV of {exchange.name} message {number}", formula=f"IV = {exchange.iv_origin}", inputs={}, output=exchange.iv)

    def _emit_message(self, direction: str, data: bytes, src: Endpoint, dst: Endpoint, exchange: Exchange, summary: str, plaintext: bytes | None, protection: str, number: int | None = None) -> None:
        number = exchange.count if number is None else number
        self.emit(
            Ikev1MessageEvent,
            direction=direction,
            ike_version=1,
            exchange=exchange.name,
            message_id=exchange.message_id,
            is_response=number % 2 == 0,
            summary=summary,
            src=str(src),
            dst=str(dst),
            data=data,
            plaintext=plaintext,
            protection=protection,
            number=number,
        )

    def _receive(self, data: bytes, src: Endpoint, dst: Endpoint) -> None:
        from ikelab.ikev1.exchanges import aggressive_mode, informational, main_mode, quick_mode

        if data == b"\xff":  # a NAT keepalive (RFC 3948 §2.3): no ISAKMP message is one byte long
            self.note("info", f"NAT keepalive from {src}: nothing to do, ignored (RFC 3948 §2.3)", nat_keepalive=True)
            return
        try:
            header = decode_header(data)
        except DecodeError as e:
            self.note("warning", f"dropped a datagram from {src} that is not an ISAKMP message: {e}", data=data)
            return
        if header.major != 1:
            self.note("warning", f"dropped an IKE version {header.major}.{header.minor} message from {src}: this peer speaks IKEv1")
            return
        what = exchange_label(header.exchange)
        sa = self.sas.get(header.cky_i)
        if sa is None:
            first = header.cky_r == bytes(8) and header.message_id == 0 and not header.encrypted
            if first and header.exchange == ExchangeType.IDENTITY_PROTECTION:
                main_mode.respond(self, data, src, dst)
            elif first and header.exchange == ExchangeType.AGGRESSIVE:
                aggressive_mode.respond(self, data, src, dst)
            else:
                self.note("warning", f"dropped {what} from {src}: no ISAKMP SA with initiator cookie {header.cky_i.hex()}")
            return
        # Before phase 1's second message the initiator has no responder cookie yet, and the
        # responder may see message 1 again with none.
        learning = sa.cky_r == bytes(8) if sa.is_initiator else header.cky_r == bytes(8) and header.message_id == 0
        if header.cky_r != sa.cky_r and not learning:
            self.note("warning", f"dropped {what} from {src}: responder cookie {header.cky_r.hex()} is not this SA's {sa.cky_r.hex()}")
            return
        exchange = sa.exchange if header.message_id == 0 else (sa.quick[header.message_id].exchange if header.message_id in sa.quick else None)
        if exchange is not None and data == exchange.last_received:
            self._answer_repeat(sa, exchange)
            return
        if header.exchange in PHASE1 and header.message_id == 0:
            module = main_mode if sa.mode == "main" else aggressive_mode
            if header.exchange != (ExchangeType.IDENTITY_PROTECTION if sa.mode == "main" else ExchangeType.AGGRESSIVE):
                self.note("warning", f"dropped {what}: this ISAKMP SA is negotiated in {sa.mode} mode")
                return
            module.receive(self, sa, data, src, dst)
        elif header.exchange == ExchangeType.QUICK_MODE:
            quick_mode.receive(self, sa, data, header, src, dst)
        elif header.exchange == ExchangeType.INFORMATIONAL:
            informational.receive(self, sa, data, header, src, dst)
        else:
            self.note("warning", f"dropped {what} from {src}: ikelab does not support this exchange type")

    def _answer_repeat(self, sa: IsakmpSa, exchange: Exchange) -> None:
        """The peer sent its last message again: our answer to it was lost, so send that again.

        Only if we did answer it: a final message that arrives twice (the network duplicated it)
        needs no answer, and answering it would set both sides resending each other forever.
        """
        if exchange.last_sent is None or exchange.last_sent.number < exchange.count:
            self.note("info", f"{exchange.name} message {exchange.count} arrived again; it needs no answer, dropped")
            return
        self.note("info", f"{exchange.name} message {exchange.count - 1} arrived again: our answer was lost, sending {exchange.last_sent.label} again")
        self._send_again(sa, exchange)

    def _send_again(self, sa: IsakmpSa, exchange: Exchange) -> None:
        """The same bytes again: a retransmission is not re-encrypted, so the IV chain is untouched."""
        sent = exchange.last_sent
        self._emit_message("retransmitted", sent.data, sa.local, sa.remote, exchange, sent.summary, sent.plaintext, sent.protection, number=sent.number)
        self.effect(Send(sent.data, sa.local, sa.remote, f"{sent.label} (retransmission)"))

    def _timers_due(self) -> None:
        from ikelab.ikev1.exchanges import dpd

        self._retransmit_due()
        for sa in list(self.sas.values()):
            if sa.dpd is not None and sa.dpd.due <= self.now and sa.state is State.ESTABLISHED:
                dpd.due(self, sa)

    def _retransmit_due(self) -> None:
        policy = self.config.retransmit
        for sa in list(self.sas.values()):
            for owner, exchange in [(None, sa.exchange)] + [(mid, qm.exchange) for mid, qm in sa.quick.items()]:
                if exchange.deadline is None or exchange.deadline > self.now or exchange.last_sent is None:
                    continue
                label = exchange.last_sent.label
                if exchange.attempt >= policy.tries:
                    why = f"no answer to {label} after {policy.tries} retransmissions; the peer is unreachable or refused it silently"
                    if owner is None:
                        self.fail(sa, why)
                        break
                    self.note("error", f"{why}: quick mode 0x{owner:08x} abandoned")
                    del sa.quick[owner]
                    continue
                exchange.attempt += 1
                exchange.deadline = self.now + policy.delay(exchange.attempt)
                self.note("info", f"no answer to {label}: retransmission {exchange.attempt} of {policy.tries}, next timeout in {policy.delay(exchange.attempt):.1f} s")
                self._send_again(sa, exchange)
