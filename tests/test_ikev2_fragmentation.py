"""IKE fragmentation (RFC 7383) in the IKEv2 engine: two engines with certificates and a small
fragment_size exchange SKF fragments delivered in order, reversed, twice, tampered or lost; the
fragments strongSwan sent in a real capture reassemble with our code; tshark decrypts ours."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from conftest import assert_no_internal_error, needs_lab, needs_tshark
from ikelab.crypto.cipher import cipher
from ikelab.crypto.ikev2_kdf import IkeSaKeys
from ikelab.crypto.integrity import integrity
from ikelab.effects import Endpoint, IkeSaUp, Send
from ikelab.export.capture import export_capture
from ikelab.ikev2 import fragmentation
from ikelab.ikev2.engine import Ikev2Peer
from ikelab.ikev2.ike_sa import IkeSa, State
from ikelab.ikev2.proposals import Negotiated
from ikelab.lab.credentials import issue_credentials
from ikelab.lab.session import peer_config
from ikelab.lessons import load_lesson
from ikelab.rng import SeededRandom
from ikelab.trace import AuthEvent, MessageEvent, NoteEvent, Trace
from ikelab.wire.ikev2 import EncryptedFragmentPayload, Header, IdPayload, Message, decode_message, decode_payloads, encode_message
from ikelab.wire.ikev2_constants import EncrId, ExchangeType, HeaderFlags, IntegId

LESSON = load_lesson("ikev2-certs")
WIRE = Path(__file__).parent / "vectors" / "wire"

Mangle = Callable[[str, list[Send]], list[Send]]


class Pair:
    """Two engines wired back to back; `mangle(receiver, batch)` may reorder, repeat, drop or alter
    each batch of datagrams one engine produced before the other receives them."""

    def __init__(self, seed: int = 1, *, left: dict | None = None, right: dict | None = None, both: dict | None = None,
                 lesson=LESSON) -> None:
        credentials = issue_credentials(lesson, seed)
        self.trace = Trace()
        self.peers: dict[str, Ikev2Peer] = {}
        self.by_host: dict[str, str] = {}
        for spec, extra in ((lesson.left, left), (lesson.right, right)):
            config = dataclasses.replace(peer_config(spec, credentials[spec.name]), **(both or {}), **(extra or {}))
            self.peers[spec.name] = Ikev2Peer(config, SeededRandom(seed, spec.name), self.trace, Endpoint(spec.address, 500))
            self.by_host[spec.address] = spec.name
        self.up: set[str] = set()
        self.now = 0.0

    def run(self, mangle: Mangle = lambda receiver, batch: batch, *, timers: bool = False) -> None:
        queue: list[Send] = []
        self._collect("left", self.peers["left"].initiate(Endpoint(LESSON.right.address, 500), self.now), queue, mangle)
        for _ in range(200):
            if not queue:
                if not timers:
                    return
                due = [t for t in (p.next_timer() for p in self.peers.values()) if t is not None and t < 60]
                if not due or self.up == {"left", "right"}:
                    return
                self.now = min(due)
                for name, peer in self.peers.items():
                    self._collect(name, peer.on_timer(self.now), queue, mangle)
                continue
            send = queue.pop(0)
            self.now += 0.001
            receiver = self.by_host[send.dst.host]
            self._collect(receiver, self.peers[receiver].receive(send.data, send.src, send.dst, self.now), queue, mangle)
        raise AssertionError("the exchange did not settle")

    def _collect(self, name: str, effects: list, queue: list[Send], mangle: Mangle) -> None:
        sends = [e for e in effects if isinstance(e, Send)]
        self.up |= {name for e in effects if isinstance(e, IkeSaUp)}
        if sends:
            receiver = self.by_host[sends[0].dst.host]
            queue.extend(mangle(receiver, sends))

    def messages(self, direction: str = "sent", peer: str | None = None) -> list[MessageEvent]:
        return [e for e in self.trace.of(MessageEvent) if e.direction == direction and (peer is None or e.peer == peer)]

    def notes(self, peer: str | None = None) -> list[str]:
        return [e.text for e in self.trace.of(NoteEvent) if peer is None or e.peer == peer]

    def check(self) -> None:
        broken = [t for t in self.notes() if t.startswith("internal error")]
        assert not broken, broken


def skf(data: bytes) -> EncryptedFragmentPayload | None:
    last = decode_message(data).message.payloads[-1]
    return last if isinstance(last, EncryptedFragmentPayload) else None


SMALL = {"fragment_size": 576}


def test_certificate_ike_auth_fragments_and_reassembles_both_ways():
    pair = Pair(both=SMALL)
    pair.run()
    pair.check()
    assert pair.up == {"left", "right"}
    for peer, label in (("left", "IDi, CERT, CERTREQ, IDr, AUTH, SA, TSi, TSr"), ("right", "IDr, CERT, AUTH, SA, TSi, TSr")):
        auth = [m for m in pair.messages(peer=peer) if m.exchange == "IKE_AUTH"]
        fragments = [skf(m.data) for m in auth]
        total = len(fragments)
        assert total >= 2 and all(f is not None for f in fragments)
        assert [(f.fragment_number, f.total_fragments) for f in fragments] == [(n, total) for n in range(1, total + 1)]
        assert fragments[0].first_inner != 0 and all(f.first_inner == 0 for f in fragments[1:])  # RFC 7383 §2.5
        # Each fragment fills at most an IPv4 datagram of fragment_size bytes: 20 of IP, 8 of UDP.
        assert all(len(m.data) <= 576 - 28 for m in auth) and len(auth[0].data) == 576 - 28
        assert auth[0].summary == f"HDR, SKF(1/{total}) {{{label}}}"
        assert len({m.message_id for m in auth}) == 1
    completes = [t for t in pair.notes() if "completes the message" in t]
    assert len(completes) == 2
    # IKE_SA_INIT announced it both ways.
    init = [m for m in pair.messages() if m.exchange == "IKE_SA_INIT"]
    assert all("N(IKEV2_FRAGMENTATION_SUPPORTED)" in m.summary for m in init)


def test_default_fragment_size_keeps_an_ecdsa_ike_auth_whole_and_rsa3072_fragments():
    pair = Pair()
    pair.run()
    assert pair.up == {"left", "right"}
    assert all(skf(m.data) is None for m in pair.messages())
    # A 3072-bit RSA certificate and signature push IKE_AUTH past the default 1280 bytes.
    cert = dataclasses.replace(LESSON.left.certificate, key="rsa3072")
    rsa = Pair(lesson=dataclasses.replace(LESSON, left=dataclasses.replace(LESSON.left, certificate=cert)))
    rsa.run()
    rsa.check()
    assert rsa.up == {"left", "right"}
    request = [m for m in rsa.messages(peer="left") if m.exchange == "IKE_AUTH"]
    assert len(request) == 2 and len(request[0].data) == 1280 - 28 and len(request[1].data) < 1280 - 28


def test_fragments_in_reverse_order_reassemble():
    pair = Pair(both=SMALL)
    pair.run(lambda receiver, batch: list(reversed(batch)))
    pair.check()
    assert pair.up == {"left", "right"}
    waiting = [t for t in pair.notes("right") if "checked and kept" in t]
    total = len([m for m in pair.messages(peer="left") if m.exchange == "IKE_AUTH"])
    assert waiting[0].startswith(f"fragment {total} of {total}")


def test_duplicate_fragments_are_ignored():
    pair = Pair(both=SMALL)
    pair.run(lambda receiver, batch: [s for s in batch for _ in (0, 1)])
    pair.check()
    assert pair.up == {"left", "right"}
    assert any("a duplicate" in t for t in pair.notes("right"))
    # The copies of the last fragment arrive after the message was handled: they only make right
    # resend its response if they are fragment 1 (RFC 7383 §2.6.1), which they are not.
    assert not any(m.exchange == "IKE_AUTH" for m in pair.messages("retransmitted"))


def test_tampered_fragment_is_dropped_and_the_genuine_one_completes():
    tampered = []

    def mangle(receiver: str, batch: list[Send]) -> list[Send]:
        out = []
        for send in batch:
            f = skf(send.data)
            if f is not None and f.fragment_number == 2 and receiver == "right" and not tampered:
                bad = bytearray(send.data)
                bad[60] ^= 0x01  # inside the encrypted data
                tampered.append(bytes(bad))
                out.append(dataclasses.replace(send, data=bytes(bad)))
            out.append(send)
        return out

    pair = Pair(both=SMALL)
    pair.run(mangle)
    pair.check()
    assert tampered and pair.up == {"left", "right"}
    dropped = [t for t in pair.notes("right") if t.startswith("dropped an SKF fragment")]
    assert dropped == ["dropped an SKF fragment of IKE_AUTH message 1: fragment 2 of 2: integrity check (ICV) failed with SK_ai"]


def test_gcm_fragments():
    gcm = {"ike_proposals": _proposals("aes256gcm16-prfsha256-ecp256")}
    pair = Pair(both={**SMALL, **gcm})
    pair.run()
    pair.check()
    assert pair.up == {"left", "right"}
    assert skf([m for m in pair.messages(peer="left") if m.exchange == "IKE_AUTH"][0].data) is not None


def _proposals(text: str):
    from ikelab.crypto.names import parse_proposal

    return (parse_proposal(text, ike=True),)


@pytest.mark.parametrize("off", ["left", "right"])
def test_fragmentation_off_on_one_side_sends_whole_messages(off):
    pair = Pair(both=SMALL, **{off: {"fragmentation": False}})
    pair.run()
    pair.check()
    assert pair.up == {"left", "right"}
    assert all(skf(m.data) is None for m in pair.messages())
    auth = [m for m in pair.messages() if m.exchange == "IKE_AUTH"]
    assert len(auth) == 2 and all(len(m.data) > 576 for m in auth)  # IP fragmentation's problem now
    init = {m.peer: m.summary for m in pair.messages() if m.exchange == "IKE_SA_INIT"}
    assert "FRAGMENTATION" not in init[off]
    # The responder only announces it when the initiator did.
    assert "FRAGMENTATION" not in init["right"]


def test_lost_response_fragments_retransmit_every_fragment():
    lost = []

    def mangle(receiver: str, batch: list[Send]) -> list[Send]:
        if receiver == "left" and skf(batch[0].data) is not None and not lost:
            lost.extend(batch)
            return []  # right's first response, all fragments, never arrives
        return batch

    pair = Pair(both=SMALL)
    pair.run(mangle, timers=True)
    pair.check()
    assert lost and pair.up == {"left", "right"}
    request = [m for m in pair.messages(peer="left") if m.exchange == "IKE_AUTH"]
    again = [m for m in pair.messages("retransmitted", "left") if m.exchange == "IKE_AUTH"]
    assert [m.data for m in again] == [m.data for m in request]  # all fragments, byte for byte
    # Right answers the repeated fragment 1 with its whole response and ignores the other copies.
    resent = [m for m in pair.messages("retransmitted", "right") if m.exchange == "IKE_AUTH"]
    assert [m.data for m in resent] == [s.data for s in lost]
    assert any("only fragment 1 makes us resend" in t for t in pair.notes("right"))


def test_random_skf_payloads_never_raise():
    """Hostile input: SKF payloads with random numbers, totals and bodies under the IKE SA's SPIs."""
    pair = Pair(both=SMALL)
    stop = []

    def mangle(receiver: str, batch: list[Send]) -> list[Send]:
        if receiver == "right" and skf(batch[0].data) is not None and not stop:
            stop.append(batch)
            return []  # hold left's IKE_AUTH back: right waits in IKE_SA_INIT done
        return batch

    pair.run(mangle)
    right = pair.peers["right"]
    sa = next(iter(right.sas.values()))
    rng = random.Random(7)
    src, dst = stop[0][0].src, stop[0][0].dst
    for i in range(300):
        total = rng.choice([1, 2, 3, 64, 65, 1000, 65535])
        number = min(rng.choice([1, 2, total, total + 1, 0]), 0xFFFF)
        body = rng.randbytes(rng.choice([0, 1, 15, 16, 47, 48, 200]))
        message_id = rng.choice([1, 1, 1, 0, 2])
        header = Header(sa.spi_i, sa.spi_r, 0, ExchangeType.IKE_AUTH, HeaderFlags.INITIATOR, message_id)
        payload = EncryptedFragmentPayload(rng.choice([0, 35]), number, total, body)
        data = encode_message(Message(header, [payload]))
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        right.receive(data, src, dst, 1.0 + i / 1000)
    pair.check()
    assert sa.state is State.INIT_DONE
    reasons = [t for t in pair.notes("right") if t.startswith(("dropped", "malformed"))]
    assert any("integrity check (ICV) failed" in t for t in reasons)
    assert any("more than the 64 we reassemble" in t for t in reasons)
    # The genuine fragments still complete the handshake afterwards.
    for send in stop[0]:
        effects = right.receive(send.data, send.src, send.dst, 2.0)
    assert any(isinstance(e, IkeSaUp) for e in effects)


