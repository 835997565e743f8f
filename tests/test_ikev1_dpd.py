"""Dead peer detection (RFC 3706) on the engine's clock: R-U-THERE when the peer has been quiet,
R-U-THERE-ACK with the same sequence number, repetitions, and a dead peer declared with a reason."""

from __future__ import annotations

from test_ikev1_handshake import LEFT, RIGHT, Run, config

from ikelab.ikev1.engine import Ikev1Peer
from ikelab.ikev1.exchanges import informational
from ikelab.ikev2.config import RetransmitPolicy
from ikelab.rng import SeededRandom
from ikelab.trace import IkeSaEvent, Trace
from ikelab.wire.isakmp import NotifyPayload
from ikelab.wire.isakmp_constants import NotifyType, ProtocolId


def start(left: dict | None = None, right: dict | None = None) -> Run:
    trace = Trace()
    peers = {
        "left": Ikev1Peer(config("left", **(left or {})), SeededRandom(1, "left"), trace, LEFT),
        "right": Ikev1Peer(config("right", **(right or {})), SeededRandom(1, "right"), trace, RIGHT),
    }
    r = Run(trace, peers)
    r.apply("left", peers["left"].initiate(RIGHT, 0.0))
    return r


def until(r: Run, clock: float, lose=lambda send: False) -> Run:
    """Carry datagrams and fire timers due up to `clock` (DPD timers never run out by themselves)."""
    at = {LEFT.host: "left", RIGHT.host: "right"}
    while True:
        if r.queue:
            send = r.queue.popleft()
            r.clock += 0.001
            r.wire.append(send)
            if not lose(send):
                receiver = at[send.dst.host]
                r.apply(receiver, r.peers[receiver].receive(send.data, send.src, send.dst, r.clock))
            continue
        timers = [t for t in (p.next_timer() for p in r.peers.values()) if t is not None and t <= clock]
        if not timers:
            r.clock = clock
            return r
        r.clock = max(r.clock, min(timers))
        for name, peer in r.peers.items():
            if peer.next_timer() is not None and peer.next_timer() <= r.clock:
                r.apply(name, peer.on_timer(r.clock))


def dpd_messages(r: Run) -> list[str]:
    return [f"{m.peer}: {m.summary}" for m in r.messages() if m.exchange == "Informational"]


def test_r_u_there_after_a_quiet_interval_is_acknowledged_with_its_sequence_number():
    r = until(start({"dpd_every": 10.0}), 35.0)
    assert r.success
    assert dpd_messages(r) == ["left: HDR*, HASH(1), N(R_U_THERE)", "right: HDR*, HASH(1), N(R_U_THERE_ACK)"] * 3
    sent = [m for m in r.messages() if m.exchange == "Informational"]
    assert [round(m.time) for m in sent] == [10, 10, 20, 20, 30, 30]
    asked = [int(t.split("#")[1].split()[0]) for t in r.notes("left", "info") if "R-U-THERE #" in t and "attempt" in t]
    answered = [int(t.split("#")[1].split(";")[0]) for t in r.notes("right", "info") if "asks R-U-THERE #" in t]
    assert asked == answered and asked[1:] == [asked[0] + 1, asked[0] + 2]  # counts up (RFC 3706 §7)
    for m in sent:  # the sequence number is the notify's data: the plaintext's 4 bytes before padding
        assert any(n.to_bytes(4, "big") in m.plaintext for n in asked)
    assert not r.peers["left"].busy()  # waiting for the next R-U-THERE is not an exchange in flight
    assert r.notes("left") == [] and any("it is alive" in t for t in r.notes("left", "info"))


def test_a_silent_peer_is_declared_dead_after_the_retries():
    policy = RetransmitPolicy(timeout=1.0, base=2.0, tries=2)
    r = until(start({"dpd_every": 5.0, "retransmit": policy}), 6.0)
    assert r.success and len(dpd_messages(r)) == 2  # one R-U-THERE at 5 s, answered
    r = until(r, 60.0, lose=lambda send: send.src.host == RIGHT.host)  # right's answers are lost from now on
    later = dpd_messages(r)[2:]
    assert later.count("left: HDR*, HASH(1), N(R_U_THERE)") == 3 and later.count("right: HDR*, HASH(1), N(R_U_THERE_ACK)") == 3
    assert "left" in r.failed and r.children["left"] == []
    reason = r.failed["left"].reason
    assert reason == "dead peer: no R-U-THERE-ACK to 3 R-U-THERE messages in 7.0 s (RFC 3706); its IPsec SAs are removed"
    failed = [e for e in r.trace.of(IkeSaEvent, "left") if e.state == "failed"]
    assert failed and round(failed[0].time, 1) == 17.0  # R-U-THEREs at 10, 11 and 13 s; dead at 13 + 4
    assert r.peers["left"].next_timer() is None


