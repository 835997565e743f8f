"""The namespace lab: real veth, real UDP, real ESP, real ping; and nothing left behind."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.utils import rdpcap

from conftest import lesson_with, needs_lab, needs_tshark
from ikelab.cli import main
from ikelab.esp.packet import OutboundSa
from ikelab.lab.lab import Lab
from ikelab.lab.netns import LabError, ikelab_namespaces, in_namespace
from ikelab.lab.session import Session
from ikelab.trace import ChildSaEvent

pytestmark = needs_lab()
ROOT = Path(__file__).resolve().parent.parent
SCAPY_CIPHERS = {"aes128": "AES-CBC", "aes192": "AES-CBC", "aes256": "AES-CBC", "aes128gcm16": "AES-GCM", "aes256gcm16": "AES-GCM"}
SCAPY_AUTH = {"sha1": "HMAC-SHA1-96", "sha256": "SHA2-256-128", "sha384": "SHA2-384-192", "sha512": "SHA2-512-256", None: None}


def host_state() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    return links, routes


@pytest.fixture(scope="module", autouse=True)
def host_untouched():
    before = host_state()
    yield
    assert host_state() == before, "the host namespace's links or routes changed"


def run_lab(lesson, ping: int, capture: Path | None = None):
    with Lab(lesson, capture=capture) as lab:
        session = Session(lesson, lab.transport, seed=5, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        result = lab.ping(ping) if ping else None
        counters = {side: lab.datapath.counters(side) for side in lab.namespaces}
        lab.stop_capture()
        return session, result, counters, lab


@pytest.mark.parametrize("esp", ["aes128-sha256", "aes256gcm16", "aes256-sha512"])
def test_ping_through_the_tunnel_never_in_clear(tmp_path, esp):
    lesson = lesson_with(both={"esp": esp})
    capture = tmp_path / "veth.pcap"
    session, result, counters, lab = run_lab(lesson, 4, capture)
    assert session.outcome.success
    assert (result.transmitted, result.received) == (4, 4), result.lines
    packets = rdpcap(str(capture))
    assert not [p for p in packets if p.haslayer(IP) and p[IP].proto == 1], "ICMP crossed the veth in clear"
    esp_packets = [p for p in packets if p.haslayer(IP) and p[IP].proto == 50]
    assert len(esp_packets) == 8
    out = counters["left"]["outbound"]
    assert list(out.values())[0]["packets"] == 4 and list(counters["right"]["inbound"].values())[0]["packets"] == 4
    assert not ikelab_namespaces() or all(not n.startswith(lab.topology.rid) for n in ikelab_namespaces())


def scapy_sa(direction: dict) -> SecurityAssociation:
    crypt = SCAPY_CIPHERS[direction["cipher_name"]]
    return SecurityAssociation(
        ESP,
        spi=int(direction["spi"], 16),
        crypt_algo=crypt,
        crypt_key=bytes.fromhex(direction["encryption_key"]),
        auth_algo=SCAPY_AUTH[direction["integrity_name"]],
        auth_key=bytes.fromhex(direction["integrity_key"]) if direction["integrity_key"] else None,
        tunnel_header=IP(src=direction["src"], dst=direction["dst"]),
    )


@pytest.mark.parametrize("esp", ["aes128-sha256", "aes128gcm16"])
def test_scapy_decrypts_every_esp_packet_with_the_negotiated_keys(tmp_path, esp):
    capture = tmp_path / "veth.pcap"
    session, result, _, _ = run_lab(lesson_with(both={"esp": esp}), 3, capture)
    child = session.trace.of(ChildSaEvent, "left")[0]
    sas = {int(d["spi"], 16): scapy_sa(d) for d in (child.outbound, child.inbound)}
    decrypted = []
    for packet in rdpcap(str(capture)):
        if packet.haslayer(ESP):
            inner = sas[packet[ESP].spi].decrypt(packet[IP])
            decrypted.append((inner[IP].src, inner[IP].dst, inner[ICMP].type))
    assert decrypted == [("198.51.100.1", "203.0.113.1", 8), ("203.0.113.1", "198.51.100.1", 0)] * 3


@needs_tshark()
def test_tshark_decrypts_and_authenticates_the_lab_capture(tmp_path):
    target = tmp_path / "lab.pcapng"
    assert main(["run", "ikev2-psk", "--headless", "--seed", "2", "--ping", "2", "--pcap", str(target)]) == 0
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(target.with_suffix(".wireshark")))
    out = subprocess.run(
        ["tshark", "-r", str(target), "-T", "fields", "-E", "separator=|", "-e", "ip.proto", "-e", "esp.icv_good",
         "-e", "icmp.type", "-e", "isakmp.auth.data", "-e", "_ws.malformed", "-e", "frame.comment"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    rows = [line.split("|") for line in out]
    esp_rows = [r for r in rows if r[0].startswith("50")]
    assert len(esp_rows) == 4 and all(r[1] == "1" for r in esp_rows), esp_rows
    assert [r[2] for r in esp_rows] == ["8", "0", "8", "0"]
    assert len([r for r in rows if r[3]]) == 2  # both AUTH payloads decrypted
    assert all(r[4] == "" for r in rows) and all(r[5] for r in rows)  # well-formed, all annotated


def test_tampered_and_replayed_esp_are_dropped_and_counted():
    lesson = lesson_with()
    with Lab(lesson) as lab:
        session = Session(lesson, lab.transport, seed=9, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        assert lab.ping(2).received == 2
        left_out = session.outcome.children["left"][0].outbound
        raw = in_namespace(lab.namespaces["left"], lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 50))
        forger = OutboundSa(left_out)
        inner = bytes(IP(src="198.51.100.1", dst="203.0.113.1") / ICMP())
        replayed = forger.encapsulate(inner)  # sequence number 1, already used by the first ping
        for _ in range(8):
            forger.encapsulate(inner)
        tampered = bytearray(forger.encapsulate(inner))  # sequence number 10: fresh, but altered
        tampered[-20] ^= 0x01
        raw.sendto(replayed, (left_out.dst, 0))
        raw.sendto(bytes(tampered), (left_out.dst, 0))
        raw.close()
        time.sleep(0.3)
        inbound = lab.datapath.counters("right")["inbound"][left_out.spi.hex()]
        assert inbound["replay_drops"] == 1
        assert inbound["integrity_failures"] == 1
        assert inbound["packets"] == 2
        assert lab.ping(1).received == 1  # the tunnel still works


def _wait_for_namespaces(pid: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ours = [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{pid}x")]
        if len(ours) == 2:
            return ours
        time.sleep(0.05)
    raise AssertionError("the run never built its namespaces")


def _start_run(*extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ikelab.cli", "run", "ikev2-psk", "--headless", "--ping", "50", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _processes_in(namespaces: list[str]) -> list[int]:
    """The pids inside the run's namespaces: its ESP workers, ping, tcpdump."""
    pids = []
    for namespace in namespaces:
        out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    return pids


