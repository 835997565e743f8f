"""strongSwan's charon as a lab peer: one daemon in one lab namespace, configured from a StrongswanPeer.

strongSwan is the independent implementation the lab checks ikelab against, so one side of a lesson
can be charon and the other ikelab. Facts this relies on (measured with Debian 12's strongSwan 5.9.8):

- the kernel here has no ESP, so charon uses kernel-libipsec (userspace ESP over its TUN `ipsec0`),
  loaded before kernel-netlink, which still handles addresses and routes; libipsec 5.9.8 always
  UDP-encapsulates ESP and fakes NAT detection, so IKE floats to 4500 and ESP is ESP-in-UDP;
- charon's pid file is fixed at /run/charon.pid, so each daemon gets its own directory bind-mounted
  over /run in the mount namespace `ip netns exec` already gives it (no mount leaks to the host);
- STRONGSWAN_CONF and SWANCTL_DIR point charon and swanctl at per-instance files, and the VICI socket
  lives in the workdir, not in /run;
- filelog at ike=4, chd=4, mgr=2 prints every secret as hex, which keys() reads back.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ikelab.lab.netns import CommandLog, LabError, _quote

CHARON = "/usr/lib/ipsec/charon"
# kernel-libipsec must come before kernel-netlink, or the Child SA fails with netlink error 93.
PLUGINS = ("random nonce openssl aes sha1 sha2 hmac gmp kdf pem pkcs1 x509 pubkey "
           "kernel-libipsec kernel-netlink socket-default vici")
# Every directory `swanctl --load-all` reads; creating them all keeps its output free of warnings.
SWANCTL_DIRS = ("x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private",
                "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12")
CONNECTION = "lab"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def available() -> str | None:
    """None if strongSwan can run in the lab here, else why not."""
    if os.geteuid() != 0:
        return "strongSwan in the lab needs root (namespaces, the bind mount over /run, its TUN device)"
    if not os.access(CHARON, os.X_OK):
        return f"{CHARON} is missing: apt-get install strongswan-charon libcharon-extra-plugins"
    if shutil.which("swanctl") is None:
        return "swanctl is missing: apt-get install strongswan-swanctl"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: kernel-libipsec needs TUN (modprobe tun)"
    return None


@dataclass(kw_only=True)
class StrongswanPeer:
    """One strongSwan side of a lab: a PSK or a certificate, one tunnel-mode Child SA named `net`."""

    name: str
    namespace: str
    local_addr: str
    remote_addr: str
    local_id: str
    remote_id: str
    psk: bytes
    ike_proposal: str = "aes128-sha256-modp2048"
    esp_proposal: str = "aes128-sha256"
    local_ts: list[str]
    remote_ts: list[str]
    role: str = "responder"  # "initiator" or "responder": which one may call Charon.initiate()
    dpd_every: int | None = None  # dpd_delay: IKEv1 R-U-THERE (IKEv2: an empty INFORMATIONAL) after this much quiet
    workdir: Path
    version: int = 2  # 1: IKEv1 (main mode, or aggressive mode with `aggressive`)
    aggressive: bool = False
    # Whole seconds; None keeps strongSwan's defaults (rekey_time 4 h for the IKE SA, 1 h for Child SAs).
    rekey_ike_after: int | None = None
    rekey_child_after: int | None = None
    nat_keepalive_every: int | None = None  # charon.keep_alive (20 s by default): sent only when behind a NAT
    # Certificate authentication (`auth = pubkey`, the same for IKEv1 and IKEv2): this side's
    # certificate and private key (cryptography objects, e.g. from ikelab.lab.credentials) and the CA
    # certificates it trusts for the peer's. Without a certificate the side uses `psk`.
    certificate: Any = None
    private_key: Any = None
    trusted_cas: tuple = ()
    fragmentation: bool = True  # swanctl's `fragmentation` (RFC 7383 for IKEv2), on by default as in strongSwan
    fragment_size: int | None = None  # charon.fragment_size, the largest IP datagram of a fragment; None: 1280

    @property
    def auth(self) -> str:
        return "pubkey" if self.certificate is not None else "psk"

    def __post_init__(self) -> None:
        if self.role not in ("initiator", "responder"):
            raise ValueError(f"role must be 'initiator' or 'responder', not {self.role!r}")


def strongswan_conf(workdir: Path, aggressive_psk: bool = False, keep_alive: int | None = None,
                    fragment_size: int | None = None) -> str:
    vici = f"unix://{workdir / 'charon.vici'}"
    # A responder refuses aggressive mode with a PSK unless told otherwise: the hash it sends can be
    # cracked offline (which is what the aggressive-mode lesson shows).
    aggressive = "  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n" if aggressive_psk else ""
    return f"""\