def test_traffic_from_the_peer_postpones_the_next_r_u_there():
    r = until(start({"dpd_every": 10.0}), 8.0)
    r.apply("right", r.peers["right"].act("create-child", r.clock))  # a quick mode from right at 8 s
    r = until(r, 15.0)
    assert dpd_messages(r) == []


def test_an_ack_with_a_foreign_sequence_number_is_ignored():
    r = until(start({"dpd_every": 10.0}), 1.0)
    right = r.peers["right"]
    sa = right.established()[0]
    bogus = NotifyPayload(NotifyType.R_U_THERE_ACK, ProtocolId.ISAKMP, sa.cookies, b"\x00\x00\x00\x07")
    r.apply("right", right._run(r.clock, lambda: informational.send(right, sa, [bogus])))
    r = until(r, 2.0)
    assert any("answers no R-U-THERE of ours" in t for t in r.notes("left", "warning"))


def test_without_dpd_configured_no_r_u_there_is_sent_but_the_peer_is_answered():
    r = until(start(right={"dpd_every": 3.0}), 10.0)
    assert dpd_messages(r)[:2] == ["right: HDR*, HASH(1), N(R_U_THERE)", "left: HDR*, HASH(1), N(R_U_THERE_ACK)"]
    assert not any(m.startswith("left: HDR*, HASH(1), N(R_U_THERE)") for m in dpd_messages(r))


def test_no_r_u_there_to_a_peer_that_did_not_announce_dpd(monkeypatch):
    """RFC 3706 §5.1: only a peer that sent the DPD vendor ID answers R-U-THERE; we say why we do not ask."""
    from ikelab.ikev1.exchanges import phase1
    from ikelab.wire.isakmp import VendorPayload
    from ikelab.wire.isakmp_constants import DPD_VENDOR_ID

    original = phase1.vendor_ids
    monkeypatch.setattr(phase1, "vendor_ids", lambda peer: [v for v in original(peer) if peer.config.name == "left" or v != VendorPayload(DPD_VENDOR_ID)])
    r = until(start({"dpd_every": 2.0}), 10.0)
    assert r.success and dpd_messages(r) == []
    assert any("sent no RFC 3706 vendor ID" in t for t in r.notes("left", "info"))
    assert r.peers["left"].next_timer() is None


def test_the_dead_peer_reason_gives_the_time_measured_since_the_first_unanswered_r_u_there():
    """Wall-clock timers fire late: the reason must say how long we really waited, not the sum of the
    retransmission schedule (1 + 2 + 4 = 7 s here)."""
    policy = RetransmitPolicy(timeout=1.0, base=2.0, tries=2)
    r = until(start({"dpd_every": 5.0, "retransmit": policy}), 1.0)
    left = r.peers["left"]
    while left.next_timer() is not None and "left" not in r.failed:
        r.clock = left.next_timer() + 1.0  # every timer fires a second late
        r.apply("left", left.on_timer(r.clock))
        r.wire += r.queue
        r.queue.clear()  # lost: the peer never answers
    assert len(dpd_messages(r)) == 3  # R-U-THEREs at 6, 8 and 11 s; dead at 16 s
    assert r.failed["left"].reason == "dead peer: no R-U-THERE-ACK to 3 R-U-THERE messages in 10.0 s (RFC 3706); its IPsec SAs are removed"


def test_a_liveness_action_sends_no_r_u_there_to_a_peer_that_did_not_announce_dpd(monkeypatch):
    """Asked for by hand (the lesson's or TUI's "liveness"), R-U-THERE to a peer without the RFC 3706
    vendor ID would go unanswered and declare a live peer dead: nothing is sent, and the trace says why."""
    from ikelab.ikev1.exchanges import phase1
    from ikelab.wire.isakmp import VendorPayload
    from ikelab.wire.isakmp_constants import DPD_VENDOR_ID

    original = phase1.vendor_ids
    monkeypatch.setattr(phase1, "vendor_ids", lambda peer: [v for v in original(peer) if peer.config.name == "left" or v != VendorPayload(DPD_VENDOR_ID)])
    r = until(start(), 1.0)
    r.apply("left", r.peers["left"].act("liveness", r.clock))
    r = until(r, 60.0)
    assert r.success and dpd_messages(r) == [] and "left" not in r.failed
    assert any(t.startswith("no R-U-THERE sent: the peer sent no RFC 3706 vendor ID") for t in r.notes("left", "warning"))
    assert r.peers["left"].established()[0].dpd is None
