"""Median wall time of a full IKEv2 handshake (IKE_SA_INIT + IKE_AUTH) between two ikelab peers.

Prints, for the memory and loopback transports, the median total of both peers' work, the share
spent in Diffie-Hellman, in the other crypto (PRF, prf+, ciphers, HMAC, NAT detection SHA-1) and in
everything else; the part that is not DH also as its minimum and in CPU time (median and minimum:
the wall clock of a shared machine counts other processes' time too). Building the session
(configurations, peers, the trace) is no handshake work: shown apart as "setup", outside the total.
Handshakes run back to back in blocks of ten, and the blocks of each kind alternate (see BLOCK).
The crypto share comes from separate blocks whose crypto calls are timed one by one: that timing
costs a microsecond a call, which would otherwise count as handshake work (the totals time only
the four DH calls). In memory, each step (one peer's turn) is also
timed in CPU time without its DH, minimum and median. gc stays on, as in a real run. As root it
also measures on the wire, in the namespace lab, ikelab against two strongSwan daemons with the
same proposal: the time from the first IKE_SA_INIT request to the last IKE_AUTH response in a
tcpdump capture of the veth, alternating the two, and its three phases (each side's turns, the
network included). ikelab peers make their first DH key pair when the session is built, before the
first message (Ikev2Peer.prepare): the memory and loopback totals include it (in the DH column),
the wire window does not. The last line is a JSON object with every figure.
Run: .venv/bin/python bench/handshake.py [--runs N] [--wire-runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ikelab.crypto import cipher, dh, ikev2_kdf, integrity, prf  # noqa: E402
from ikelab.ikev2.exchanges import ike_sa_init  # noqa: E402
from ikelab.lab.session import Session  # noqa: E402
from ikelab.lab.transports import LoopbackTransport, MemoryTransport  # noqa: E402
from ikelab.lessons import load_lesson  # noqa: E402


class Stopwatch:
    def __init__(self) -> None:
        self.totals = {"dh": 0.0, "crypto": 0.0}  # wall clock
        self.cpu = {"dh": 0.0, "crypto": 0.0}  # CPU time of this process
        self._inside = False  # a timed call made by another (Integrity.verify -> compute) counts once

    def wrap(self, owner, name: str, bucket: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if self._inside:
                return original(*args, **kwargs)
            self._inside = True
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[bucket] += time.perf_counter() - start
                self.cpu[bucket] += time.process_time() - start_cpu
                self._inside = False

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    @contextmanager
    def installed(self, crypto: bool):
        """Time the DH calls, and the other crypto calls too if `crypto`."""
        self._undo = []
        self.wrap(dh.DhGroup, "generate", "dh")
        self.wrap(dh.DhKeyPair, "shared_secret", "dh")
        if crypto:
            self.wrap(prf.Prf, "__call__", "crypto")
            self.wrap(ikev2_kdf, "prf_plus", "crypto")  # keys its HMAC once for all blocks, not through Prf
            self.wrap(cipher.Cipher, "encrypt", "crypto")
            self.wrap(cipher.Cipher, "decrypt", "crypto")
            self.wrap(integrity.Integrity, "compute", "crypto")
            self.wrap(integrity.Integrity, "verify", "crypto")
            self.wrap(ike_sa_init, "nat_hash", "crypto")  # SHA-1 of the NAT detection notifies
        try:
            yield self
        finally:
            for owner, name, original in reversed(self._undo):
                setattr(owner, name, original)


def one_handshake(lesson, transport_name: str, *, crypto: bool = False) -> dict[str, float]:
    """Seconds of one handshake (both peers, wall and CPU), DH apart; the crypto calls timed if `crypto`."""
    if transport_name == "loopback":
        transport = LoopbackTransport([p.name for p in lesson.peers])
    else:
        transport = MemoryTransport({p.name: p.address for p in lesson.peers})
    watch = Stopwatch()
    try:
        with watch.installed(crypto):
            start = time.perf_counter()
            session = Session(lesson, transport)
            built, built_cpu = time.perf_counter(), time.process_time()
            ahead, ahead_cpu = watch.totals["dh"], watch.cpu["dh"]  # the DH key pairs made while building (prepare)
            steps = {}  # CPU seconds of each step (one peer's turn) without its DH, by the step's label
            while True:  # what session.run() does, one step at a time
                step_cpu, step_dh = time.process_time(), watch.cpu["dh"]
                step = session.step()
                if step is None:
                    break
                steps[step.label] = time.process_time() - step_cpu - (watch.cpu["dh"] - step_dh)
            outcome = session.outcome
            end, end_cpu = time.perf_counter(), time.process_time()
    finally:
        transport.close()
    assert outcome.success, outcome.failures
    total = end - built + ahead  # the run, and the handshake's DH key pairs that were made ahead
    cpu = end_cpu - built_cpu + ahead_cpu
    dh_time = watch.totals["dh"]
    return {"total": total, "dh": dh_time, "crypto": watch.totals["crypto"], "not_dh": total - dh_time,
            "cpu_not_dh": cpu - watch.cpu["dh"], "setup": built - start - ahead, "steps": steps}


@contextmanager
def trivial_exponentiation():
    """MODP exponentiation with the exponent cut to a few bits (both peers alike, so they still agree):
    a diagnostic only, never a secure handshake. The peers then do all their other work as before, but
    no long exponentiation runs between their steps. Yields a list that counts the exponentiations."""
    real, calls = dh._powmod, []

    def trivial(base: int, exponent: int, modulus: int) -> int:
        calls.append(1)
        return pow(base, exponent % 61 + 2, modulus)

    dh._powmod = trivial
    try:
        yield calls
    finally:
        dh._powmod = real


# Handshakes are timed in blocks of this many back to back, the blocks of each kind alternated. Timed
# one by one, each right after a crypto-timed run and the reference loop, the median was 1.69 ms
# instead of 1.13 (not DH, memory, same minute): the other work left the caches and branch predictors
# cold for the handshake that followed, and that is the machine's state, not the handshake's work.
BLOCK = 10

PHASES = ("init", "between", "auth")  # responder's IKE_SA_INIT, initiator's turn, responder's IKE_AUTH


def wire_time(capture: Path) -> float:
    """Seconds from the first IKE_SA_INIT request to the last IKE_AUTH response in a capture."""
    return sum(wire_phases(capture).values())


def wire_phases(capture: Path) -> dict[str, float]:
    """The handshake on the wire in three phases, in seconds: first IKE_SA_INIT request to its response
    (the responder's turn, network included), that response to the first IKE_AUTH request (the
    initiator's), and that request to the last IKE_AUTH response (the responder's again)."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    times = []
    for packet in rdpcap(str(capture)):
        if not packet.haslayer(UDP) or 500 not in (packet[UDP].sport, packet[UDP].dport) and 4500 not in (packet[UDP].sport, packet[UDP].dport):
            continue
        payload = bytes(packet[UDP].payload)
        if payload[:4] == bytes(4):
            payload = payload[4:]  # the non-ESP marker on 4500
        if len(payload) < 28:
            continue
        exchange, flags = payload[18], payload[19]
        times.append((float(packet.time), exchange, bool(flags & 0x20)))
    first = next(t for t, x, response in times if x == 34 and not response)
    init_response = next(t for t, x, response in times if x == 34 and response and t >= first)
    auth_request = next(t for t, x, response in times if x == 35 and not response and t >= init_response)
    last = [t for t, x, response in times if x == 35 and response][-1]
    return dict(zip(PHASES, (init_response - first, auth_request - init_response, last - auth_request)))