def test_skf_when_fragmentation_was_not_negotiated_is_dropped():
    pair = Pair(both={**SMALL, "fragmentation": False})
    held = []

    def mangle(receiver: str, batch: list[Send]) -> list[Send]:
        if receiver == "right" and decode_message(batch[0].data).message.header.exchange == ExchangeType.IKE_AUTH and not held:
            held.extend(batch)
            return []
        return batch

    pair.run(mangle)
    right = pair.peers["right"]
    sa = next(iter(right.sas.values()))
    # A well-formed SKF is dropped before its ICV is looked at: fragmentation was not negotiated.
    assert not sa.fragmentation
    frags = fragmentation.split(sa, Header(sa.spi_i, sa.spi_r, 0, ExchangeType.IKE_AUTH, HeaderFlags.INITIATOR, 1),
                                35, bytes(100), 100, lambda n: bytes(16))
    right.receive(frags[0][0], held[0].src, held[0].dst, 1.0)
    pair.check()
    assert any("IKE fragmentation was not negotiated" in t for t in pair.notes("right"))


def test_malformed_reassembled_payloads_are_named_as_skf_contents():
    """The payloads put back together from SKF fragments are checked as SKF contents: an error
    names the SKF payload (not SK) and the initiator gets INVALID_SYNTAX."""
    pair = Pair(both=SMALL)
    replaced = []

    def mangle(receiver: str, batch: list[Send]) -> list[Send]:
        header = decode_message(batch[0].data).message.header
        if receiver != "right" or header.exchange != ExchangeType.IKE_AUTH or replaced:
            return batch
        sa = next(iter(pair.peers["left"].sas.values()))
        # One whole, properly sealed SKF fragment whose contents announce an IDi but end at once.
        replaced.extend(fragmentation.split(sa, header, 35, b"", 548, lambda n: bytes(16)))
        return [dataclasses.replace(batch[0], data=replaced[0][0])]

    pair.run(mangle)
    pair.check()
    assert replaced and "right" not in pair.up
    malformed = [t for t in pair.notes("right") if t.startswith("decrypted IKE_AUTH is malformed")]
    assert malformed == ["decrypted IKE_AUTH is malformed: SKF payload, field 'Next Payload' at offset 0: "
                         "announces a IDi payload but the message ends here"], malformed
    answer = [m for m in pair.messages(peer="right") if m.exchange == "IKE_AUTH"]
    assert answer and "N(INVALID_SYNTAX)" in answer[0].summary


