"""Annotated captures: tshark reads them, decrypts every SK payload with our table, and the
committed capture in pcaps/ regenerates byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import lesson_with, messages, needs_tshark, run
from ikelab.cli import main
from ikelab.export.capture import export_capture
from ikelab.lessons import load_lesson
from ikelab.trace import AuthEvent

ROOT = Path(__file__).resolve().parent.parent


def tshark(capture: Path, *args: str) -> list[list[str]]:
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(capture.with_suffix(".wireshark")))
    out = subprocess.run(
        ["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=|", *args],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def export(session, tmp_path: Path, name: str = "run") -> Path:
    path = tmp_path / f"{name}.pcapng"
    export_capture(path, session.trace, session.lesson)
    return path


@needs_tshark()
@pytest.mark.parametrize("ike,esp", [
    ("aes128-sha256-modp2048", "aes128-sha256"),
    ("aes256-sha512-ecp384", "aes256-sha512"),
    ("aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
    ("aes128gcm16-prfsha384-x25519", "aes128gcm16"),
    ("aes192-sha1-modp2048", "aes192-sha1"),
])
def test_tshark_decrypts_every_sk_payload(tmp_path, ike, esp):
    session = run(lesson_with(both={"ike": ike, "esp": esp}))
    capture = export(session, tmp_path)
    rows = tshark(capture, "-e", "frame.number", "-e", "_ws.malformed", "-e", "isakmp.ispi",
                  "-e", "isakmp.auth.data", "-e", "frame.comment")
    assert len(rows) == 4
    assert all(r[1] == "" for r in rows), "a packet is malformed for Wireshark"
    # Wireshark found, in the decrypted IKE_AUTH messages, exactly the AUTH values our peers sent.
    ours = [e.expected.hex() for e in session.trace.of(AuthEvent) if e.action == "computed"]
    assert [r[3] for r in rows[2:]] == ours
    assert all(r[4] for r in rows), "every packet carries comments"
    assert "IKE_AUTH request" in rows[2][4] and "SK_ei" in rows[2][4]


@needs_tshark()
def test_tshark_integrity_checks_pass_with_the_table(tmp_path):
    capture = export(run(), tmp_path)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(capture.with_suffix(".wireshark")))
    text = subprocess.run(["tshark", "-r", str(capture), "-V"], env=env, capture_output=True, text=True, check=True).stdout
    assert text.count("Decrypted Data") == 2
    assert text.count("[correct]") == 2 and "[incorrect]" not in text


@needs_tshark()
def test_loopback_capture_dissects_with_decode_as(tmp_path):
    session = run(transport="loopback")
    capture = export(session, tmp_path)
    assert (capture.with_suffix(".wireshark") / "decode_as_entries").is_file()
    rows = tshark(capture, "-e", "isakmp.ispi", "-e", "isakmp.auth.data", "-e", "_ws.malformed")
    assert len(rows) == 4 and all(r[0] for r in rows)
    assert all(r[1] for r in rows[2:]) and all(r[2] == "" for r in rows)


@needs_tshark()
def test_wrong_psk_capture_still_decrypts(tmp_path):
    """Wrong keys do not stop Wireshark: DH worked, so SK_e is right; only the AUTH differs."""
    session = run(lesson_with(left={"psk": b"one"}, right={"psk": b"two"}))
    capture = export(session, tmp_path)
    rows = tshark(capture, "-e", "isakmp.notify.msgtype", "-e", "isakmp.auth.data")
    assert rows[3][0] == "24"  # AUTHENTICATION_FAILED, found inside the decrypted response


def test_committed_capture_regenerates_byte_identical(tmp_path):
    target = tmp_path / "ikev2-psk.pcapng"
    assert main(["run", "ikev2-psk", "--headless", "--seed", "1", "--transport", "memory", "--pcap", str(target)]) == 0
    committed = ROOT / "pcaps" / "ikev2-psk.pcapng"
    assert target.read_bytes() == committed.read_bytes()
    for table in (ROOT / "pcaps" / "ikev2-psk.wireshark").iterdir():
        assert (tmp_path / "ikev2-psk.wireshark" / table.name).read_bytes() == table.read_bytes(), table.name


def test_capture_comments_carry_the_lesson_narrative(tmp_path):
    session = run()
    capture = export(session, tmp_path)
    from scapy.utils import rdpcap

    packets = rdpcap(str(capture))
    comments = [b"\n".join(p.comments or []).decode() for p in packets]
    lesson = load_lesson("ikev2-psk")
    assert "Lesson: Left opens the exchange in the clear" in comments[0]
    assert lesson.narrative("IKE_AUTH response").split()[0] in comments[3]
    from scapy.layers.inet import UDP

    # UDP's payload, not Raw: scapy dissects port 500 as ISAKMP once its IKE layers are loaded.
    assert [bytes(p[UDP].payload) for p in packets] == [m.data for m in messages(session)]