def _alive(pids: list[int]) -> list[int]:
    """Those still running (a killed orphan may linger as a zombie until init reaps it: not running)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("Z", "X"):
            alive.append(pid)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_run_removes_everything(sig):
    run = _start_run()
    namespaces = _wait_for_namespaces(run.pid)
    time.sleep(0.8)  # inside the ping stage
    inside = _processes_in(namespaces)
    assert inside  # the ESP workers and ping
    run.send_signal(sig)
    run.wait(timeout=20)
    assert not [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{run.pid}x")]
    time.sleep(0.2)
    assert not _alive(inside)


def test_kill_9_then_lab_cleanup_leaves_nothing():
    run = _start_run()
    namespaces = _wait_for_namespaces(run.pid)
    time.sleep(0.8)
    inside = _processes_in(namespaces)
    run.kill()
    run.wait()
    assert set(namespaces) <= set(ikelab_namespaces())  # a killed run cannot clean up
    assert main(["lab", "cleanup"]) == 0
    assert not set(namespaces) & set(ikelab_namespaces())
    time.sleep(0.2)
    assert not _alive(inside)  # the workers die with their parent (PR_SET_PDEATHSIG) or with cleanup
    for namespace in namespaces:
        assert subprocess.run(["ip", "netns", "pids", namespace], capture_output=True).returncode != 0


def test_failed_start_leaves_nothing(monkeypatch):
    from ikelab.lab import datapath

    def refuse(*args, **kwargs):
        raise datapath.LabError("simulated failure while starting the datapath")

    monkeypatch.setattr(datapath.UserspaceEsp, "start", refuse)
    before = set(ikelab_namespaces())
    with pytest.raises(datapath.LabError):
        with Lab(lesson_with()):
            pass
    assert set(ikelab_namespaces()) == before


def test_manual_keying_lesson_pings_through_static_sas(capsys, tmp_path):
    target = tmp_path / "manual.pcapng"
    assert main(["run", "manual-keying", "--headless", "--ping", "3", "--pcap", str(target)]) == 0
    out = capsys.readouterr().out
    assert "3 packets transmitted, 3 received" in out
    assert "manually keyed Child SA(s) installed, no IKE" in out
    spis = {p[ESP].spi for p in rdpcap(str(target)) if p.haslayer(ESP)}
    assert spis == {0x1001, 0x1002}
    assert not [p for p in rdpcap(str(target)) if p.haslayer("UDP")]  # no IKE at all


def test_rekeys_while_ping_runs_lose_no_ping(capsys):
    import json

    assert main(["run", "ikev2-rekey", "--headless", "--ping", "25", "--json", "--seed", "4"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    requests = [e for e in events if e["kind"] == "message" and e["direction"] == "sent" and not e["is_response"]]
    rekeys = [e for e in requests if e["exchange"] == "CREATE_CHILD_SA"]
    assert sum("REKEY_SA" in e["summary"] for e in rekeys) >= 2  # Child SA rekeys, with KE: PFS
    assert all("KE" in e["summary"] for e in rekeys)
    assert any("REKEY_SA" not in e["summary"] and "TSi" not in e["summary"] for e in rekeys)  # the IKE SA rekey
    lines = [e["line"] for e in events if e["kind"] == "ping"]
    assert "25 packets transmitted, 25 received, 0% packet loss" in " ".join(lines)


def test_real_nat_in_a_router_namespace(capsys):
    import json

    assert main(["run", "ikev2-nat", "--headless", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    received = [e for e in events if e["kind"] == "message" and e["peer"] == "right" and e["direction"] == "received"]
    assert received[0]["src"] == "192.0.2.129:500" and received[1]["src"].startswith("192.0.2.129:")
    assert received[1]["dst"] == "192.0.2.130:4500"
    commands = next(e for e in events if e["kind"] == "commands")["commands"]
    assert any("masquerade" in c for c in commands)


def test_ping_through_a_real_nat_in_udp(capsys, tmp_path):
    target = tmp_path / "nat.pcapng"
    assert main(["run", "ikev2-nat", "--headless", "--ping", "3", "--pcap", str(target)]) == 0
    assert "3 packets transmitted, 3 received" in capsys.readouterr().out
    from scapy.layers.inet import UDP

    packets = rdpcap(str(target))
    esp_in_udp = [p for p in packets if p.haslayer(UDP) and 4500 in (p[UDP].sport, p[UDP].dport)
                  and bytes(p[UDP].payload)[:4] != bytes(4)]
    assert len(esp_in_udp) == 6 and not [p for p in packets if p.haslayer(IP) and p[IP].proto == 50]


def _children_alive() -> list[int]:
    """This process's children still running (ESP workers, tcpdump, charon...)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[1]) == os.getpid() and stat[0] not in ("Z", "X"):
            children.append(int(entry.name))
    return children


