"""The command line: the key calculator against strongSwan's keys, lessons, options, fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from conftest import messages, run
from ikelab.cli import main
from ikelab.trace import DhSharedEvent, IkeKeysEvent
from ikelab.wire.ikev2 import NoncePayload, decode_message

from pathlib import Path

VECTORS = Path(__file__).parent / "vectors" / "strongswan"


def strongswan_inputs(name: str) -> tuple[dict, bytes, bytes]:
    keys = json.loads((VECTORS / name / "keys.json").read_text())["ike_sas"][0]
    inits = [bytes(p[UDP].payload) for p in rdpcap(str(VECTORS / name / "capture.pcap")) if p.haslayer(UDP) and p[UDP].dport in (500, 4500)]
    ni = decode_message(inits[0]).message.find(NoncePayload).data
    responses = [bytes(p[UDP].payload) for p in rdpcap(str(VECTORS / name / "capture.pcap")) if p.haslayer(UDP) and p[UDP].sport == 500 and p[UDP].dport == 500]
    nr = next(decode_message(d).message.find(NoncePayload).data for d in responses if decode_message(d).message.header.is_response)
    return keys, ni, nr


@pytest.mark.parametrize("name,prf,encr,integ", [("ikev2-psk", "prfsha256", "aes128", "sha256"), ("ikev2-gcm", "prfsha256", "aes256gcm16", None)])
def test_keys_calculator_reproduces_strongswan(capsys, name, prf, encr, integ):
    keys, ni, nr = strongswan_inputs(name)
    args = ["keys", "ikev2", "--ni", ni.hex(), "--nr", nr.hex(), "--gir", keys["dh_secret"], "--spii", keys["spi_i"],
            "--spir", keys["spi_r"], "--prf", prf, "--encr", encr, "--json"] + (["--integ", integ] if integ else [])
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["SKEYSEED", "SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr"]
    assert out["SKEYSEED"] == keys["skeyseed"]
    for k in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"):
        assert out["SK_" + k[3:]] == keys.get(k, ""), k  # AEAD: no SK_a


def test_keys_calculator_matches_a_run(capsys):
    session = run()
    first, second = messages(session)[:2]
    ni = decode_message(first.data).message.find(NoncePayload).data
    nr = decode_message(second.data).message.find(NoncePayload).data
    shared = session.trace.of(DhSharedEvent, "left")[0].shared
    keys = session.trace.of(IkeKeysEvent, "left")[0]
    assert main(["keys", "ikev2", "--ni", ni.hex(), "--nr", nr.hex(), "--gir", shared.hex(), "--spii", keys.spi_i.hex(),
                 "--spir", keys.spi_r.hex(), "--prf", "prfsha256"]) == 0
    text = capsys.readouterr().out
    assert f"SK_ei    = {keys.keys['SK_ei'].hex()}" in text


def test_keys_calculator_rejects_bad_input(capsys):
    assert main(["keys", "ikev2", "--ni", "00", "--nr", "00", "--gir", "00", "--spii", "00", "--spir", "00", "--prf", "prfmd5"]) == 2
    assert "prfmd5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["keys", "ikev2", "--ni", "zz", "--nr", "00", "--gir", "00", "--spii", "00", "--spir", "00", "--prf", "prfsha256"])


def test_lessons_are_listed(capsys):
    assert main(["lessons"]) == 0
    out = capsys.readouterr().out
    assert "ikev2-psk" in out and "manual-keying" in out


def test_json_lines_are_the_trace(capsys):
    assert main(["run", "ikev2-psk", "--headless", "--json", "--seed", "3", "--transport", "memory"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {line["kind"] for line in lines}
    assert {"message", "dh_shared", "prf_plus", "auth", "child_sa"} <= kinds
    message = next(line for line in lines if line["kind"] == "message")
    assert message["tree"]["children"][0]["name"] == "Header"


def test_seed_prints_a_warning(capsys):
    main(["run", "ikev2-psk", "--headless", "--seed", "3", "--transport", "memory"])
    assert "deterministic" in capsys.readouterr().err


def test_failed_handshake_exits_3(tmp_path, capsys):
    lesson = Path(__file__).parent.parent / "lessons" / "ikev2-psk.toml"
    text = lesson.read_text().replace('psk = "correct horse battery staple"', 'psk = "wrong"', 1)
    bad = tmp_path / "wrong-psk.toml"
    bad.write_text(text)
    assert main(["run", str(bad), "--headless", "--transport", "memory"]) == 3
    assert "AUTHENTICATION_FAILED" in capsys.readouterr().out


def test_unknown_lesson_is_one_line(capsys):
    assert main(["run", "no-such-lesson", "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no lesson with this slug" in err and "ikev2-psk" in err


def test_ping_without_lab_transport_is_refused(capsys):
    assert main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--ping", "2"]) == 2
    assert "--ping needs the namespace lab" in capsys.readouterr().err


def test_falls_back_to_loopback_when_the_lab_cannot_start(monkeypatch, capsys):
    import ikelab.lab.lab as lab

    monkeypatch.setattr(lab, "missing_privileges", lambda: "the lab needs root (simulated)")
    assert main(["run", "ikev2-psk", "--headless", "--seed", "1", "--ping", "2"]) == 0
    captured = capsys.readouterr()
    assert "running over loopback UDP instead" in captured.err and "no ping stage" in captured.err
    assert "transport loopback" in captured.out and "ping" not in captured.out.split("\n")[-3]
    assert main(["run", "ikev2-psk", "--headless", "--transport", "netns"]) == 2
    assert "the lab cannot start: the lab needs root (simulated)" in capsys.readouterr().err


def test_crack_recovers_strongswans_aggressive_mode_psk(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("password\n123456\nletmein\ninterop-test-psk\nqwerty\n")
    capture = Path(__file__).parent / "vectors" / "ikev1" / "ikev1-aggr-psk.pcap"
    assert main(["crack", str(capture), "--wordlist", str(words)]) == 0
    out = capsys.readouterr().out
    assert "PSK found: 'interop-test-psk' after 4 guesses" in out and "guesses/s" in out
    words.write_text("password\n")
    assert main(["crack", str(capture), "--wordlist", str(words)]) == 1
    assert "no match after 1 guesses" in capsys.readouterr().out
    assert main(["crack", str(capture), "--wordlist", str(words), "--psk-crack"]) == 0
    assert capsys.readouterr().out.count(":") >= 8  # ike-scan's colon-separated fields


def test_crack_refuses_a_capture_without_aggressive_mode(capsys, tmp_path):
    words = tmp_path / "w"
    words.write_text("x\n")
    capture = Path(__file__).parent / "vectors" / "ikev1" / "ikev1-main-psk.pcap"
    assert main(["crack", str(capture), "--wordlist", str(words)]) == 2
    assert "no IKEv1 aggressive-mode exchange" in capsys.readouterr().err


def test_keys_ikev1_matches_a_run(capsys):
    from ikelab.lessons import load_lesson
    from ikelab.trace import Ikev1KeysEvent
    from ikelab.wire.isakmp import NoncePayload as V1Nonce, decode_message as v1_decode

    session = run(load_lesson("ikev1-main-psk"))
    keys = session.trace.of(Ikev1KeysEvent, "left")[0]
    shared = session.trace.of(DhSharedEvent, "left")[0].shared
    first, second = [m for m in messages(session)][2:4]  # main mode messages 3 and 4 carry KE and nonces
    ni = v1_decode(first.data).message.find(V1Nonce).data
    nr = v1_decode(second.data).message.find(V1Nonce).data
    assert main(["keys", "ikev1", "--ni", ni.hex(), "--nr", nr.hex(), "--gxy", shared.hex(), "--ckyi", keys.cky_i.hex(),
                 "--ckyr", keys.cky_r.hex(), "--psk", "correct horse battery staple", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for name in ("SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e", "Ka"):
        assert out[name] == keys.keys[name].hex(), name


def test_peer_that_cannot_bind_its_address_says_so(capsys):
    """192.0.2.1 is not an address of the test's namespace: one line naming the address, exit 2."""
    assert main(["peer", "ikev2-psk", "--role", "initiator", "--remote", "192.0.2.2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ikelab: error: cannot listen on 192.0.2.1 ports 500 and 4500 here") and err.count("\n") == 1


@pytest.mark.parametrize("local,error", [
    ("192.0.2.2", "--remote 192.0.2.2 is our own address"),
    ("bogus", "--local 'bogus' is not an IP address"),
])
def test_peer_refuses_a_local_address_it_cannot_use(capsys, local, error):
    assert main(["peer", "ikev2-psk", "--role", "initiator", "--remote", "192.0.2.2", "--local", local]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ikelab: error: {error}") and err.count("\n") == 1


def test_a_pcap_that_is_no_regular_file_is_refused(tmp_path, capsys):
    fifo = tmp_path / "f.pcapng"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/full"):
        assert main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--pcap", str(path)]) == 2
        assert f"--pcap {path}: is not a regular file" in capsys.readouterr().err


def test_a_manual_lesson_outside_the_lab_has_nothing_to_capture(tmp_path, capsys):
    assert main(["run", "manual-keying", "--headless", "--transport", "memory", "--pcap", str(tmp_path / "m.pcapng")]) == 2
    assert "--pcap would capture nothing" in capsys.readouterr().err
    assert not (tmp_path / "m.pcapng").exists()


KEYS_V2 = ["keys", "ikev2", "--ni", "00", "--nr", "22", "--gir", "44", "--spii", "01", "--spir", "02"]
KEYS_V1 = ["keys", "ikev1", "--ni", "00", "--nr", "22", "--gxy", "44", "--ckyi", "01", "--ckyr", "02"]


@pytest.mark.parametrize("options,error", [
    (["--prf", "modp2048"], "--prf: unknown PRF 'modp2048'"),
    (["--prf", ""], "--prf: unknown PRF ''"),
    (["--prf", "sha256"], "--prf: unknown PRF 'sha256'"),
    (["--prf", "prfsha256", "--encr", "aes128-sha1"], "--encr: unknown encryption algorithm 'aes128-sha1'"),
    (["--prf", "prfsha256", "--encr", "x25519"], "--encr: unknown encryption algorithm 'x25519'"),
    (["--prf", "prfsha256", "--integ", "sha256-sha512"], "--integ: unknown integrity algorithm 'sha256-sha512'"),
    (["--prf", "prfsha256", "--integ", "esn"], "--integ: unknown integrity algorithm 'esn'"),
    (["--prf", "prfsha256", "--encr", "aes256gcm16", "--integ", "sha256"], "--integ: aes256gcm16 has its own integrity; drop --integ"),
])
def test_keys_ikev2_takes_one_keyword_of_its_kind_per_option(capsys, options, error):
    assert main(KEYS_V2 + options) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ikelab: error: {error}") and err.count("\n") == 1


@pytest.mark.parametrize("options,error", [
    (["--hash", "prfsha256"], "--hash: unknown hash 'prfsha256'"),
    (["--hash", "sha256-sha1"], "--hash: unknown hash 'sha256-sha1'"),
    (["--encr", "aes128-sha1"], "--encr: unknown encryption algorithm 'aes128-sha1'"),
    (["--encr", "aes128gcm16"], "--encr: IKEv1 phase 1 has no AEAD ciphers"),
])
def test_keys_ikev1_takes_one_keyword_of_its_kind_per_option(capsys, options, error):
    assert main(KEYS_V1 + options) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ikelab: error: {error}") and err.count("\n") == 1


def test_keys_ikev1_takes_the_psk_bytes_as_given(capsys):
    """A PSK that is not UTF-8 arrives as surrogate escapes (os.fsdecode); its bytes are the key."""
    from ikelab.crypto.ikev1_kdf import phase1_keys
    from ikelab.crypto.prf import PRFS

    assert main(KEYS_V1 + ["--psk", os.fsdecode(b"\xff\xfe"), "--json"]) == 0
    expected = phase1_keys(PRFS[5], b"\x00", b"\x22", b"\x44", b"\x01", b"\x02", 16, psk=b"\xff\xfe")
    assert json.loads(capsys.readouterr().out)["SKEYID"] == expected["SKEYID"].hex()


@pytest.mark.parametrize("command", [["run", "ikev2-psk", "--headless"], ["tui", "ikev2-psk"],
                                     ["peer", "ikev2-psk", "--role", "initiator", "--remote", "192.0.2.2"]])
@pytest.mark.parametrize("seed", ["-1", str(2**256), "one"])
def test_seed_out_of_range_is_a_usage_error(capsys, command, seed):
    with pytest.raises(SystemExit) as exit:
        main(command + ["--seed", seed])
    assert exit.value.code == 2 and "argument --seed: " in capsys.readouterr().err


def test_the_largest_seed_runs(capsys):
    assert main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--seed", str(2**256 - 1)]) == 0


@pytest.mark.parametrize("command", [["run", "ikev2-psk", "--headless"],
                                     ["peer", "ikev2-psk", "--role", "initiator", "--remote", "192.0.2.2"]])
@pytest.mark.parametrize("count", ["-1", "10001", "99999999999999999999"])
def test_ping_count_is_bounded(capsys, command, count):
    with pytest.raises(SystemExit) as exit:
        main(command + ["--ping", count])
    assert exit.value.code == 2 and f"argument --ping: {count} is outside 0 to 10000" in capsys.readouterr().err


def _pcap_cases(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "taken.wireshark").write_text("not ours")
    return [
        (str(tmp_path), f"--pcap {tmp_path}: is a directory"),
        (str(tmp_path / "missing" / "x.pcapng"), f"the directory {tmp_path / 'missing'} does not exist"),
        ("/proc/x.pcapng", "--pcap /proc/x.pcapng: cannot write it: No such file or directory"),
        (str(tmp_path / "taken.pcapng"), f"{tmp_path / 'taken.wireshark'} is in the way"),
        (str(tmp_path / "x.wireshark"), "the name .wireshark is for the directory of Wireshark's tables"),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("command", [["run", "ikev2-psk", "--headless", "--transport", "memory"],
                                     ["peer", "ikev2-psk", "--role", "initiator", "--remote", "192.0.2.2"]])
def test_a_pcap_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys, command, case):
    pcap, error = _pcap_cases(tmp_path)[case]
    assert main(command + ["--pcap", pcap]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("ikelab: error: --pcap ") and captured.err.count("\n") == 1
    assert error in captured.err
    assert not (tmp_path / "missing").exists()  # a missing directory is named, not made


def test_an_empty_pcap_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--pcap", ""])
    assert exit.value.code == 2 and "argument --pcap: an empty file name" in capsys.readouterr().err


def test_a_pcap_written_again_replaces_the_earlier_export(tmp_path, capsys):
    pcap = tmp_path / "run.pcapng"
    for _ in range(2):
        assert main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--pcap", str(pcap)]) == 0
    assert (tmp_path / "run.wireshark" / "ikev2_decryption_table").is_file()


def test_a_failed_pcap_write_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import ikelab.export.capture

    def full(path, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ikelab.export.capture, "export_capture", full)
    pcap = tmp_path / "run.pcapng"
    assert main(["run", "ikev2-psk", "--headless", "--transport", "memory", "--pcap", str(pcap)]) == 2
    err = capsys.readouterr().err
    assert err == f"ikelab: error: --pcap: cannot write {pcap}: No space left on device\n"


def _ikelab(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ikelab.cli", *args], cwd=Path(__file__).parent.parent,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_closed_output_pipe_ends_quietly():
    """`ikelab run ... | head -1`: the reader goes away mid-transcript; no traceback, status 1."""
    process = _ikelab("run", "ikev2-psk", "--headless", "--transport", "memory", stdout=subprocess.PIPE)
    assert process.stdout.readline().startswith("== IKEv2 with a pre-shared key")
    process.stdout.close()  # the transcript is far bigger than a pipe's buffer: the next writes fail
    assert process.wait(timeout=60) == 1
    assert process.stderr.read() == ""


def test_a_full_output_is_one_line():
    with open("/dev/full", "w") as full:
        process = _ikelab("run", "ikev2-psk", "--headless", "--transport", "memory", stdout=full)
        assert process.wait(timeout=60) == 1
    assert process.stderr.read() == "ikelab: error: cannot write the output: No space left on device\n"


AGGRESSIVE_CAPTURE = Path(__file__).parent / "vectors" / "ikev1" / "ikev1-aggr-psk.pcap"


@pytest.mark.parametrize("capture,wordlist,error", [
    ("not-a-capture", "words", "not-a-capture: not a pcap or pcapng capture"),
    ("empty", "words", "empty: not a pcap or pcapng capture"),
    ("missing", "words", "missing: no such capture"),
    (".", "words", ".: is a directory, not a capture"),
    (str(AGGRESSIVE_CAPTURE), "missing", "missing: no such wordlist"),
    (str(AGGRESSIVE_CAPTURE), ".", ".: is a directory, not a wordlist"),
])
def test_crack_refuses_what_it_cannot_read_in_one_line(tmp_path, capsys, monkeypatch, capture, wordlist, error):
    monkeypatch.chdir(tmp_path)
    Path("not-a-capture").write_text("root:x:0:0:root:/root:/bin/bash\n")
    Path("empty").write_bytes(b"")
    Path("words").write_text("x\n")
    assert main(["crack", capture, "--wordlist", wordlist]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ikelab: error: ") and err.endswith(error + "\n") and err.count("\n") == 1


def test_crack_takes_a_binary_wordlist(tmp_path, capsys):
    words = tmp_path / "words"
    words.write_bytes(bytes(range(11, 256)) + b"\n\xff\xfe\x00\ninterop-test-psk\r\n")  # no \n in the range
    assert main(["crack", str(AGGRESSIVE_CAPTURE), "--wordlist", str(words)]) == 0
    assert "PSK found: 'interop-test-psk' after 3 guesses" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a file only root can read, then reads it as nobody")
def test_crack_names_a_wordlist_it_may_not_read(tmp_path):
    words = tmp_path / "words"  # in pytest's directory, which is root's alone too
    words.write_text("x\n")
    words.chmod(0o000)
    nobody = subprocess.run([sys.executable, "-m", "ikelab.cli", "crack", str(AGGRESSIVE_CAPTURE), "--wordlist", str(words)],
                            cwd=Path(__file__).parent.parent, capture_output=True, text=True, user="nobody", timeout=60)
    assert nobody.returncode == 2
    assert nobody.stderr == f"ikelab: error: {words}: cannot read the wordlist: Permission denied\n"
