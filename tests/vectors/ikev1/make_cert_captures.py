"""Make tests/vectors/ikev1/ikev1-main-{rsa,ecdsa384}.*: two charons in the lab, IKEv1 main mode with
certificates from a fresh lab CA; the capture, the keys the responder logged and the CA certificate.

    sudo .venv/bin/python tests/vectors/ikev1/make_cert_captures.py tests/vectors/ikev1

Nothing of ikelab's IKE takes part: the lab only provides the namespaces, the CA and charon's config.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ikelab.lab.netns import Topology
from ikelab.lab.strongswan import Charon, StrongswanPeer
from ikelab.pki.ca import LabCa, pem

# What charon logs at ike = 4, and the keys.json name for it.
LABELS = {"dh_secret": "shared Diffie Hellman secret", "skeyid": "SKEYID", "skeyid_d": "SKEYID_d", "skeyid_a": "SKEYID_a",
          "skeyid_e": "SKEYID_e", "ka": "encryption key Ka"}


def logged(log: str, label: str) -> bytes:
    """The first value charon logged as `label => N bytes @ 0x...` followed by its hexdump lines."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = re.search(rf"\] {re.escape(label)} => (\d+) bytes @", line)
        if not m:
            continue
        data = b""
        for follow in lines[i + 1:]:
            h = re.match(r"\d+\[\w+\]\s+\d+: ((?:[0-9A-F]{2} ){1,16})", follow)
            if not h:
                break
            data += bytes.fromhex(h.group(1).replace(" ", ""))
        return data[: int(m.group(1))]
    raise ValueError(f"charon logged no {label!r}")


def capture(key: str, out: Path, name: str) -> None:
    ca = LabCa.create("ikelab Lab CA", "ecdsa256", dt.datetime.now(dt.timezone.utc))
    certs = {who: ca.issue(f"{who}.example", [f"{who}.example"], [], key) for who in ("a", "b")}
    work = Path(tempfile.mkdtemp(prefix=f"ikelab-{name}-"))
    try:
        with Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")]) as topo:
            left, right = topo.sides["left"], topo.sides["right"]

            def peer(side, other, me: str, them: str, role: str) -> StrongswanPeer:
                (work / side.name).mkdir()
                return StrongswanPeer(
                    name=side.name, namespace=side.namespace, local_addr=side.address, remote_addr=other.address,
                    local_id=f"{me}.example", remote_id=f"{them}.example", psk=b"", ike_proposal="aes128-sha256-modp2048",
                    esp_proposal="aes128-sha256", local_ts=[f"{side.protected}/32"], remote_ts=[f"{other.protected}/32"],
                    role=role, workdir=work / side.name, version=1, certificate=certs[me].certificate,
                    private_key=certs[me].private_key, trusted_cas=(ca.certificate,))

            dump = subprocess.Popen(["ip", "netns", "exec", left.namespace, "tcpdump", "-i", left.interface, "-w",
                                     str(out / f"{name}.pcap"), "-Z", "root", "--immediate-mode", "udp"], stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)  # tcpdump listens
                with Charon(peer(right, left, "b", "a", "responder"), topo.log) as responder, \
                        Charon(peer(left, right, "a", "b", "initiator"), topo.log) as initiator:
                    initiator.initiate()
                    time.sleep(0.3)
                    log = responder.logs().read_text(errors="replace")
            finally:
                dump.terminate()
                dump.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = {field: logged(log, label).hex() for field, label in LABELS.items()} | {"log": "charon (responder, b.example)"}
    (out / f"{name}.keys.json").write_text(json.dumps(keys, indent=1) + "\n")
    (out / f"{name}.ca.pem").write_bytes(pem(ca.certificate))
    print(name, "SKEYID", keys["skeyid"])


if __name__ == "__main__":
    target = Path(sys.argv[1])
    capture("rsa2048", target, "ikev1-main-rsa")
    capture("ecdsa384", target, "ikev1-main-ecdsa384")