charon {{
{aggressive}{_keep_alive(keep_alive)}{_fragment_size(fragment_size)}  load_modular = no
  load = {PLUGINS}
  filelog {{
    lab {{
      path = {workdir / 'charon.log'}
      default = 1
      ike = 4
      chd = 4
      mgr = 2
      flush_line = yes
    }}
  }}
  plugins {{
    vici {{
      socket = {vici}
    }}
  }}
}}
swanctl {{
  socket = {vici}
  load = pem pkcs1 x509 pubkey openssl random
}}
"""


def _keep_alive(seconds: int | None) -> str:
    return "" if seconds is None else f"  keep_alive = {seconds}s\n"


def _fragment_size(size: int | None) -> str:
    return "" if size is None else f"  fragment_size = {size}\n"


CERT_NAME = "local"  # x509/local.pem and private/local.pem, as ikelab.pki.ca.write_swanctl names them


def _auth(peer: StrongswanPeer, local: bool) -> str:
    """The lines of a `local` or `remote` section: PSK, or certificates (the peer's is checked
    against the CAs in x509ca/)."""
    lines = [f"auth = {peer.auth}"]
    if local and peer.certificate is not None:
        lines.append(f"certs = {CERT_NAME}.pem")
    lines.append(f"id = {peer.local_id if local else peer.remote_id}")
    return "".join(f"      {line}\n" for line in lines)


def _send_cert(peer: StrongswanPeer) -> str:
    # Always, not only when the peer's CERTREQ names our CA: a student's bad-CA lesson still shows it.
    return "    send_cert = always\n" if peer.certificate is not None else ""


def _secrets(peer: StrongswanPeer) -> str:
    if peer.certificate is not None:
        return ""  # the private key comes from private/, matched to the certificate by its public key
    return f"""\
secrets {{
  ike-{CONNECTION} {{
    id-local = {peer.local_id}
    id-remote = {peer.remote_id}
    secret = 0x{peer.psk.hex()}
  }}
}}
"""


def _lifetimes(rekey: int | None, indent: str, hard: str) -> str:
    """rekey_time with no random jitter (so a lesson knows when it happens), and a hard limit well
    after it (`life_time` of a Child SA, `over_time` of an IKE SA), so strongSwan rekeys rather than
    lets the SA expire."""
    if rekey is None:
        return ""
    return "".join(f"{indent}{line}\n" for line in (f"rekey_time = {rekey}s", f"{hard} = {rekey + 60}s", "rand_time = 0s"))


def _dpd(seconds: int | None) -> str:
    return "" if seconds is None else f"    dpd_delay = {seconds}s\n"


def swanctl_conf(peer: StrongswanPeer) -> str:
    """One setting per line: swanctl rejects several settings on one line."""
    return f"""\
