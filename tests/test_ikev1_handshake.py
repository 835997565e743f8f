"""Two IKEv1 peers in memory: main mode and aggressive mode, each followed by quick mode.

`run()` here is the stepper of these tests (the lab's Session drives IKEv2 peers): it carries
each datagram to the other peer, fires retransmission timers on a virtual clock, and records
the effects. The other test_ikev1_* modules use it too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field

import pytest

from ikelab.crypto.names import parse_proposal
from ikelab.effects import DeleteChildSa, Endpoint, IkeSaFailed, IkeSaUp, InstallChildSa, Send
from ikelab.esp.packet import InboundSa, OutboundSa
from ikelab.esp.sa import ChildSa
from ikelab.ikev1.config import Ikev1Config
from ikelab.ikev1.engine import Ikev1Peer
from ikelab.ikev2.config import Identity
from ikelab.rng import SeededRandom
from ikelab.trace import (
    DhSharedEvent,
    Ikev1HashEvent,
    Ikev1IvEvent,
    Ikev1KeysEvent,
    Ikev1MessageEvent,
    NoteEvent,
    PrfEvent,
    PrfPlusEvent,
    Trace,
)

LEFT, RIGHT = Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500)
NETS = {"left": "198.51.100.0/24", "right": "203.0.113.0/24"}
ICMP_PACKET = bytes.fromhex("45000054000040004001000" + "0c6336401cb007101") + b"\x08\x00" + bytes(62)


def config(name: str, **changes) -> Ikev1Config:
    """left.example (198.51.100.0/24) or right.example (203.0.113.0/24); proposals as keyword strings."""
    other = "right" if name == "left" else "left"
    values = dict(
        name=name,
        local_id=Identity.parse(f"{name}.example"),
        psk=b"correct horse battery staple",
        ike_proposals="aes128-sha256-modp2048",
        esp_proposals="aes128-sha256",
        local_ts=(NETS[name],),
        remote_ts=(NETS[other],),
    )
    values.update(changes)
    for key in ("ike_proposals", "esp_proposals"):
        if isinstance(values[key], str):
            values[key] = tuple(parse_proposal(t, ike=key == "ike_proposals") for t in values[key].split(","))
    return Ikev1Config(**values)


@dataclass
class Run:
    trace: Trace
    peers: dict[str, Ikev1Peer]
    up: dict[str, bool] = field(default_factory=dict)
    failed: dict[str, IkeSaFailed] = field(default_factory=dict)
    children: dict[str, list[ChildSa]] = field(default_factory=lambda: {"left": [], "right": []})
    wire: list[Send] = field(default_factory=list)  # every datagram a peer sent, lost or not
    clock: float = 0.0
    queue: deque = field(default_factory=deque)

    def apply(self, name: str, effects: list) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.queue.append(e)
            elif isinstance(e, InstallChildSa):
                self.children[name].append(e.child)
            elif isinstance(e, DeleteChildSa):
                self.children[name].remove(e.child)
            elif isinstance(e, IkeSaUp):
                self.up[name] = True
            elif isinstance(e, IkeSaFailed):
                self.failed[name] = e

    def settle(self, lose=lambda index, send: False, max_steps: int = 300) -> "Run":
        """Carry datagrams and fire timers until nothing is left to do."""
        at = {LEFT.host: "left", RIGHT.host: "right"}  # by address: IKE may float to port 4500
        for _ in range(max_steps):
            if self.queue:
                send = self.queue.popleft()
                self.clock += 0.001
                self.wire.append(send)
                if not lose(len(self.wire) - 1, send):
                    receiver = at[send.dst.host]
                    self.apply(receiver, self.peers[receiver].receive(send.data, send.src, send.dst, self.clock))
                continue
            timers = [t for t in (p.next_timer() for p in self.peers.values()) if t is not None]
            if not timers:
                break
            self.clock = max(self.clock, min(timers))
            for name, peer in self.peers.items():
                if peer.next_timer() is not None and peer.next_timer() <= self.clock:
                    self.apply(name, peer.on_timer(self.clock))
        return self

    def act(self, name: str, action: str) -> "Run":
        self.apply(name, self.peers[name].act(action, self.clock))
        return self.settle()

    def messages(self, direction: str = "sent", peer: str | None = None) -> list[Ikev1MessageEvent]:
        return [e for e in self.trace.of(Ikev1MessageEvent, peer) if e.direction == direction]

    def notes(self, peer: str, level: str = "error") -> list[str]:
        return [e.text for e in self.trace.of(NoteEvent, peer) if e.level == level]

    @property
    def success(self) -> bool:
        return self.up == {"left": True, "right": True} and not self.failed and all(len(c) == 1 for c in self.children.values())


def run(left: dict | None = None, right: dict | None = None, *, seed: int = 1, lose=lambda index, send: False) -> Run:
    """left (the initiator) and right with `config()` changed as given."""
    return run_configs(config("left", **(left or {})), config("right", **(right or {})), seed=seed, lose=lose)


def run_configs(left: Ikev1Config, right: Ikev1Config, *, seed: int = 1, lose=lambda index, send: False) -> Run:
    trace = Trace()
    peers = {
        "left": Ikev1Peer(left, SeededRandom(seed, "left"), trace, LEFT),
        "right": Ikev1Peer(right, SeededRandom(seed, "right"), trace, RIGHT),
    }
    result = Run(trace, peers)
    result.apply("left", peers["left"].initiate(RIGHT, 0.0))
    result.settle(lose)
    internal = [e.text for e in trace.of(NoteEvent) if e.text.startswith("internal error")]
    assert not internal, internal
    return result


def carries_ping(r: Run) -> bool:
    """An ICMP packet through left's outbound ESP SA and right's inbound one, and back."""
    (left,), (right,) = r.children["left"], r.children["right"]
    there = InboundSa(right.inbound).decapsulate(OutboundSa(left.outbound).encapsulate(ICMP_PACKET))
    back = InboundSa(left.inbound).decapsulate(OutboundSa(right.outbound).encapsulate(ICMP_PACKET))
    return there == back == ICMP_PACKET


def summaries(r: Run) -> list[str]:
    return [f"{m.peer} {m.label}: {m.summary}" for m in r.messages()]


# --- the exchanges ---------------------------------------------------------------------------


def test_main_mode_then_quick_mode():
    r = run()
    assert r.success and carries_ping(r)
    assert summaries(r) == [
        "left Main Mode message 1: HDR, SA, VID, VID",
        "right Main Mode message 2: HDR, SA, VID, VID",
        "left Main Mode message 3: HDR, KE, Ni, NAT-D, NAT-D",
        "right Main Mode message 4: HDR, KE, Nr, NAT-D, NAT-D",
        "left Main Mode message 5: HDR*, IDii, HASH_I, N(INITIAL_CONTACT)",
        "right Main Mode message 6: HDR*, IDir, HASH_R",
        "left Quick Mode message 1: HDR*, HASH(1), SA, Ni, IDci, IDcr",
        "right Quick Mode message 2: HDR*, HASH(2), SA, Nr, IDci, IDcr",
        "left Quick Mode message 3: HDR*, HASH(3)",
    ]
    left, right = r.children["left"][0], r.children["right"][0]
    assert left.outbound == right.inbound and left.inbound == right.outbound
    assert (left.local_ts, left.remote_ts) == (("198.51.100.0/24",), ("203.0.113.0/24",))
    assert left.inbound.encryption_key != left.outbound.encryption_key  # each direction mixes in its own SPI


def test_aggressive_mode_then_quick_mode():
    r = run(left={"mode": "aggressive"})
    assert r.success and carries_ping(r)
    assert summaries(r)[:3] == [
        "left Aggressive Mode message 1: HDR, SA, KE, Ni, IDii, VID, VID",
        "right Aggressive Mode message 2: HDR, SA, KE, Nr, IDir, VID, VID, NAT-D, NAT-D, HASH_R",
        "left Aggressive Mode message 3: HDR*, HASH_I, NAT-D, NAT-D",
    ]
    assert [m.exchange for m in r.messages()][3:] == ["Quick Mode"] * 3


@pytest.mark.parametrize(
    "ike, esp",
    [
        ("aes256-sha1-modp2048", "aes256-sha1"),
        ("aes192-sha384-ecp256", "aes128gcm16"),
        ("aes128-sha512-curve25519", "aes256-sha512-modp3072"),  # PFS
        ("aes256-sha256-ecp384", "aes128gcm16-ecp256"),  # PFS with an AEAD cipher
    ],
)
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_proposals_and_pfs(mode, ike, esp):
    both = {"ike_proposals": ike, "esp_proposals": esp}
    r = run({**both, "mode": mode}, both)
    assert r.success and carries_ping(r)
    pfs = parse_proposal(esp, ike=False).dh
    quick = [m for m in r.messages() if m.exchange == "Quick Mode"]
    assert ("KE" in quick[0].summary.split(", ")) == bool(pfs)
    keymats = [e for e in r.trace.of(PrfPlusEvent, "left") if e.label.startswith("KEYMAT")]
    assert len(keymats) == 2 and all(("g(qm)^xy" in e.formula) == bool(pfs) for e in keymats)


def test_responder_picks_its_first_configured_proposal_among_several_offered():
    r = run({"ike_proposals": "aes256-sha512-modp3072,aes128-sha256-modp2048"}, {"ike_proposals": "aes128-sha256-modp2048,aes256-sha512-modp3072"})
    assert r.success
    first = r.messages()[0].tree.find("Proposal #1")
    assert first.display == "ISAKMP, 2 transforms"
    assert "AES_CBC-128, SHA2_256, MODP_2048" in r.messages()[1].tree.find("Proposal #1").children[-1].display


def test_seeded_runs_repeat_byte_for_byte():
    assert [s.data for s in run(seed=7).wire] == [s.data for s in run(seed=7).wire]
    assert [s.data for s in run(seed=7).wire] != [s.data for s in run(seed=8).wire]


# --- what the trace shows ------------------------------------------------------------------------


def test_trace_shows_every_key_and_its_inputs():
    r = run()
    for peer in ("left", "right"):
        prfs = {e.label: e for e in r.trace.of(PrfEvent, peer)}
        assert list(prfs) == ["SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e"]
        assert prfs["SKEYID"].key == b"correct horse battery staple"
        (keys,) = r.trace.of(Ikev1KeysEvent, peer)
        assert keys.keys["SKEYID_e"] == prfs["SKEYID_e"].output and keys.keys["Ka"] == keys.keys["SKEYID_e"][:16]
        (shared,) = r.trace.of(DhSharedEvent, peer)
        assert shared.shared in prfs["SKEYID_d"].data
    assert r.trace.of(Ikev1KeysEvent, "left")[0].keys == r.trace.of(Ikev1KeysEvent, "right")[0].keys
    hashes = [(e.peer, e.label, e.action, e.ok) for e in r.trace.of(Ikev1HashEvent)]
    assert hashes == [
        ("left", "HASH_I", "computed", None),
        ("right", "HASH_I", "verified", True),
        ("right", "HASH_R", "computed", None),
        ("left", "HASH_R", "verified", True),
        ("left", "HASH(1)", "computed", None),
        ("right", "HASH(1)", "verified", True),
        ("right", "HASH(2)", "computed", None),
        ("left", "HASH(2)", "verified", True),
        ("left", "HASH(3)", "computed", None),
        ("right", "HASH(3)", "verified", True),
    ]
    hash_i = r.trace.of(Ikev1HashEvent, "left")[0]
    assert list(hash_i.parts) == ["g^xi", "g^xr", "CKY-I", "CKY-R", "SAi_b", "IDii_b"]
    assert hash_i.parts["IDii_b"] == b"\x02\x00\x00\x00left.example"


def test_trace_shows_the_iv_chain():
    r = run()
    ivs = [(e.label, e.output) for e in r.trace.of(Ikev1IvEvent, "left")]
    sent = {m.label: m.data for m in r.messages(peer="left")} | {m.label: m.data for m in r.messages(peer="right")}
    labels = [label for label, _ in ivs]
    assert labels[0] == "phase 1 IV" and "IV of Main Mode message 5" in labels
    by_label = dict(ivs)
    assert by_label["IV of Main Mode message 6"] == sent["Main Mode message 5"][-16:]  # CBC chaining
    assert by_label["IV of Quick Mode message 2"] == sent["Quick Mode message 1"][-16:]
    quick = next(e for e in r.trace.of(Ikev1IvEvent, "left") if e.label.startswith("IV of Quick Mode 0x"))
    assert quick.inputs["last phase 1 CBC block"] == sent["Main Mode message 6"][-16:]


def test_received_messages_decode_with_their_plaintext():
    r = run()
    message5 = next(m for m in r.messages("received", "right") if m.label == "Main Mode message 5")
    assert [f.name for f in message5.tree.children] == ["Header", "Encrypted Data"]
    names = [f.name for f in message5.inner_tree]
    assert names == ["Identification payload", "Hash payload", "Notification payload: INITIAL_CONTACT", "Padding"]
    assert message5.to_dict()["inner_tree"][0]["children"][3]["display"] == "ID_FQDN"


# --- retransmission ------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", range(9))
def test_each_lost_message_is_recovered_by_retransmission(lost):
    r = run(lose=lambda index, send: index == lost)
    assert r.success and carries_ping(r)
    # Both sides may time out: the one whose message was lost, and the one waiting for the answer.
    assert 1 <= len(r.messages("retransmitted")) <= 2
    assert r.clock >= 2.0  # on the retransmission timer, not before


def test_an_unreachable_responder_fails_after_the_retries():
    r = run(lose=lambda index, send: send.dst == RIGHT)
    assert r.failed["left"].reason.startswith("no answer to Main Mode message 1 after 4 retransmissions")
    assert len(r.messages("retransmitted", "left")) == 4


# --- Wireshark reads what ikelab sends ---------------------------------------------------------


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("mode, encap", [("main", False), ("aggressive", False), ("main", True)])
def test_tshark_decrypts_phase1_and_quick_mode_with_the_ikev1_table(tmp_path, mode, encap):
    from ikelab.export.pcap import write_pcapng

    r = run(left={"mode": mode, "force_encap": encap})
    path = tmp_path / "ikev1.pcapng"
    write_pcapng(path, r.trace)
    keys = r.trace.of(Ikev1KeysEvent, "left")[0]
    record = f"{keys.cky_i.hex()},{keys.keys['Ka'].hex()}"  # Wireshark's ikev1_decryption_table
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", f"uat:ikev1_decryption_table:{record}", "-T", "fields", "-e", "isakmp.hash", "-e", "_ws.malformed"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    sent = [e for e in r.trace.of(Ikev1HashEvent) if e.action == "computed"]
    encrypted = [line.split("\t")[0] for line in out if line.strip()]
    assert [h for h in encrypted if h] == [e.output.hex() for e in sent]
    assert not any(line.split("\t")[-1] for line in out if line.strip())


# --- NAT traversal (RFC 3947) ----------------------------------------------------------------


@pytest.mark.parametrize("mode, first_on_4500", [("main", "Main Mode message 5"), ("aggressive", "Aggressive Mode message 3")])
def test_a_nat_moves_ike_to_port_4500_and_esp_into_udp(mode, first_on_4500):
    from ikelab.wire.isakmp_constants import EncapsulationMode

    r = run({"mode": mode, "force_encap": True})  # as strongSwan's `encap = yes`: a fake NAT-D hash
    assert r.success and carries_ping(r)
    ports = {m.label: (m.src.rpartition(":")[2], m.dst.rpartition(":")[2]) for m in r.messages()}
    labels = list(ports)
    floated = labels.index(first_on_4500)
    assert all(ports[label] == ("500", "500") for label in labels[:floated])
    assert all(ports[label] == ("4500", "4500") for label in labels[floated:])
    (left,), (right,) = r.children["left"], r.children["right"]
    assert left.outbound.encap == right.inbound.encap == (4500, 4500)
    quick_1 = next(m for m in r.messages() if m.label == "Quick Mode message 1")
    offered = quick_1.inner_tree[1].find("Transform #1")
    assert any(f.name == "Attribute ENCAPSULATION_MODE" and f.display == EncapsulationMode.UDP_ENCAPSULATED_TUNNEL.name for f in offered.children)
    assert any("NAT detected in front of the peer" in t for t in r.notes("right", "info"))


def test_duplicated_datagrams_are_answered_at_most_once():
    """The network delivers every datagram twice: repeats are recognised, nothing ping-pongs."""
    reference = run()
    trace = Trace()
    peers = {name: Ikev1Peer(config(name), SeededRandom(1, name), trace, p.local) for name, p in reference.peers.items()}
    peers["left"].initiate(RIGHT, 0.0)
    for send in reference.wire:
        receiver = "right" if send.dst.host == RIGHT.host else "left"
        _, second = (peers[receiver].receive(send.data, send.src, send.dst, 0.5) for _ in range(2))
        answered_again = [e for e in second if isinstance(e, Send)]
        assert len(answered_again) <= 1
    repeats = [e.text for e in trace.of(NoteEvent) if "arrived again" in e.text]
    assert len(repeats) == len(reference.wire)
    # Main mode 6 and quick mode 3 end their exchanges: a copy of them needs no answer.
    assert [t.split(" arrived")[0] for t in repeats if "needs no answer" in t] == ["Main Mode message 6", "Quick Mode message 3"]
    assert all(len(p.established()) == 1 for p in peers.values())
