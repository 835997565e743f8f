"""IKEv1 between ikelab and strongSwan 5.9.8 (charon, `version = 1`) in the lab, ikelab in both
roles, with real ping through the mixed tunnel: main mode PSK, aggressive mode PSK, quick mode with
PFS, main mode with certificates. strongSwan's libipsec always UDP-encapsulates ESP, so IKE floats
to port 4500 and the IPsec SAs ikelab installs must carry the encapsulation ports."""

from __future__ import annotations

import dataclasses
import re

import pytest

from conftest import needs_lab
from ikelab.lab.runs import new_session
from ikelab.crypto.names import parse_proposal
from ikelab.lab.lab import Lab
from ikelab.lab.strongswan import available
from ikelab.lessons import load_lesson
from ikelab.trace import ChildSaEvent, Ikev1KeysEvent, Ikev1MessageEvent

pytestmark = [needs_lab(), pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run here: {available()}")]

PSK_LESSON = load_lesson("ikev2-strongswan")  # ikelab left, strongSwan right, PSK


def ikev1(lesson, mode: str = "main", esp: str | None = None):
    lesson = dataclasses.replace(lesson, ike_version=1, mode=mode)
    if esp is not None:
        spec = (parse_proposal(esp, ike=False),)
        lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, esp=spec), right=dataclasses.replace(lesson.right, esp=spec))
    return lesson


def swapped(lesson):
    """strongSwan initiates, ikelab responds."""
    left = dataclasses.replace(lesson.left, role="responder")
    right = dataclasses.replace(lesson.right, role="initiator")
    return dataclasses.replace(lesson, left=left, right=right)


def handshake_and_ping(lesson, count: int = 3):
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        log = lab.charons["right"].logs().read_text(errors="replace")
        assert session.outcome.ike_up.get("left"), (session.outcome.failures, log[-3000:])
        result = lab.ping(count)
        counters = lab.datapath.counters("left")
    return session, log, result, counters


def check(session, log, result, counters, count: int = 3) -> None:
    assert (result.transmitted, result.received) == (count, count), result.lines
    assert [c["packets"] for c in counters["outbound"].values()] == [count]
    assert [c["packets"] for c in counters["inbound"].values()] == [count]
    assert "CHILD_SA net{1} established" in log
    # strongSwan logs the Ka it derived: the same as ours.
    ka = session.trace.of(Ikev1KeysEvent, "left")[0].keys["Ka"]
    assert " ".join(f"{b:02X}" for b in ka[:16]) in log
    # libipsec made both sides believe in a NAT: IKE moved to 4500 and ESP travels in UDP there.
    (child,) = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"]
    assert child.outbound["encap"] == child.inbound["encap"] == [4500, 4500]
    assert [m for m in session.trace.of(Ikev1MessageEvent) if m.exchange == "Quick Mode"][0].src.endswith(":4500")


ROLES = ["ikelab initiates", "strongSwan initiates"]


@pytest.mark.parametrize("roles", ROLES)
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_psk_phase1_then_ping(mode, roles):
    lesson = ikev1(PSK_LESSON, mode)
    lesson = swapped(lesson) if roles == "strongSwan initiates" else lesson
    check(*handshake_and_ping(lesson))


@pytest.mark.parametrize("roles", ROLES)
def test_quick_mode_with_pfs_then_ping(roles):
    lesson = ikev1(PSK_LESSON, "main", esp="aes128-sha256-modp2048")
    lesson = swapped(lesson) if roles == "strongSwan initiates" else lesson
    session, log, result, counters = handshake_and_ping(lesson)
    check(session, log, result, counters)
    quick = [m for m in session.trace.of(Ikev1MessageEvent) if m.exchange == "Quick Mode" and m.direction != "retransmitted"]
    assert [("KE" in m.summary.split(", ")) for m in quick[:2]] == [True, True]  # g(qm)^xy: PFS
    assert "selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ" in log


def test_strongswan_answers_our_r_u_there():
    """Dead peer detection (RFC 3706): ikelab asks every second, charon answers each with the same number."""
    from ikelab.trace import NoteEvent

    lesson = ikev1(PSK_LESSON, "main")
    lesson = dataclasses.replace(lesson, duration=3.5, left=dataclasses.replace(lesson.left, liveness_every=1.0))
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        log = lab.charons["right"].logs().read_text(errors="replace")
    informational = [f"{m.peer} {m.direction}: {m.summary}" for m in session.trace.of(Ikev1MessageEvent) if m.exchange == "Informational"]
    assert informational[:2] == ["left sent: HDR*, HASH(1), N(R_U_THERE)", "left received: HDR*, HASH(1), N(R_U_THERE_ACK)"]
    alive = [e.text for e in session.trace.of(NoteEvent, "left") if "it is alive" in e.text]
    assert len(alive) >= 2
    assert "received DPD vendor ID" in log and log.count("generating INFORMATIONAL_V1 request") >= 2
    assert log.count("[ HASH N(DPD_ACK) ]") == len(alive)