connections {{
  {CONNECTION} {{
    version = {peer.version}
    aggressive = {"yes" if peer.aggressive else "no"}
    local_addrs = {peer.local_addr}
    remote_addrs = {peer.remote_addr}
    proposals = {peer.ike_proposal}
{_dpd(peer.dpd_every)}    mobike = no
    fragmentation = {"yes" if peer.fragmentation else "no"}
{_send_cert(peer)}{_lifetimes(peer.rekey_ike_after, "    ", "over_time")}    local {{
{_auth(peer, local=True)}    }}
    remote {{
{_auth(peer, local=False)}    }}
    children {{
      net {{
        local_ts = {", ".join(peer.local_ts)}
        remote_ts = {", ".join(peer.remote_ts)}
        esp_proposals = {peer.esp_proposal}
        mode = tunnel
{_lifetimes(peer.rekey_child_after, "        ", "life_time")}      }}
    }}
  }}
}}
{_secrets(peer)}"""


def _private(path: Path) -> int:
    """A descriptor of `path`, emptied, that only its owner may read (mode 0600, even if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class Charon:
    """`with Charon(peer) as charon:` a running, configured charon; stopped on every exit path."""

    def __init__(self, peer: StrongswanPeer, log: CommandLog | None = None) -> None:
        self.peer = peer
        self.log = log or CommandLog()
        self.workdir = peer.workdir
        self.process: subprocess.Popen | None = None
        env = {"STRONGSWAN_CONF": self.workdir / "strongswan.conf", "SWANCTL_DIR": self.workdir / "swanctl"}
        # `env` on the command line rather than in Popen's environment: each logged line runs as typed.
        self._in_namespace = ["ip", "netns", "exec", peer.namespace, "env", *(f"{k}={v}" for k, v in env.items())]

    def __enter__(self) -> Charon:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def logs(self) -> Path:
        return self.workdir / "charon.log"

    def start(self) -> None:
        self._write_config()
        run_dir = self.workdir / "run"
        run_dir.mkdir(exist_ok=True)
        args = [*self._in_namespace, "sh", "-c", 'mount --bind "$0" /run && exec "$@"', str(run_dir), CHARON]
        self.log.lines.append(" ".join(_quote(a) for a in args))
        with open(_private(self.workdir / "charon.out"), "wb") as out:
            # ip netns exec, env and sh all exec: self.process.pid is charon's own pid. umask: the
            # log charon creates holds every key it derives.
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            umask=0o077)
        self._wait_for_vici()
        self._swanctl("--load-all")

    def initiate(self, child: str = "net", timeout: float = 10.0) -> str:
        """Bring up `child` (and the IKE SA under it); returns swanctl's output, raises LabError on failure."""
        if self.peer.role != "initiator":
            raise LabError(f"{self.peer.name} is the responder; only the initiator starts the exchange")
        return self._swanctl("--initiate", "--child", child, "--timeout", str(round(timeout)))

    def act(self, action: str, timeout: float = 10.0) -> str:
        """A lesson action on this side, as a student types it: "rekey-child" is swanctl --rekey, ..."""
        commands = {
            "rekey-child": ["--rekey", "--child", "net"],
            "rekey-ike": ["--rekey", "--ike", CONNECTION],
            "delete-child": ["--terminate", "--child", "net", "--timeout", str(round(timeout))],
            "delete-ike": ["--terminate", "--ike", CONNECTION, "--timeout", str(round(timeout))],
            "create-child": ["--initiate", "--child", "net", "--timeout", str(round(timeout))],
        }
        if action not in commands:
            raise LabError(f"strongSwan cannot be asked to {action} from the lab (swanctl has no such command)")
        return self._swanctl(*commands[action])

    def list_sas(self) -> dict[str, int]:
        """How many IKE SAs (of connection `lab`) are established and Child SAs (`net`) installed, from
        swanctl --list-sas (a rekeyed SA waiting for its DELETE is not counted)."""
        text = self._swanctl("--list-sas", "--noblock")
        return {"ike": len(re.findall(rf"^{CONNECTION}: #\d+, ESTABLISHED", text, re.M)),
                "child": len(re.findall(r"^\s+net: #\d+, reqid \d+, INSTALLED", text, re.M))}

    def stop(self) -> None:
        """SIGTERM (charon removes its TUN device, routes and pid file), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def keys(self) -> dict:
        """Every IKE and Child SA key charon logged, in the shape of the captures' keys.json."""
        return parse_keys(self.logs().read_text(errors="replace"), self.logs().name)

    def _write_config(self) -> None:
        swanctl = self.workdir / "swanctl"
        for name in SWANCTL_DIRS:
            (swanctl / name).mkdir(parents=True, exist_ok=True)
        with open(_private(self.workdir / "strongswan.conf"), "w") as conf:
            conf.write(strongswan_conf(self.workdir, self.peer.aggressive, self.peer.nat_keepalive_every, self.peer.fragment_size))
        with open(_private(swanctl / "swanctl.conf"), "w") as conf:
            conf.write(swanctl_conf(self.peer))  # the PSK is in it
        self._write_credentials(swanctl)
        # A previous run's log or socket in the same workdir would mislead keys() and the start-up wait.
        for stale in (self.logs(), self.workdir / "charon.vici"):
            stale.unlink(missing_ok=True)

    def _write_credentials(self, swanctl: Path) -> None:
        """Certificate, key and trust anchors where `swanctl --load-all` finds them."""
        from ikelab.pki.ca import write_swanctl

        peer = self.peer
        if peer.certificate is None:
            return
        if not peer.trusted_cas:
            raise LabError(f"{peer.name}: a strongSwan side with a certificate needs the CA it trusts for the peer's")
        for i, ca in enumerate(peer.trusted_cas):
            write_swanctl(swanctl, ca, peer.certificate if i == 0 else None, peer.private_key if i == 0 else None,
                          name=CERT_NAME, ca_name=f"lab-ca-{i}")

    def _wait_for_vici(self) -> None:
        """Until VICI accepts a connection: then charon has loaded its plugins and can take swanctl."""
        path = str(self.workdir / "charon.vici")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabError(f"charon in {self.peer.namespace} exited with {self.process.returncode}: {self._tail()}")
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(path)
                    return
                except OSError:
                    time.sleep(0.02)
        raise LabError(f"charon in {self.peer.namespace} did not open {path} in {START_TIMEOUT:.0f} s: {self._tail()}")

    def _swanctl(self, *args: str) -> str:
        return self.log.run([*self._in_namespace, "swanctl", *args]).stdout

    def _tail(self) -> str:
        text = ""
        for path in (self.workdir / "charon.out", self.logs()):
            if path.exists():
                text += path.read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-5:]) or "no output"


