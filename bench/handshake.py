"""Median wall time of a full IKEv2 handshake (IKE_SA_INIT + IKE_AUTH) between two ikelab peers.

Prints, for the memory and loopback transports, the median total, the share spent in
Diffie-Hellman, in the other crypto (PRF, prf+, ciphers, HMAC) and in everything else, and as its
last line a JSON object with those figures. Run: .venv/bin/python bench/handshake.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ikelab.crypto import cipher, dh, integrity, prf  # noqa: E402
from ikelab.lab.session import Session  # noqa: E402
from ikelab.lab.transports import LoopbackTransport, MemoryTransport  # noqa: E402
from ikelab.lessons import load_lesson  # noqa: E402


class Stopwatch:
    def __init__(self) -> None:
        self.totals = {"dh": 0.0, "crypto": 0.0}

    def wrap(self, owner, name: str, bucket: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[bucket] += time.perf_counter() - start

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    @contextmanager
    def installed(self):
        self._undo = []
        self.wrap(dh.DhGroup, "generate", "dh")
        self.wrap(dh.DhKeyPair, "shared_secret", "dh")
        self.wrap(prf.Prf, "__call__", "crypto")
        self.wrap(cipher.Cipher, "encrypt", "crypto")
        self.wrap(cipher.Cipher, "decrypt", "crypto")
        self.wrap(integrity.Integrity, "compute", "crypto")
        self.wrap(integrity.Integrity, "verify", "crypto")
        try:
            yield self
        finally:
            for owner, name, original in reversed(self._undo):
                setattr(owner, name, original)


def one_handshake(lesson, transport_name: str) -> dict[str, float]:
    if transport_name == "loopback":
        transport = LoopbackTransport([p.name for p in lesson.peers])
    else:
        transport = MemoryTransport({p.name: p.address for p in lesson.peers})
    watch = Stopwatch()
    try:
        with watch.installed():
            start = time.perf_counter()
            session = Session(lesson, transport)
            outcome = session.run()
            total = time.perf_counter() - start
    finally:
        transport.close()
    assert outcome.success, outcome.failures
    dh_time, crypto = watch.totals["dh"], watch.totals["crypto"]
    return {"total": total, "dh": dh_time, "crypto": crypto, "other": total - dh_time - crypto, "not_dh": total - dh_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--lesson", default="ikev2-psk")
    args = parser.parse_args()
    lesson = load_lesson(args.lesson)
    results = {}
    for transport in ("memory", "loopback"):
        one_handshake(lesson, transport)  # warm-up: imports, caches
        runs = [one_handshake(lesson, transport) for _ in range(args.runs)]
        results[transport] = {k: statistics.median(r[k] for r in runs) * 1000 for k in runs[0]}
    ike = "-".join(s.keywords() for s in lesson.initiator.ike)
    print(f"IKEv2 handshake, {ike}, median of {args.runs} runs (ms)")
    print(f"{'transport':10} {'total':>8} {'DH':>8} {'crypto':>8} {'other':>8} {'not DH':>8}")
    for transport, r in results.items():
        print(f"{transport:10} {r['total']:8.3f} {r['dh']:8.3f} {r['crypto']:8.3f} {r['other']:8.3f} {r['not_dh']:8.3f}")
    print(json.dumps({"runs": args.runs, "proposal": ike, "unit": "ms", **{t: {k: round(v, 4) for k, v in r.items()} for t, r in results.items()}}))


if __name__ == "__main__":
    main()
