"""`ikelab run --ping`: the ESP workers start while the CLI imports the engines, yet the lab's
commands are all in the transcript, and each ping line shows on stderr as it comes."""

from __future__ import annotations

from conftest import needs_lab
from ikelab.cli import main

pytestmark = needs_lab()


def test_ping_lines_come_as_they_happen_and_every_lab_command_is_shown(capsys):
    assert main(["run", "ikev2-psk", "--headless", "--ping", "1"]) == 0
    captured = capsys.readouterr()
    echoed = [line for line in captured.err.splitlines() if line.startswith("ikelab: ping: ")]
    assert any("bytes from 203.0.113.1" in line for line in echoed), captured.err
    assert "1 packets transmitted, 1 received" in captured.out
    build = captured.out.split("datapath:")[0]  # the "build the lab" commands come first
    for side, network, source in (("left", "203.0.113.0/24", "198.51.100.1"), ("right", "198.51.100.0/24", "203.0.113.1")):
        assert f"-{side} link set ikelab0 mtu 1400 up" in build
        assert f"-{side} route replace {network} dev ikelab0 src {source}" in build


def test_json_output_stays_clean(capsys):
    assert main(["run", "ikev2-psk", "--headless", "--ping", "1", "--json"]) == 0
    assert "ikelab: ping:" not in capsys.readouterr().err