# The labels charon's keymat and child_sa code log at level 4, and the keys.json names for them.
IKE_LABELS = {
    "SKEYSEED": "skeyseed", "Sk_d secret": "sk_d", "Sk_ai secret": "sk_ai", "Sk_ar secret": "sk_ar",
    "Sk_ei secret": "sk_ei", "Sk_er secret": "sk_er", "Sk_pi secret": "sk_pi", "Sk_pr secret": "sk_pr",
}
CHILD_LABELS = {
    "encryption initiator key": "encr_i", "encryption responder key": "encr_r",
    "integrity initiator key": "integ_i", "integrity responder key": "integ_r",
}
DH_LABEL = "shared Diffie Hellman secret"
LINE = re.compile(r"(\d+)\[(\w+)\] (.*)")
DUMP_START = re.compile(r"(.+) => (\d+) bytes @ 0x[0-9a-f]+")
DUMP_LINE = re.compile(r"\s*\d+: (.*)")
CHECKOUT = re.compile(r"checkout IKEv\d SA .* with SPIs ([0-9a-f]{16})_i")
CHECKIN = re.compile(r"checkin IKEv\d SA .* with SPIs ([0-9a-f]{16})_i ([0-9a-f]{16})_r")
PARSED = re.compile(r"parsed \S+ (request|response)")
# The responder of a rekey registers the new outbound SA first and adds it once the old one is gone.
ESP_SA = re.compile(r"(?:adding|registering) (inbound|outbound) ESP SA")
ESTABLISHED = re.compile(r"CHILD_SA \S+ established")
ESP_SA_DETAIL = re.compile(r"\s*SPI 0x([0-9a-f]+), src (\S+) dst (\S+)")