@pytest.mark.parametrize("slug, capture", [("ikev2-psk", False), ("ikev2-psk", True), ("ikev2-nat", False)])
def test_interrupt_at_every_setup_command_leaves_nothing(monkeypatch, tmp_path, slug, capture):
    """SIGTERM becomes KeyboardInterrupt (cli._terminate); it may land right after any command the
    setup ran. Interrupt after the 1st, 2nd, ... command until the lab comes up whole."""
    from ikelab.lab.netns import CommandLog
    from ikelab.lessons import load_lesson

    lesson = load_lesson(slug)
    real_run = CommandLog.run
    for n in range(1, 200):
        calls = []

        def interrupted_run(self, args, *, check=True):
            result = real_run(self, args, check=check)
            calls.append(args)
            if len(calls) == n:
                raise KeyboardInterrupt  # as if the signal came as the command returned
            return result

        monkeypatch.setattr(CommandLog, "run", interrupted_run)
        lab = Lab(lesson, capture=tmp_path / "veth.pcap" if capture else None)
        try:
            with lab:
                monkeypatch.setattr(CommandLog, "run", real_run)  # set up: only the setup is interrupted
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(CommandLog, "run", real_run)
        assert not [ns for ns in ikelab_namespaces() if ns.startswith(f"ikelab-{lab.topology.rid}-")], f"after command {n}"
        assert not _children_alive(), f"after command {n}: {calls[-1]}"
        if finished:
            break
    assert finished and n > 10  # every setup step was interrupted once