CERT_LESSON = load_lesson("ikev1-main-certs")  # ikelab both sides, RSA certificates from the lab CA


def with_strongswan_right(lesson, mode: str, key: str | None = None):
    def cert(peer):
        return peer if key is None else dataclasses.replace(peer, certificate=dataclasses.replace(peer.certificate, key=key))

    right = dataclasses.replace(cert(lesson.right), implementation="strongswan")
    return dataclasses.replace(lesson, mode=mode, left=cert(lesson.left), right=right)


@pytest.mark.parametrize("mode, roles, key, scheme", [
    ("main", "ikelab initiates", None, "RSA_EMSA_PKCS1_NULL"),
    ("main", "strongSwan initiates", None, "RSA_EMSA_PKCS1_NULL"),
    ("aggressive", "ikelab initiates", None, "RSA_EMSA_PKCS1_NULL"),
    ("aggressive", "strongSwan initiates", None, "RSA_EMSA_PKCS1_NULL"),
    ("main", "ikelab initiates", "ecdsa256", "ECDSA_WITH_NULL"),
    ("main", "strongSwan initiates", "ecdsa384", "ECDSA_WITH_NULL"),
])
def test_certificates_then_ping(mode, roles, key, scheme):
    """RSA_SIGNATURES (the lesson's RSA keys) or ECDSA (RFC 4754): charon checks our certificate up to
    the lab CA and our SIG with the scheme it names; we check its certificate and SIG."""
    from ikelab.trace import CertificateEvent, Ikev1HashEvent

    lesson = with_strongswan_right(CERT_LESSON, mode, key)
    lesson = swapped(lesson) if roles == "strongSwan initiates" else lesson
    session, log, result, counters = handshake_and_ping(lesson)
    check(session, log, result, counters)
    (cert,) = session.trace.of(CertificateEvent, "left")
    assert cert.ok and cert.subject.endswith("CN=right.example")
    (verified,) = [e for e in session.trace.of(Ikev1HashEvent, "left") if e.label.startswith("SIG_") and e.action == "verified"]
    assert verified.ok
    assert f"authentication of 'left.example' with {scheme} successful" in log
    assert 'using trusted ca certificate "O=ikelab, CN=ikelab Lab CA"' in log


@pytest.mark.parametrize("roles", ROLES)
def test_ecdsa_keys_on_different_curves_meet_under_the_initiators_method(roles):
    """ikelab with a P-384 key, charon with a P-256 one: the initiator's key names the method (10 or
    9), HASH is made with that method's hash, and each side signs it on its own curve. RFC 4754 pairs
    each method with one curve; charon accepts the mix (it checks the key type only) and so do we."""
    from ikelab.trace import Ikev1HashEvent, NoteEvent

    lesson = with_strongswan_right(CERT_LESSON, "main", "ecdsa256")
    lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, certificate=dataclasses.replace(lesson.left.certificate, key="ecdsa384")))
    lesson = swapped(lesson) if roles == "strongSwan initiates" else lesson
    session, log, result, counters = handshake_and_ping(lesson)
    check(session, log, result, counters)
    digest = 48 if roles == "ikelab initiates" else 32  # HMAC-SHA-384 for method 10, HMAC-SHA-256 for 9
    signed = {e.action: e for e in session.trace.of(Ikev1HashEvent, "left") if e.label.startswith("SIG_")}
    assert [len(v) for v in signed["computed"].parts.values()] == [digest] and len(signed["computed"].output) == 96
    assert signed["verified"].ok and len(signed["verified"].output) == 64
    assert any("RFC 4754 pairs with" in e.text for e in session.trace.of(NoteEvent, "left"))
    assert "authentication of 'left.example' with ECDSA_WITH_NULL successful" in log