class _Thread:
    """What one charon worker thread is in the middle of: its log lines interleave with others'."""

    def __init__(self) -> None:
        self.dump: tuple[str, int, bytearray] | None = None  # label, length, bytes so far
        self.spi_i = ""  # the IKE SA this thread has checked out
        self.dh_secret = b""
        self.esp_proposal = self.role = self.esp_dir = ""
        self.ike: dict | None = None  # until its SPIs are known
        self.child: dict | None = None  # until it is established


def parse_keys(text: str, log_name: str) -> dict:
    """Read an ike=4/chd=4/mgr=2 filelog into {"ike_sas": [...], "child_sas": [...]} (IKEv2)."""
    threads: dict[str, _Thread] = {}
    # Per IKE SA, not per thread: the responder picks the proposal in one thread and, when IKE_AUTH
    # arrives, derives the keys in another.
    ike_proposals: dict[str, str] = {}
    ike_sas: list[dict] = []
    child_sas: list[dict] = []
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        t = threads.setdefault(match.group(1), _Thread())
        body = match.group(3)
        if t.dump and (dump := DUMP_LINE.match(body)):
            label, length, data = t.dump
            # "   0: A8 6B ... CF  .k.&..." : the hex column ends at the first double space.
            data += bytes.fromhex(dump.group(1).split("  ", 1)[0])
            if len(data) >= length:
                t.dump = None
                _got_value(t, label, bytes(data[:length]), log_name, ike_proposals, ike_sas, child_sas)
            continue
        t.dump = None
        if start := DUMP_START.fullmatch(body):
            t.dump = (start.group(1), int(start.group(2)), bytearray())
        elif checkout := CHECKOUT.search(body):
            t.spi_i = checkout.group(1)
        elif body.startswith("selected proposal: IKE:"):
            ike_proposals[t.spi_i] = body.split(":", 2)[2]
        elif body.startswith("selected proposal: ESP:"):
            t.esp_proposal = body.split(":", 2)[2]
        elif parsed := PARSED.search(body):
            # Whoever parsed a request is the responder of that exchange, and of the Child SA it creates.
            t.role = "responder" if parsed.group(1) == "request" else "initiator"
        elif (checkin := CHECKIN.search(body)) and t.ike and checkin.group(2) != "0" * 16:
            t.ike.update(spi_i=checkin.group(1), spi_r=checkin.group(2))
            t.ike = None
        elif esp := ESP_SA.search(body):
            t.esp_dir = esp.group(1)
        elif (detail := ESP_SA_DETAIL.fullmatch(body)) and t.child is not None and t.esp_dir:
            spi, src, dst = detail.groups()
            t.child["sas"].append({"dir": t.esp_dir, "spi": spi, "src": src, "dst": dst})
            t.esp_dir = ""
        elif ESTABLISHED.search(body):
            t.child = None
    return {"ike_sas": ike_sas, "child_sas": child_sas}


def _got_value(t: _Thread, label: str, value: bytes, log_name: str, ike_proposals: dict, ike_sas: list,
               child_sas: list) -> None:
    if label == DH_LABEL:
        t.dh_secret = value
    elif label in IKE_LABELS:
        if label == "SKEYSEED":  # the first key of a new IKE SA
            t.ike = {"ike_proposal": ike_proposals.get(t.spi_i, ""), "log": log_name, "dh_secret": t.dh_secret.hex(),
                     "version": 2}
            ike_sas.append(t.ike)
        if t.ike is not None:
            t.ike[IKE_LABELS[label]] = value.hex()
    elif label in CHILD_LABELS:
        if label == "encryption initiator key":  # the first key of a new Child SA
            t.child = {"keys": {}, "esp_proposal": t.esp_proposal, "role": t.role, "log": log_name, "sas": []}
            child_sas.append(t.child)
        if t.child is not None:
            t.child["keys"][CHILD_LABELS[label]] = value.hex()