# ------------------------------------------------------------------ what others made or read


def _strongswan_sa(keys: dict, role: str) -> IkeSa:
    sa = IkeSa(role, bytes.fromhex(keys["spi_i"]), bytes.fromhex(keys["spi_r"]), Endpoint("192.0.2.1", 4500),
               Endpoint("192.0.2.2", 4500), State.INIT_DONE)
    sa.ike = Negotiated(cipher(EncrId.ENCR_AES_CBC, 128), integrity(IntegId.AUTH_HMAC_SHA2_256_128), None, None)
    sa.keys = IkeSaKeys(*(bytes.fromhex(keys[k]) for k in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")))
    sa.fragmentation = True
    return sa


def test_strongswans_fragments_reassemble_with_our_code():
    """tests/vectors/wire/ikev2-cert.pcap: two strongSwan 5.9.8 daemons, IKE_AUTH in SKF fragments."""
    from scapy.all import UDP, rdpcap

    keys = json.loads((WIRE / "ikev2-cert.keys.json").read_text())["ike_sas"][0]
    # Our side of each direction: the responder opens the initiator's fragments and vice versa.
    receivers = {True: _strongswan_sa(keys, "responder"), False: _strongswan_sa(keys, "initiator")}
    done = {}
    for packet in rdpcap(str(WIRE / "ikev2-cert.pcap")):
        data = bytes(packet[UDP].payload)
        if packet[UDP].dport == 4500:
            if not data.startswith(bytes(4)):
                continue
            data = data[4:]
        message = decode_message(data).message
        fragment = message.payloads[-1]
        if message.header.exchange != ExchangeType.IKE_AUTH or not isinstance(fragment, EncryptedFragmentPayload):
            continue
        result = fragmentation.accept(receivers[message.header.is_initiator], data, message.header, fragment)
        assert not result.reason, result.reason
        if result.chain is not None:
            payloads, _ = decode_payloads(result.chain, result.first_inner, sender_is_initiator=message.header.is_initiator)
            done[message.header.is_initiator] = payloads
    ids = {side: next(p for p in payloads if isinstance(p, IdPayload) and p.initiator == side) for side, payloads in done.items()}
    assert ids[True].data == b"a.example" and ids[False].data == b"b.example"


def test_a_fragmented_request_and_response_interleaved_both_reassemble():
    """RFC 7383 §2.6: reassembly is per message ID and direction, so the peer's fragmented request
    arriving while its fragmented response to our request is incomplete must not discard either."""
    keys = json.loads((WIRE / "ikev2-cert.keys.json").read_text())["ike_sas"][0]
    sender, receiver = _strongswan_sa(keys, "initiator"), _strongswan_sa(keys, "responder")
    rng = random.Random(7)
    chains, sent = {}, {}
    for is_response, message_id in ((True, 5), (False, 2)):
        flags = HeaderFlags.INITIATOR | (HeaderFlags.RESPONSE if is_response else 0)
        header = Header(sender.spi_i, sender.spi_r, 0, ExchangeType.CREATE_CHILD_SA, int(flags), message_id)
        chains[is_response] = rng.randbytes(700)
        fragments = fragmentation.split(sender, header, 33, chains[is_response], 300, lambda n: rng.randbytes(16))
        assert len(fragments) >= 3
        sent[is_response] = [(data, decode_message(data).message) for data, _ in fragments]
    # Response fragment 1, then the whole request, then the rest of the response.
    order = sent[True][:1] + sent[False] + sent[True][1:]
    done = {}
    for data, message in order:
        result = fragmentation.accept(receiver, data, message.header, message.payloads[-1])
        assert not result.reason, result.reason
        if result.chain is not None:
            done[message.header.is_response] = (result.chain, result.first_inner)
    assert done == {True: (chains[True], 33), False: (chains[False], 33)}
    assert receiver.reassembly == {}  # nothing left held once both completed


@needs_tshark()
def test_tshark_decrypts_and_reassembles_our_fragments(tmp_path):
    from ikelab.lab.transports import MemoryTransport
    from ikelab.lab.session import Session

    lesson = dataclasses.replace(LESSON, left=dataclasses.replace(LESSON.left, fragment_size=576),
                                 right=dataclasses.replace(LESSON.right, fragment_size=576))
    transport = MemoryTransport.for_lesson(lesson)
    session = Session(lesson, transport, seed=1)
    try:
        session.run()
    finally:
        transport.close()
    assert_no_internal_error(session)
    assert session.outcome.success
    path = tmp_path / "frag.pcapng"
    export_capture(path, session.trace, lesson)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(path.with_suffix(".wireshark")))
    fields = ["-e", "_ws.malformed", "-e", "isakmp.frag.number", "-e", "isakmp.auth.data"]
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|", *fields],
                         env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    sent = [m for m in session.trace.of(MessageEvent) if m.direction == "sent"]
    assert len(rows) == len(sent) and all(r[0] == "" for r in rows)
    assert [r[1] for r in rows] == [str(skf(m.data).fragment_number) if skf(m.data) else "" for m in sent]
    # Wireshark reassembled each fragmented IKE_AUTH and found the AUTH our peers computed in it.
    ours = [e.expected.hex() for e in session.trace.of(AuthEvent) if e.action == "computed"]
    assert [r[2] for r in rows if r[2]] == ours
    verbose = subprocess.run(["tshark", "-r", str(path), "-V"], env=env, capture_output=True, text=True, check=True).stdout
    fragments = sum(1 for m in sent if skf(m.data))
    assert verbose.count("[correct]") == fragments and "[incorrect]" not in verbose


def test_tui_shows_each_fragment_as_an_arrow_with_its_slice():
    from test_tui_app import SIZE, make_app, pilot_test, press, settle

    from ikelab.tui.ladder import Ladder
    from ikelab.tui.message_view import PLAINTEXT, MessageView

    lesson = dataclasses.replace(LESSON, left=dataclasses.replace(LESSON.left, fragment_size=576),
                                 right=dataclasses.replace(LESSON.right, fragment_size=576))

    @pilot_test
    async def drive():
        app = make_app(lesson)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await press(pilot, "n", "n", "n", "2")  # left's IKE_AUTH goes out: its fragments are in flight
            view = app.screen.query_one(MessageView)
            message = view.message
            assert message.exchange == "IKE_AUTH" and skf(message.data) is not None
            names = [n.data.field.name for n in view.nodes[PLAINTEXT]]
            assert any(name.startswith("Fragment ") and name.endswith(" of 2") for name in names), names
            # One arrow per datagram: the fragments, not the reassembled message.
            summaries = [m.summary for m in app.screen.query_one(Ladder).messages]
            assert any(s.startswith("HDR, SKF(1/2) {IDi, CERT") for s in summaries), summaries
            assert "HDR, SKF(2/2)" in summaries

    drive()


@needs_lab()
@needs_tshark()
def test_ikelab_to_ikelab_in_the_lab_fragments_pings_and_tshark_decrypts(tmp_path, capsys):
    """The strongSwan scenario with ikelab on both sides: RSA-3072 certificates, IKE_AUTH in SKF
    fragments of exactly 1280-byte IP datagrams, ping through the tunnel, the lab's own capture
    (tcpdump) decrypted by tshark with the tables ikelab wrote."""
    from ikelab.cli import main

    text = (Path(__file__).parent.parent / "lessons" / "ikev2-certs.toml").read_text()
    lesson = tmp_path / "certs-rsa.toml"
    lesson.write_text(text.replace('key = "ecdsa256", san', 'key = "rsa3072", san'))
    capture = tmp_path / "run.pcapng"
    assert main(["run", str(lesson), "--headless", "--ping", "3", "--pcap", str(capture)]) == 0
    assert "3 packets transmitted, 3 received" in capsys.readouterr().out
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(capture.with_suffix(".wireshark")))
    fields = ["-e", "ip.src", "-e", "ip.len", "-e", "_ws.malformed", "-e", "isakmp.frag.number", "-e", "isakmp.auth.data", "-e", "icmp.type"]
    out = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=|", *fields],
                         env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    assert all(r[2] == "" for r in rows)
    fragments = [(r[0], r[1], r[3]) for r in rows if r[3]]
    assert fragments[:4] == [("192.0.2.1", "1280", "1"), ("192.0.2.1", fragments[1][1], "2"),
                             ("192.0.2.2", "1280", "1"), ("192.0.2.2", fragments[3][1], "2")]
    assert sum(1 for r in rows if r[4]) == 2  # both AUTH payloads found in the reassembled, decrypted messages
    assert [r[5] for r in rows if r[5]] == ["8", "0"] * 3  # echo request and reply, decrypted from ESP
