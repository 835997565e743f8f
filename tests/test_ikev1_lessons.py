"""The IKEv1 lessons run through the same stepper, transcript and captures as IKEv2's: every step's
narrative names a message the run really has, and tshark decrypts the capture with the exported
ikev1_decryption_table."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import messages, needs_tshark, run
from ikelab.cli import main
from ikelab.export.capture import export_capture
from ikelab.export.pcap import message_label
from ikelab.lessons import load_lesson

SLUGS = ["ikev1-main-psk", "ikev1-aggressive-psk", "ikev1-main-certs"]


@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_runs_and_its_steps_match_its_messages(slug):
    lesson = load_lesson(slug)
    assert lesson.ike_version == 1
    session = run(lesson)
    assert session.outcome.success, session.outcome.failures
    left, right = session.outcome.children["left"], session.outcome.children["right"]
    assert len(left) == len(right) == 1 and left[0].outbound == right[0].inbound
    labels = [message_label(m) for m in messages(session)]
    assert [step.match for step in lesson.steps] == labels
    assert len(labels) == (9 if lesson.mode == "main" else 6)


@needs_tshark()
@pytest.mark.parametrize("slug", SLUGS)
def test_tshark_decrypts_the_ikev1_capture(tmp_path, slug):
    lesson = load_lesson(slug)
    session = run(lesson)
    path = tmp_path / "v1.pcapng"
    export_capture(path, session.trace, lesson)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(path.with_suffix(".wireshark")))
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "isakmp.hash", "-e", "isakmp.sig", "-e", "_ws.malformed"],
                         env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    # Every encrypted message carries a HASH payload (or, with certificates, a SIG): Wireshark can
    # read it only after decrypting.
    encrypted = [m for m in messages(session) if m.plaintext is not None]
    hashes = [row for row, m in zip(rows, messages(session)) if m.plaintext is not None]
    assert encrypted and all(row[0] or row[1] for row in hashes)
    assert all(row[2] == "" for row in rows)


def test_transcript_of_main_mode(capsys):
    assert main(["run", "ikev1-main-psk", "--headless", "--transport", "memory", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("sends Main Mode message 1", "sends Quick Mode message 3", "SKEYID", "HASH_I", "IKE SA", "Child SA 'net' installed"):
        assert text in out, text


def test_lost_message_is_retransmitted_through_the_stepper():
    from ikelab.lab.session import Session
    from ikelab.lab.transports import MemoryTransport

    class LoseThird(MemoryTransport):
        count = 0

        def carry(self, send):
            self.count += 1
            return None if self.count == 3 else super().carry(send)

    lesson = load_lesson("ikev1-main-psk")
    session = Session(lesson, LoseThird({p.name: p.address for p in lesson.peers}), seed=1)
    session.run()
    assert session.outcome.success
    assert [m.direction for m in session.trace.of(__import__("ikelab.trace", fromlist=["MessageEvent"]).MessageEvent)].count("retransmitted") >= 1


def test_quick_mode_with_pfs_carries_ke():
    lesson = load_lesson("ikev1-quick-mode-pfs")
    session = run(lesson)
    assert session.outcome.success
    quick = [m for m in messages(session) if "Quick Mode" in message_label(m)]
    assert "KE" in quick[0].summary and "KE" in quick[1].summary


def test_compare_counts_messages_from_runs(capsys):
    assert main(["compare"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("ikev")}
    assert rows["ikev2-psk"][2] == "4" and rows["ikev2-psk"][3] == "2"
    assert rows["ikev1-main-psk"][-3] == "9" and rows["ikev1-aggressive-psk"][-3] == "6"
