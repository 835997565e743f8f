"""`ikelab peer` alone in a namespace: with the datapath, ping and a real capture in an ikelab
namespace against strongSwan; nothing installed (and --ping refused) in a namespace ikelab did not make."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import needs_lab, needs_tshark
from ikelab.lab.strongswan import available

ROOT = Path(__file__).resolve().parent.parent
LEFT = ("left", "192.0.2.1", "198.51.100.1")
RIGHT = ("right", "192.0.2.2", "203.0.113.1")

pytestmark = [needs_lab()]


def peer_command(namespace: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, sys.executable, "-m", "ikelab.cli", "peer", "ikev2-strongswan", *args]


def listening(namespace: str, address: str) -> bool:
    out = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Hlun", "src", f"{address}:4500"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())


def leftovers(namespace: str) -> list[str]:
    """What an `ikelab peer` run could leave in its namespace: TUN device, routes over it, processes."""
    left = []
    if subprocess.run(["ip", "-n", namespace, "link", "show", "ikelab0"], capture_output=True).returncode == 0:
        left.append("TUN device ikelab0")
    routes = subprocess.run(["ip", "-n", namespace, "route", "show", "table", "all"], capture_output=True, text=True).stdout
    left += [f"route {line}" for line in routes.splitlines() if "ikelab0" in line or "203.0.113" in line.split(" ")[0]
             or "198.51.100.0" in line.split(" ")[0]]
    left += [f"process {pid}" for pid in subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()]
    return left


@pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run here: {available()}")
@needs_tshark()
@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_peer_pings_strongswan_through_its_own_datapath(role, tmp_path):
    from ikelab.lab.netns import Topology
    from ikelab.lab.strongswan import Charon, StrongswanPeer

    ours, theirs = (LEFT, RIGHT) if role == "initiator" else (RIGHT, LEFT)
    target = tmp_path / "peer.pcapng"
    with Topology([LEFT, RIGHT]) as topo:
        config = StrongswanPeer(name=theirs[0], namespace=topo.sides[theirs[0]].namespace, local_addr=theirs[1],
                                remote_addr=ours[1], local_id=f"{theirs[0]}.example", remote_id=f"{ours[0]}.example",
                                psk=b"interop-test-psk", local_ts=[theirs[2].rsplit(".", 1)[0] + ".0/24"],
                                remote_ts=[ours[2].rsplit(".", 1)[0] + ".0/24"],
                                role="responder" if role == "initiator" else "initiator", workdir=tmp_path / "charon")
        (tmp_path / "charon").mkdir()
        namespace = topo.sides[ours[0]].namespace
        with Charon(config) as charon:
            process = subprocess.Popen(peer_command(namespace, "--role", role, "--remote", theirs[1], "--ping", "3", "--pcap", str(target)),
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if role == "responder":
                deadline = time.monotonic() + 10
                while not listening(namespace, ours[1]) and time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.05)
                charon.initiate()
            out, err = process.communicate(timeout=90)
            left_behind = leftovers(namespace)
    assert process.returncode == 0, err
    assert "IKE SA established, 1 Child SA(s) installed" in out
    assert "ping: 3 of 3 replies through the tunnel" in out
    assert "3 packets transmitted, 3 received" in err  # printed as the lines arrived
    assert "ESP counters after the ping" in out
    assert left_behind == [], left_behind
    # The capture is tcpdump's: ESP in UDP both ways, authenticated by tshark with the exported esp_sa.
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(target.with_suffix(".wireshark")))
    rows = subprocess.run(["tshark", "-r", str(target), "-T", "fields", "-E", "separator=|", "-e", "esp.spi",
                           "-e", "esp.icv_good", "-e", "icmp.type"], env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    esp = [row.split("|") for row in rows if row.split("|")[0]]
    assert len(esp) == 6 and all(r[1] == "1" for r in esp), rows
    assert sorted(r[2] for r in esp) == ["0", "0", "0", "8", "8", "8"]


@pytest.fixture
def foreign_namespace():
    """A namespace ikelab did not create (no ikelab name), with our address on a veth; removed after."""
    name = f"plain-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        n = ["ip", "-n", name]
        subprocess.run(n + ["link", "add", "va", "type", "veth", "peer", "name", "vb"], check=True)
        subprocess.run(n + ["addr", "add", "192.0.2.2/24", "dev", "va"], check=True)
        subprocess.run(n + ["addr", "add", "203.0.113.1/32", "dev", "lo"], check=True)
        for link in ("lo", "va", "vb"):
            subprocess.run(n + ["link", "set", link, "up"], check=True)
        yield name
    finally:
        from ikelab.lab.netns import kill_processes

        kill_processes(name)  # a run the test failed to stop
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_peer_installs_nothing_in_a_namespace_ikelab_did_not_make(foreign_namespace):
    refused = subprocess.run(peer_command(foreign_namespace, "--role", "responder", "--remote", "192.0.2.1", "--ping", "2"),
                             cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--ping needs the datapath" in refused.stderr
    assert "was not created by ikelab" in refused.stderr
    # Without --ping it runs IKE (here it waits for an initiator) and says once why nothing is installed.
    process = subprocess.Popen(peer_command(foreign_namespace, "--role", "responder", "--remote", "192.0.2.1"),
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not listening(foreign_namespace, "192.0.2.2") and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert subprocess.run(["ip", "-n", foreign_namespace, "link", "show", "ikelab0"], capture_output=True).returncode != 0
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode in (130, -signal.SIGINT) and err.endswith("ikelab: interrupted\n"), err  # -SIGINT: see the next test
    assert err.count("ikelab: no datapath: this network namespace (") == 1 and "was not created by ikelab" in err
    routes = subprocess.run(["ip", "-n", foreign_namespace, "route"], capture_output=True, text=True).stdout
    assert "ikelab0" not in routes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_peer_removes_its_datapath_when_stopped(sig):
    """Stopped while it waits for an initiator: its worker, TUN device and routes go with it."""
    from ikelab.lab.netns import Topology

    with Topology([LEFT, RIGHT]) as topo:
        namespace = topo.sides["right"].namespace
        process = subprocess.Popen(peer_command(namespace, "--role", "responder", "--remote", "192.0.2.1"),
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        routed = lambda: any(r.startswith("route 198.51.100.0/24 dev ikelab0") for r in leftovers(namespace))
        while not routed() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        running = leftovers(namespace)
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
        left_behind = leftovers(namespace)
    assert "TUN device ikelab0" in running and any(r.startswith("route 198.51.100.0/24 dev ikelab0") for r in running), running
    # 130 from ikelab's handler; CPython exits by SIGINT instead when the signal lands inside an
    # exec() of generated code (a dataclass being built), caught or not: either way it unwound.
    assert process.returncode in (130, -signal.SIGINT) and err.endswith("ikelab: interrupted\n"), err
    assert left_behind == [], left_behind