def test_we_answer_strongswans_r_u_there():
    """charon with dpd_delay = 1s (the lesson's liveness_every on its side) asks while the tunnel is
    quiet; ikelab answers each R-U-THERE with an ACK carrying the same sequence number. The handshake
    run still ends, though a 1 s DPD never leaves it the 1.5 s without traffic it normally waits for."""
    import threading
    import time

    from ikelab.trace import NoteEvent

    lesson = ikev1(PSK_LESSON, "main")
    lesson = dataclasses.replace(lesson, right=dataclasses.replace(lesson.right, liveness_every=1.0))
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        handshake = threading.Thread(target=session.run, daemon=True)
        handshake.start()
        handshake.join(timeout=20)
        assert not handshake.is_alive(), "the handshake run never ended under strongSwan's 1 s DPD"
        stop = threading.Event()
        live = threading.Thread(target=session.run_live, args=(stop,))
        live.start()
        time.sleep(3.0)
        stop.set()
        live.join()
        log = lab.charons["right"].logs().read_text(errors="replace")
        conf = (lab.charons["right"].workdir / "swanctl" / "swanctl.conf").read_text()
    asked = [e.text for e in session.trace.of(NoteEvent, "left") if "the peer asks R-U-THERE #" in e.text]
    informational = [f"{m.direction}: {m.summary}" for m in session.trace.of(Ikev1MessageEvent, "left") if m.exchange == "Informational"]
    assert len(asked) >= 1 and informational[:2] == ["received: HDR*, HASH(1), N(R_U_THERE)", "sent: HDR*, HASH(1), N(R_U_THERE_ACK)"]
    assert "dpd_delay = 1s" in conf
    # charon parsed our ACKs (the last R-U-THERE or ACK may still be on its way as the run stops).
    parsed, sent = log.count("[ HASH N(DPD_ACK) ]"), informational.count("sent: HDR*, HASH(1), N(R_U_THERE_ACK)")
    assert parsed >= 1 and sent - parsed in (0, 1)
    assert log.count("generating INFORMATIONAL_V1 request") - parsed in (0, 1)


def test_distinguished_name_identities_then_ping():
    """ID_DER_ASN1_DN on both sides: the lab CA puts the DN in the certificate's subject; charon sends
    its DN with other string types than ours, which still names the same subject."""
    from ikelab.ikev2.config import Identity
    from ikelab.trace import CertificateEvent

    left, right = Identity.parse("O=ikelab, CN=left.example"), Identity.parse("O=ikelab, CN=right.example")
    lesson = with_strongswan_right(CERT_LESSON, "main")
    lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, identity=left, remote_identity=right),
                                 right=dataclasses.replace(lesson.right, identity=right, remote_identity=left))
    session, log, result, counters = handshake_and_ping(swapped(lesson))
    check(session, log, result, counters)
    (cert,) = session.trace.of(CertificateEvent, "left")
    assert cert.ok and cert.checks[-1]["name"] == "identity" and "subject" in cert.checks[-1]["detail"]
    assert "authentication of 'O=ikelab, CN=left.example' with RSA_EMSA_PKCS1_NULL successful" in log


def test_a_strongswan_that_dies_is_declared_dead_and_its_sas_leave_the_datapath():
    """charon killed (no DELETE sent): our R-U-THEREs go unanswered, and after the retries the ISAKMP
    SA fails with the reason and the IPsec SAs are removed, so ping no longer passes."""
    import threading
    import time

    from ikelab.ikev2.config import RetransmitPolicy
    from ikelab.trace import NoteEvent

    lesson = ikev1(PSK_LESSON, "main")
    lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, liveness_every=1.0))
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        ours = session.peers["left"]
        policy = RetransmitPolicy(timeout=0.5, base=1.5, tries=2)
        ours.config = dataclasses.replace(ours.config, retransmit=policy)
        session.run()
        assert lab.ping(1).received == 1
        charon = lab.charons["right"].process
        charon.kill()  # SIGKILL: no DELETE, the peer just vanishes
        charon.wait()
        stop = threading.Event()
        live = threading.Thread(target=session.run_live, args=(stop,))
        live.start()
        # 1 s quiet, then R-U-THEREs at +0, +0.5, +1.25 s, dead 1.125 s later: about 3.4 s, if timers are on time
        deadline = time.monotonic() + 15.0
        while "left" not in session.outcome.failures and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        live.join()
        after = lab.ping(1)
    asked = [e.text for e in session.trace.of(NoteEvent, "left") if "R-U-THERE #" in e.text and "attempt" in e.text]
    assert len(asked) == policy.tries + 1  # the first and its repetitions, however late the timers fired
    failure = session.outcome.failures["left"]
    reason = re.fullmatch(r"dead peer: no R-U-THERE-ACK to 3 R-U-THERE messages in ([0-9.]+) s \(RFC 3706\); its IPsec SAs are removed", failure.reason)
    assert reason, failure.reason
    # measured from the first R-U-THERE: at least the schedule's 0.5 + 0.75 + 1.125 s, more when timers fire late
    assert 2.3 <= float(reason.group(1)) <= 2.375 + 3.0, failure.reason
    assert session.outcome.children["left"] == [] and after.received == 0
