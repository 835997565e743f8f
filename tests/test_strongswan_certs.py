"""ikelab against strongSwan with certificates from the lab CA, ikelab in both roles: IKE_AUTH goes
out in SKF fragments (RFC 7383) from both sides, strongSwan's logged keys are ours, ping crosses the
mixed tunnel; a certificate strongSwan presents from an unknown CA gives a clear reason on ours."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from conftest import needs_lab
from ikelab.lab.runs import new_session
from ikelab.lab.lab import Lab
from ikelab.lab.strongswan import available
from ikelab.lessons import load_lesson
from ikelab.trace import CertificateEvent, IkeKeysEvent, NoteEvent
from ikelab.wire.ikev2 import EncryptedFragmentPayload, decode_message
from ikelab.wire.ikev2_constants import ExchangeType

pytestmark = [needs_lab(), pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run here: {available()}")]

LESSON = load_lesson("ikev2-strongswan-certs")
NON_ESP_MARKER = bytes(4)


def with_keys(lesson, key: str, fragment_size: int | None = None):
    """Both certificates of `key`; a smaller fragment_size on both sides (charon's too) where the
    certificates are too small to need fragments at strongSwan's default of 1280."""
    def change(peer):
        cert = dataclasses.replace(peer.certificate, key=key)
        extra = {"fragment_size": fragment_size} if fragment_size else {}
        return dataclasses.replace(peer, certificate=cert, **extra)

    return dataclasses.replace(lesson, left=change(lesson.left), right=change(lesson.right))


def swapped(lesson):
    left = dataclasses.replace(lesson.left, role="responder")
    right = dataclasses.replace(lesson.right, role="initiator")
    return dataclasses.replace(lesson, left=left, right=right)


def ike_auth_fragments(capture: Path) -> dict[str, list[tuple[int, int, int]]]:
    """Per source address: (fragment number, total, IP datagram length) of each IKE_AUTH SKF seen
    on the wire by tcpdump."""
    from scapy.all import IP, UDP, rdpcap

    out: dict[str, list[tuple[int, int, int]]] = {}
    for packet in rdpcap(str(capture)):
        if UDP not in packet or 4500 not in (packet[UDP].sport, packet[UDP].dport):
            continue
        data = bytes(packet[UDP].payload)
        if not data.startswith(NON_ESP_MARKER):
            continue  # ESP in UDP
        message = decode_message(data[4:]).message
        last = message.payloads[-1] if message.payloads else None
        if message.header.exchange == ExchangeType.IKE_AUTH and isinstance(last, EncryptedFragmentPayload):
            out.setdefault(packet[IP].src, []).append((last.fragment_number, last.total_fragments, packet[IP].len))
    return out


@pytest.mark.parametrize("roles", ["ikelab initiates", "strongSwan initiates"])
@pytest.mark.parametrize("key,fragment_size", [("rsa3072", None), ("ecdsa256", 576)])
def test_certificates_fragments_keys_and_ping(tmp_path, roles, key, fragment_size):
    lesson = with_keys(LESSON, key, fragment_size)
    if roles == "strongSwan initiates":
        lesson = swapped(lesson)
    capture = tmp_path / "wire.pcap"
    with Lab(lesson, capture=capture) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        assert session.outcome.ike_up.get("left"), session.outcome.failures
        result = lab.ping(3)
        logged = lab.charons["right"].keys()
        log = lab.charons["right"].logs().read_text(errors="replace")
        lab.stop_capture()
    assert (result.transmitted, result.received) == (3, 3), result.lines
    # Keys: strongSwan derived the same SK_* as ikelab.
    ours = session.trace.of(IkeKeysEvent, "left")[-1]
    theirs = next(sa for sa in logged["ike_sas"] if sa["spi_i"] == ours.spi_i.hex())
    for name, value in ours.keys.items():
        assert theirs.get(name.lower(), "") == value.hex(), name
    # Certificates: each side checked the other's against the lab CA.
    checked = session.trace.of(CertificateEvent, "left")
    assert checked and all(c.ok for c in checked)
    assert "authentication of 'left.example' with RSA" in log or "authentication of 'left.example' with ECDSA" in log
    # Fragments on the wire from both sides, each datagram within the fragment size.
    fragments = ike_auth_fragments(capture)
    limit = fragment_size or 1280
    for address in (lesson.left.address, lesson.right.address):
        seen = fragments.get(address, [])
        total = seen[0][1] if seen else 0
        assert total >= 2 and sorted(n for n, _, _ in seen) == list(range(1, total + 1)), (address, fragments)
        assert all(length <= limit for _, _, length in seen), (address, seen)
    # Both cut at the same place: the first fragments fill the same IP datagram size exactly.
    assert fragments[lesson.left.address][0][2] == fragments[lesson.right.address][0][2]
    # ikelab reassembled what strongSwan cut up; strongSwan reassembled ours.
    assert any(e.text.startswith("fragment") and "completes the message" in e.text for e in session.trace.of(NoteEvent, "left"))
    assert "reassembled fragmented IKE message" in log


EXPIRED = {"not_before": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), "not_after": dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)}


@pytest.mark.parametrize("change,words", [
    ({"issuer": "Mallory CA"}, ["Mallory CA", "ikelab Lab CA"]),
    (EXPIRED, ["right.example", "expired on 2021-01-01"]),
    ({"san": ("other.example",)}, ["right.example", "other.example"]),
], ids=["unknown CA", "expired", "wrong ID"])
def test_a_bad_strongswan_certificate_is_refused_by_ikelab_with_the_cause(change, words):
    cert = dataclasses.replace(LESSON.right.certificate, key="ecdsa256", **change)
    lesson = dataclasses.replace(LESSON, right=dataclasses.replace(LESSON.right, certificate=cert))
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
    failure = session.outcome.failures["left"]
    assert all(w in failure.reason for w in words), failure.reason
    assert failure.notify == "AUTHENTICATION_FAILED" and not session.outcome.ike_up.get("left")


def test_ikelab_certificate_from_an_unknown_ca_is_refused_by_strongswan():
    """The side that detects it says why: strongSwan's log names the issuer; ours says what failed."""
    cert = dataclasses.replace(LESSON.left.certificate, key="ecdsa256", issuer="Mallory CA")
    lesson = dataclasses.replace(LESSON, left=dataclasses.replace(LESSON.left, certificate=cert))
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        log = lab.charons["right"].logs().read_text(errors="replace")
    assert 'issuer is "O=ikelab, CN=Mallory CA"' in log and "no trusted ECDSA public key found for 'left.example'" in log
    reason = session.outcome.failures["left"].reason
    assert reason.startswith("the responder rejected our AUTH (AUTHENTICATION_FAILED): it did not accept our certificate"), reason
