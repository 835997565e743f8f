"""The aggressive mode PSK attack: recover a weak PSK from messages 1 and 2 alone."""

from __future__ import annotations

from test_ikev1_handshake import run
from test_ikev1_wire import VECTORS

from ikelab.ikev1.crack import crack, from_capture, wordlist

WORDS = [b"123456", b"password", b"letmein", b"qwerty", b"interop-test-psk", b"dragon"]


def test_strongswans_aggressive_mode_psk_is_recovered_from_its_capture():
    (exchange,) = from_capture(VECTORS / "ikev1-aggr-psk.pcap")
    result = crack(exchange, WORDS)
    assert result.psk == b"interop-test-psk" and result.guesses == 5
    assert result.seconds > 0 and result.rate > 0


def test_a_wrong_wordlist_says_so_after_trying_everything():
    (exchange,) = from_capture(VECTORS / "ikev1-aggr-psk.pcap")
    result = crack(exchange, (f"guess{i}".encode() for i in range(2000)))
    assert result.psk is None and result.guesses == 2000
    assert result.rate > 1000  # two HMACs per guess: thousands per second even in Python


def test_main_mode_gives_the_attacker_nothing_to_test():
    assert from_capture(VECTORS / "ikev1-main-psk.pcap") == []


def test_psk_crack_line_is_ike_scans_format():
    (exchange,) = from_capture(VECTORS / "ikev1-aggr-psk.pcap")
    fields = exchange.psk_crack_line().split(":")
    assert len(fields) == 9
    g_xr, g_xi, cky_r, cky_i, sa_i_b, id_ir_b, ni, nr, hash_r = map(bytes.fromhex, fields)
    assert (cky_i.hex(), cky_r.hex()) == ("396d3cf0362356b4", "207be1185b9035e8")
    assert id_ir_b == b"\x02\x00\x00\x00b.example" and len(g_xr) == len(g_xi) == 256
    assert sa_i_b.startswith(b"\x00\x00\x00\x01\x00\x00\x00\x01")  # DOI IPsec, SIT_IDENTITY_ONLY
    assert hash_r == exchange.hash_r and len(hash_r) == 32  # SHA2-256: beyond psk-crack, not beyond ikelab


def test_a_weak_psk_in_an_ikelab_capture_is_recovered(tmp_path):
    from ikelab.export.pcap import write_pcapng

    r = run({"mode": "aggressive", "psk": b"letmein"}, {"psk": b"letmein"})
    capture = tmp_path / "aggressive.pcapng"
    write_pcapng(capture, r.trace)
    words = tmp_path / "words.txt"
    words.write_bytes(b"\n".join(WORDS) + b"\n")
    (exchange,) = from_capture(capture)
    result = crack(exchange, wordlist(words))
    assert result.psk == b"letmein" and result.guesses == 3
