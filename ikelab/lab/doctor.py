"""`ikelab doctor`: what this machine lets ikelab do, and what to do about what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from ikelab.lab.netns import PREFIX, run_id

TOOLS = [
    ("ip", "iproute2", "builds the lab's namespaces, links and routes"),
    ("ping", "iputils-ping", "the live ping through the tunnel"),
    ("tcpdump", "tcpdump", "captures the lab's veth for --pcap"),
    ("tshark", "tshark", "reads captures in the tests"),
    ("nft", "nftables", "blocks or drops traffic in failure lessons"),
    ("tmux", "tmux", "drives the TUI in tests"),
    ("iperf3", "iperf3", "the datapath benchmark"),
    ("swanctl", "strongswan-swanctl", "strongSwan as the other peer"),
]
CHARON = "/usr/lib/ipsec/charon"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _namespace_check() -> Check:
    if os.geteuid() != 0:
        return Check("network namespaces", False, "not root", "run ikelab with sudo for the lab; without it, runs use --transport loopback")
    name = f"{PREFIX}{run_id()}-doctor"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return Check("network namespaces", False, made.stderr.strip(), "check that the kernel has CONFIG_NET_NS and that /run/netns is writable")
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return Check("network namespaces", True, "ip netns add/del works")


def _tun_check() -> Check:
    path = "/dev/net/tun"
    if not os.path.exists(path):
        return Check("TUN device", False, f"{path} is missing", "modprobe tun")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check("TUN device", False, f"{path} is not writable by this user", "run the lab as root (sudo)")
    return Check("TUN device", True, f"{path} is usable (the userspace ESP datapath)")


def _esp_check() -> Check:
    if os.geteuid() != 0:
        return Check("kernel ESP (XFRM)", False, "cannot probe without root", "run `sudo ikelab doctor`")
    from ikelab.lab.netns import Topology
    from ikelab.lab.xfrm import kernel_supports
    from ikelab.lab.lab import sample_child
    from ikelab.lessons import load_lesson

    topology = Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")])
    try:
        topology.up()
        ok, why = kernel_supports(topology.sides["left"].namespace, sample_child(load_lesson("ikev2-psk")))
    except Exception as e:  # the probe must report, not crash
        ok, why = False, str(e)
    finally:
        topology.down()
    fix = "" if ok else "nothing to do: ikelab uses its userspace ESP datapath (TUN) instead"
    return Check("kernel ESP (XFRM)", ok, why, fix)


def checks() -> list[Check]:
    out = [Check("privileges", os.geteuid() == 0, "root" if os.geteuid() == 0 else f"uid {os.geteuid()}",
                 "" if os.geteuid() == 0 else "the lab needs root; loopback runs work without it")]
    out += [_namespace_check(), _tun_check(), _esp_check()]
    for tool, package, why in TOOLS:
        path = shutil.which(tool)
        out.append(Check(f"tool {tool}", path is not None, path or f"missing ({why})", "" if path else f"apt-get install {package}"))
    charon = os.path.exists(CHARON)
    out.append(Check("strongSwan charon", charon, CHARON if charon else "missing (strongSwan as the other peer)",
                     "" if charon else "apt-get install strongswan-charon libcharon-extra-plugins"))
    return out


def run_doctor() -> int:
    results = checks()
    for c in results:
        print(f"{'ok ' if c.ok else 'NO '} {c.name:22} {c.detail}")
        if c.fix:
            print(f"    {'':22} -> {c.fix}")
    lab_ok = all(c.ok for c in results if c.name in ("privileges", "network namespaces", "TUN device"))
    print()
    print("The namespace lab can run here." if lab_ok else "The namespace lab cannot run here; `ikelab run` falls back to loopback UDP.")
    return 0
