"""ikelab's tunnel against strongSwan's, on this machine in one run: TCP throughput and ping RTT.

Both tunnels join the protected addresses 198.51.100.1 (left) and 203.0.113.1 (right) over a veth
pair between two lab namespaces, with IKEv2 PSK aes128-sha256-modp2048 and ESP aes128-sha256:
(a) two ikelab peers (lesson ikev2-psk) and the datapath the lab picks, (b) two strongSwan charons,
left initiating, with kernel-libipsec (userspace ESP over TUN; in 5.9.8 always ESP-in-UDP).
Neither namespace has a default route, so traffic between the protected addresses can only take
the tunnel. Measured: iperf3 TCP, one stream; ping RTT; the time to bring the tunnel up
(Session.run() against `swanctl --initiate`); and the wall time of
`python -m ikelab.cli run ikev2-psk --headless --ping 1`, an upper bound on the time to the first
ping reply (the CLI prints its transcript only when it ends, so the reply itself cannot be timed).

Prints a side-by-side table with the ratios ikelab/strongSwan and, as its last line, a JSON object
with all figures (medians over --runs). Run as root: python bench/datapath.py [--runs N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ikelab.lab.lab import Lab, missing_privileges  # noqa: E402
from ikelab.lab.netns import Topology  # noqa: E402
from ikelab.lab.session import Session  # noqa: E402
from ikelab.lab.strongswan import Charon, StrongswanPeer, available  # noqa: E402
from ikelab.lessons import load_lesson  # noqa: E402

LEFT, RIGHT = "198.51.100.1", "203.0.113.1"
PINGS, PING_INTERVAL = 20, "0.05"
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")
RECEIVED = re.compile(r"(\d+) received")


def iperf(left_ns: str, right_ns: str, seconds: int) -> float:
    """Mbit/s the receiver counted for one TCP stream from LEFT to RIGHT."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", right_ns, "iperf3", "-s", "-1", "-B", RIGHT, "--forceflush"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in server.stdout:  # the client may connect once the server says it listens
            if "listening" in line:
                break
        else:
            raise RuntimeError(f"iperf3 server did not start (exit {server.wait()})")
        client = subprocess.run(
            ["ip", "netns", "exec", left_ns, "iperf3", "-c", RIGHT, "-B", LEFT, "-t", str(seconds), "--json"],
            capture_output=True, text=True, timeout=seconds + 20,
        )
        report = json.loads(client.stdout)
        if "error" in report:
            raise RuntimeError(f"iperf3: {report['error']}")
        return report["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait()


def ping(left_ns: str) -> dict[str, float]:
    result = subprocess.run(
        ["ip", "netns", "exec", left_ns, "ping", "-n", "-q", "-c", str(PINGS), "-i", PING_INTERVAL, "-W", "2",
         "-I", LEFT, RIGHT], capture_output=True, text=True, timeout=30,
    )
    rtt, received = RTT.search(result.stdout), RECEIVED.search(result.stdout)
    if rtt is None:
        raise RuntimeError(f"no ping reply through the tunnel: {result.stdout}{result.stderr}")
    return {"rtt_min_ms": float(rtt.group(1)), "rtt_avg_ms": float(rtt.group(2)), "rtt_max_ms": float(rtt.group(3)),
            "replies": int(received.group(1))}


@contextmanager
def ikelab_tunnel():
    """Yields (left namespace, right namespace, setup seconds, datapath name) with the tunnel up."""
    lesson = load_lesson("ikev2-psk")
    with Lab(lesson) as lab:
        session = Session(lesson, lab.transport, seed=1, datapath=lab.datapath, namespaces=lab.namespaces)
        start = time.perf_counter()
        session.run()
        setup = time.perf_counter() - start
        if not (session.outcome.success and all(session.outcome.children.values())):
            raise RuntimeError("the ikelab handshake failed")
        yield lab.namespaces["left"], lab.namespaces["right"], setup, lab.datapath.name


@contextmanager
def strongswan_tunnel():
    topology = Topology([("left", "192.0.2.1", LEFT), ("right", "192.0.2.2", RIGHT)])
    with topology, tempfile.TemporaryDirectory(prefix="ikelab-bench-") as scratch:
        left, right = topology.sides["left"], topology.sides["right"]

        def peer(me, other, role: str) -> StrongswanPeer:
            workdir = Path(scratch) / me.name
            workdir.mkdir()
            return StrongswanPeer(
                name=me.name, namespace=me.namespace, local_addr=me.address, remote_addr=other.address,
                local_id=f"{me.name}.example", remote_id=f"{other.name}.example", psk=b"bench-psk",
                local_ts=[f"{me.protected}/32"], remote_ts=[f"{other.protected}/32"], role=role, workdir=workdir,
            )

        with Charon(peer(right, left, "responder"), topology.log), \
                Charon(peer(left, right, "initiator"), topology.log) as initiator:
            start = time.perf_counter()
            initiator.initiate()
            setup = time.perf_counter() - start
            yield left.namespace, right.namespace, setup, "kernel-libipsec (ESP-in-UDP over TUN)"


def cli_wall_time() -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ikelab.cli", "run", "ikev2-psk", "--headless", "--ping", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or "1 received" not in result.stdout:
        raise RuntimeError(f"ikelab run failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
    return elapsed


def measure(tunnel, runs: int, seconds: int) -> dict:
    with tunnel() as (left_ns, right_ns, setup, datapath):
        samples = [{"tcp_mbps": iperf(left_ns, right_ns, seconds), **ping(left_ns)} for _ in range(runs)]
    figures = {name: round(statistics.median(s[name] for s in samples), 3) for name in samples[0]}
    return {"datapath": datapath, "setup_ms": round(setup * 1e3, 1), **figures}


ROWS = [  # key, label, format
    ("tcp_mbps", "iperf3 TCP, 1 stream (Mbit/s)", ".1f"),
    ("rtt_min_ms", "ping RTT min (ms)", ".3f"),
    ("rtt_avg_ms", "ping RTT avg (ms)", ".3f"),
    ("rtt_max_ms", "ping RTT max (ms)", ".3f"),
    ("replies", f"ping replies of {PINGS}", ".0f"),
    ("setup_ms", "tunnel up: Session.run / swanctl --initiate (ms)", ".1f"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="iperf3 and ping runs per tunnel (medians)")
    parser.add_argument("--seconds", type=int, default=5, help="iperf3 duration")
    args = parser.parse_args()
    for reason in (missing_privileges(), available()):
        if reason:
            sys.exit(f"bench/datapath.py: {reason}")
    ikelab = measure(ikelab_tunnel, args.runs, args.seconds)
    strongswan = measure(strongswan_tunnel, args.runs, args.seconds)
    cli = statistics.median(cli_wall_time() for _ in range(args.runs))
    ratios = {name: round(ikelab[name] / strongswan[name], 3) for name, _, _ in ROWS if strongswan[name]}

    print(f"{'':50} {'ikelab':>12} {'strongSwan':>12} {'ikelab/sS':>10}")
    for name, label, spec in ROWS:
        ratio = f"{ratios[name]:10.2f}" if name in ratios else f"{'-':>10}"
        print(f"{label:50} {ikelab[name]:12{spec}} {strongswan[name]:12{spec}} {ratio}")
    print(f"datapaths: ikelab {ikelab['datapath']}; strongSwan {strongswan['datapath']}")
    print(f"`ikelab run ikev2-psk --headless --ping 1` wall time: {cli * 1e3:.0f} ms "
          "(an upper bound on the time to the first reply: the CLI prints its transcript only at the end)")
    print(json.dumps({"runs": args.runs, "iperf_seconds": args.seconds, "pings": PINGS, "ikelab": ikelab,
                      "strongswan": strongswan, "ratio_ikelab_over_strongswan": ratios,
                      "cli_ping1_wall_ms": round(cli * 1e3, 1)}))


if __name__ == "__main__":
    main()