def _esp_workers_of(pid: int) -> list[int]:
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == pid and b"ikelab.lab.esp_worker" in command:
            workers.append(int(entry.name))
    return workers


def test_ctrl_c_while_the_esp_workers_start_prints_no_traceback():
    """The terminal sends Ctrl-C's SIGINT to its whole foreground process group. The ESP workers
    must not get it (they are stopped by the run): no traceback of theirs, only `interrupted`."""
    run = subprocess.Popen([sys.executable, "-m", "ikelab.cli", "run", "ikev2-psk", "--headless", "--ping", "20"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 20
    while not _esp_workers_of(run.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(0.05)  # in the middle of their start-up (imports, TUN device, warm-up)
    os.killpg(run.pid, signal.SIGINT)  # as the terminal does
    _, err = run.communicate(timeout=20)
    assert "Traceback" not in err
    assert "ikelab: interrupted" in err and run.returncode == 130
    assert not [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{run.pid}x")]


@pytest.mark.parametrize("side, key", [("left", "address"), ("right", "address"), ("right", "protected"),
                                       ("left", "local_ts"), ("right", "remote_ts")])
def test_ipv6_addresses_are_refused_before_anything_is_built(side, key):
    value = {"address": "2001:db8::1", "protected": "2001:db8:1::1"}.get(key, "2001:db8:2::/48")
    setting = (lesson_with().left.local_ts[0], value) if key.endswith("_ts") else value  # selectors: a tuple
    lab = Lab(lesson_with(**{side: {key: setting}}))
    before = set(ikelab_namespaces())
    with pytest.raises(LabError, match=rf"ikev2-psk.toml: \[{side}\] {key} = {re.escape(value)}: the namespace lab is IPv4 only"):
        with lab:
            pass
    assert lab.commands == [] and set(ikelab_namespaces()) == before


def test_ipv6_lesson_in_the_lab_is_one_line_and_exit_2(tmp_path, capsys):
    # IPv6 protected networks pass the lesson check (outer addresses must be on the IPv4 lab link)
    text = (ROOT / "lessons" / "ikev2-psk.toml").read_text()
    text = text.replace('"198.51.100.0/24"', '"2001:db8:1::/64"').replace('protected = "198.51.100.1"', 'protected = "2001:db8:1::1"')
    assert "2001:db8:1::1" in text
    (tmp_path / "v6.toml").write_text(text)
    assert main(["run", str(tmp_path / "v6.toml"), "--headless"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'v6.toml'}: [left] protected = 2001:db8:1::1: the namespace lab is IPv4 only" in err


def test_a_socket_that_cannot_be_opened_is_a_lab_error(monkeypatch):
    from ikelab.lab import lab as lab_module

    def unavailable(address):
        raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))

    monkeypatch.setattr(lab_module, "lab_ike_sockets", unavailable)
    lab = Lab(lesson_with())
    with pytest.raises(LabError, match=r"cannot open UDP ports 500 and 4500 of left at 192\.0\.2\.1 in ikelab-.*-left: Cannot assign"):
        with lab:
            pass
    assert not [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{lab.topology.rid}-")]


def test_a_lab_removed_under_a_running_ping_is_an_error_not_zero_replies():
    from ikelab.lab.netns import kill_processes

    lesson = lesson_with()
    with Lab(lesson) as lab:
        session = Session(lesson, lab.transport, seed=5, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        for namespace in lab.namespaces.values():  # what `ikelab lab cleanup --all` does to this run
            kill_processes(namespace)
            subprocess.run(["ip", "netns", "del", namespace], check=True)
        with pytest.raises(LabError, match="the lab was removed while the run was using it"):
            lab.ping(2)


def test_a_failed_command_is_one_line_even_when_the_tool_explains_over_several():
    from ikelab.lab.netns import CommandLog

    with pytest.raises(LabError) as info:
        CommandLog().run(["sh", "-c", "echo 'loading failed' >&2; echo >&2; echo 'loaded 0 of 1' >&2; exit 1"])
    message = str(info.value)
    assert "\n" not in message and message.endswith("failed: loading failed; loaded 0 of 1")