def ikelab_on_the_wire(lesson) -> dict[str, float]:
    import tempfile

    from ikelab.lab.lab import Lab

    with tempfile.TemporaryDirectory(prefix="ikelab-bench-") as scratch:
        capture = Path(scratch) / "veth.pcap"
        with Lab(lesson, capture=capture) as lab:
            session = Session(lesson, lab.transport, datapath=lab.datapath, namespaces=lab.namespaces)
            session.run()
            time.sleep(0.1)
            lab.stop_capture()
            assert session.outcome.success
        return wire_phases(capture)


def strongswan_on_the_wire() -> dict[str, float]:
    import subprocess
    import tempfile

    from ikelab.lab.netns import Topology
    from ikelab.lab.strongswan import Charon, StrongswanPeer

    with tempfile.TemporaryDirectory(prefix="ikelab-bench-") as scratch:
        topology = Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")])
        with topology:
            left, right = topology.sides["left"], topology.sides["right"]

            def peer(me, other, role, local_ts, remote_ts):
                workdir = Path(scratch) / me.name
                workdir.mkdir()
                return StrongswanPeer(name=me.name, namespace=me.namespace, local_addr=me.address, remote_addr=other.address,
                                      local_id=f"{me.name}.example", remote_id=f"{other.name}.example", psk=b"bench-psk",
                                      local_ts=[local_ts], remote_ts=[remote_ts], role=role, workdir=workdir)

            capture = Path(scratch) / "veth.pcap"
            with Charon(peer(right, left, "responder", "203.0.113.0/24", "198.51.100.0/24")), \
                    Charon(peer(left, right, "initiator", "198.51.100.0/24", "203.0.113.0/24")) as initiator:
                tcpdump = subprocess.Popen(["ip", "netns", "exec", left.namespace, "tcpdump", "-i", left.interface, "-n", "-U",
                                            "--immediate-mode", "-Z", "root", "-w", str(capture), "udp"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                tcpdump.stderr.readline()
                try:
                    initiator.initiate()
                    time.sleep(0.1)
                finally:
                    tcpdump.terminate()
                    tcpdump.wait()
        return wire_phases(capture)


def reference_work() -> float:
    """CPU seconds of a fixed piece of pure-Python work, timed beside the handshakes: its median over its
    minimum says how much the machine's own speed moved during the runs (on shared VMs, up to 2x)."""
    start = time.process_time()
    total = 0
    for i in range(20000):
        total += i * i
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--wire-runs", type=int, default=11, help="runs of each on the wire (root and strongSwan only)")
    parser.add_argument("--lesson", default="ikev2-psk")
    args = parser.parse_args()
    lesson = load_lesson(args.lesson)
    blocks = max(1, -(-args.runs // BLOCK))
    transports = ("memory", "loopback")
    runs: dict[str, list[dict]] = {t: [] for t in transports}
    split: dict[str, list[dict]] = {t: [] for t in transports}  # crypto calls timed one by one
    reference: list[float] = []
    warm: list[dict[str, float]] = []
    for transport in transports:
        one_handshake(lesson, transport, crypto=True)  # warm-up: imports, caches
    for _ in range(blocks):  # a block of each kind in turn, so that all see the same load
        for transport in transports:
            runs[transport] += [one_handshake(lesson, transport) for _ in range(BLOCK)]
            split[transport] += [one_handshake(lesson, transport, crypto=True) for _ in range(BLOCK)]
        # The same memory handshakes without long exponentiations: how fast the rest runs when no
        # exponentiation has just cooled the CPU's caches and branch predictors (see the README).
        with trivial_exponentiation() as exponentiations:
            warm += [one_handshake(lesson, "memory") for _ in range(BLOCK)]
        reference += [reference_work() for _ in range(BLOCK)]
    results = {}
    for transport in transports:
        done = runs[transport]
        r = {k: statistics.median(run[k] for run in done) * 1000 for k in ("total", "dh", "not_dh", "cpu_not_dh", "setup")}
        r["crypto"] = statistics.median(run["crypto"] for run in split[transport]) * 1000
        r["other"] = r["not_dh"] - r["crypto"]
        r["not_dh_min"] = min(run["not_dh"] for run in done) * 1000
        r["cpu_not_dh_min"] = min(run["cpu_not_dh"] for run in done) * 1000
        results[transport] = r
    step_cpu = {label: {"min": min(run["steps"][label] for run in runs["memory"]) * 1000,
                        "median": statistics.median(run["steps"][label] for run in runs["memory"]) * 1000}
                for label in runs["memory"][0]["steps"]}
    ike = "-".join(s.keywords() for s in lesson.initiator.ike)
    print(f"IKEv2 handshake, {ike}, both peers, median of {blocks * BLOCK} runs in blocks of {BLOCK} (ms);"
          " not DH also as minimum and CPU time")
    print(f"Python {platform.python_version()} at {os.path.realpath(sys.executable)} (the interpreter's build matters)")
    print(f"{'transport':10} {'total':>8} {'DH':>8} {'crypto':>8} {'other':>8} {'not DH':>8} {'min':>8} {'CPU':>8} {'CPU min':>8} {'setup':>8}")
    for transport, r in results.items():
        print(f"{transport:10} {r['total']:8.3f} {r['dh']:8.3f} {r['crypto']:8.3f} {r['other']:8.3f} {r['not_dh']:8.3f}"
              f" {r['not_dh_min']:8.3f} {r['cpu_not_dh']:8.3f} {r['cpu_not_dh_min']:8.3f} {r['setup']:8.3f}")
    noise = statistics.median(reference) / min(reference)
    print(f"machine: a fixed piece of pure-Python work took {noise:.2f}x its minimum as median during these runs"
          " (1.00: steady; the medians above carry that noise)")
    diagnostic = {"not_dh": statistics.median(r["not_dh"] for r in warm) * 1000,
                  "not_dh_min": min(r["not_dh"] for r in warm) * 1000}
    if exponentiations:  # MODP: ECP and Curve25519 have no exponentiation to cut
        print(f"memory, MODP exponents cut to a few bits (a diagnostic, not a secure handshake): not DH median"
              f" {diagnostic['not_dh']:.3f}, min {diagnostic['not_dh_min']:.3f}")
    print("memory, CPU time of each step without DH (ms)       min   median")
    for label, cpu in step_cpu.items():
        print(f"  {label:46} {cpu['min']:8.3f} {cpu['median']:8.3f}")
    figures = {"runs": blocks * BLOCK, "proposal": ike, "unit": "ms", "python": os.path.realpath(sys.executable), **{t: {k: round(v, 4) for k, v in r.items()} for t, r in results.items()}}
    figures["reference_work_median_over_min"] = round(noise, 3)
    if exponentiations:
        figures["memory_trivial_exponent"] = {k: round(v, 4) for k, v in diagnostic.items()}
    figures["memory_steps_cpu"] = {label: {k: round(v, 4) for k, v in cpu.items()} for label, cpu in step_cpu.items()}
    from ikelab.lab.lab import missing_privileges
    from ikelab.lab.strongswan import available

    if missing_privileges() is None and available() is None and args.wire_runs > 0:
        # Alternated, so that both see the same load on a shared machine.
        on_wire: dict[str, list[dict[str, float]]] = {"ikelab": [], "strongswan": []}
        for _ in range(args.wire_runs):
            on_wire["ikelab"].append(ikelab_on_the_wire(lesson))
            on_wire["strongswan"].append(strongswan_on_the_wire())
        totals = {name: [sum(r.values()) * 1000 for r in done] for name, done in on_wire.items()}
        wire = {name: statistics.median(values) for name, values in totals.items()}
        wire["ratio"] = wire["ikelab"] / wire["strongswan"]
        phases = {name: {p: statistics.median(r[p] for r in done) * 1000 for p in PHASES} for name, done in on_wire.items()}
        print(f"on the wire (first IKE_SA_INIT request to last IKE_AUTH response), median of {args.wire_runs} alternated runs (ms):")
        print(f"  ikelab {wire['ikelab']:.2f} ms   strongSwan {wire['strongswan']:.2f} ms   ratio {wire['ratio']:.2f}")
        print(f"  {'phase':52} {'ikelab':>8} {'strongSwan':>10}")
        for p, what in zip(PHASES, ("IKE_SA_INIT request -> response (responder)", "IKE_SA_INIT response -> IKE_AUTH request (initiator)",
                                    "IKE_AUTH request -> response (responder)")):
            print(f"  {what:52} {phases['ikelab'][p]:8.2f} {phases['strongswan'][p]:10.2f}")
        figures["wire"] = {k: round(v, 4) for k, v in wire.items()}
        figures["wire_phases"] = {name: {p: round(v, 4) for p, v in ph.items()} for name, ph in phases.items()}
    else:
        print("on the wire: skipped (--wire-runs 0)" if args.wire_runs <= 0 else "on the wire: skipped (needs root and strongSwan)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
