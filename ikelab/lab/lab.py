"""The namespace lab of one run: topology, IKE sockets, datapath, capture and ping, torn down on
every exit path (a `with` block; the CLI turns SIGTERM into an exception so it unwinds too)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ikelab.esp.sa import ChildSa, EspSa
from ikelab.lab.reuseport import steer_esp_in_udp
from ikelab.lab import datapath as datapaths
from ikelab.lab.netns import NETNS_DIR, LabError, Router, Topology, in_namespace, run_directory
from ikelab.lab.transports import IKE_PORT, NAT_T_PORT, UdpTransport, bound_udp_socket
from ikelab.lessons import Lesson


def sample_child(lesson: Lesson) -> ChildSa:
    """A Child SA with the lesson's first ESP algorithms and zero keys: what the kernel probe tries."""
    spec = lesson.manual.esp if lesson.manual else lesson.initiator.esp[0]
    cipher = spec.encryption[0]
    integ = spec.integrity[0] if spec.integrity else None
    left, right = lesson.left, lesson.right

    def sa(spi: int, src: str, dst: str) -> EspSa:
        return EspSa(spi.to_bytes(4, "big"), src, dst, cipher, integ, bytes(cipher.key_length), bytes(integ.key_length if integ else 0))

    return ChildSa("probe", sa(0x1000, right.address, left.address), sa(0x1001, left.address, right.address), left.local_ts, left.remote_ts)


def lab_ike_sockets(address: str) -> list:
    """UDP 500 and 4500 in a lab namespace; the 4500 socket lets the ESP worker join it (see
    steer_esp_in_udp). On an error nothing stays open."""
    nat_t = bound_udp_socket(address, NAT_T_PORT, reuse_port=True)
    try:
        steer_esp_in_udp(nat_t)
        return [bound_udp_socket(address, IKE_PORT), nat_t]
    except BaseException:
        nat_t.close()
        raise


def ike_sockets_in(side) -> list:
    """lab_ike_sockets in the side's namespace; LabError naming the address if they cannot be had."""
    try:
        return in_namespace(side.namespace, lambda: lab_ike_sockets(side.address))
    except OSError as e:
        raise LabError(f"cannot open UDP ports 500 and 4500 of {side.name} at {side.address} in {side.namespace}: "
                       f"{e.strerror or e}") from None


def refuse_ipv6(lesson: Lesson) -> None:
    """The lab's link, routes and ESP workers are IPv4: say so before anything is built."""
    for peer in lesson.peers:
        for key in ("address", "protected", "local_ts", "remote_ts"):
            value = getattr(peer, key)
            values = value if isinstance(value, tuple) else (value,)
            ipv6 = next((v for v in values if v and ":" in v), None)
            if ipv6 is not None:
                raise LabError(f"{lesson.path}: [{peer.name}] {key} = {ipv6}: the namespace lab is IPv4 only "
                               "(IPv6 addresses work with --transport memory)")


def start_datapath(topology: Topology, lesson, prefer: str, sides: list[str], capturing: bool):
    """The datapath the probe picks for these sides, started. A userspace one is not waited for (its
    `ready()` does) and gets the routes for the lesson's remote selectors ahead of any SA."""
    datapath = datapaths.choose(topology, sample_child(lesson), prefer, sides)
    if isinstance(datapath, datapaths.UserspaceEsp):
        datapath.udp_gso = not capturing  # a capture must show each datagram (see udp_gso)
        datapath.start(wait=False)
        for peer in lesson.peers:
            if peer.name in sides:
                datapath.route_ahead(peer.name, list(peer.remote_ts))
    else:
        datapath.start()
    return datapath


def missing_privileges() -> str | None:
    """Why the namespace lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        # No parentheses in these: callers put the reason inside their own.
        return ("the lab needs root: network namespaces, veth and TUN devices are privileged here, "
                "and /dev/net/tun is not usable by ordinary users; run it with sudo")
    if shutil.which("ip") is None:
        return "the `ip` command is missing: install iproute2"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: load the tun module with modprobe tun"
    return None


# tcpdump's kernel buffer (-B, KiB). Its default of 2 MiB lost up to a quarter of the ESP packets of
# a TCP burst through the tunnel when the machine was busy (tcpdump fell behind, the ring overflowed).
CAPTURE_BUFFER_KIB = 32768


class Capture:
    """tcpdump on one side's veth, started before IKE and stopped after the ping."""

    def __init__(self, namespace: str, interface: str, path: Path) -> None:
        if shutil.which("tcpdump") is None:
            raise LabError("--pcap in the lab needs tcpdump: apt-get install tcpdump")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # -U and --immediate-mode: every packet reaches the file before we stop it (strongSwan notes).
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "tcpdump", "-i", interface, "-n", "-s", "0", "-U", "-B", str(CAPTURE_BUFFER_KIB),
             "--immediate-mode", "-Z", "root", "-w", str(path), "ip"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stderr.readline()  # "listening on ..." once it captures
        if "listening" not in line:
            self.stop()
            raise LabError(f"tcpdump did not start: {line.strip()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class PingResult:
    transmitted: int
    received: int
    lines: list[str]


PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


class Lab:
    """`with Lab(lesson) as lab:` gives namespaces, a netns transport and a started datapath."""

    def __init__(self, lesson: Lesson, *, capture: Path | bool | None = None, prefer_datapath: str = "auto",
                 wait_for_datapath: bool = True) -> None:
        """wait_for_datapath=False: `with` returns while the ESP workers still start, so the caller's
        own start-up (importing the IKE engines) overlaps theirs; call ready() before IKE runs.
        capture: the file tcpdump writes, or True for one in the run's directory (`self.capture.path`,
        removed with the lab)."""
        self.lesson = lesson
        self.wait_for_datapath = wait_for_datapath
        router = Router(lesson.router.nat, lesson.router.block_udp_500) if lesson.router else None
        self.topology = Topology([(p.name, p.address, p.protected) for p in lesson.peers], router=router)
        self.capture_path = capture or None  # False: no capture
        self.prefer_datapath = prefer_datapath
        self.transport: UdpTransport | None = None
        self.datapath = None
        self.capture: Capture | None = None
        self.charons: dict = {}  # strongSwan sides
        # Certificates of every `auth = "pubkey"` side, issued once when a strongSwan side needs them,
        # so charon and the ikelab side trust the same lab CA (pass them on to the Session).
        self.credentials: dict = {}
        self._directory: Path | None = None  # see directory()

    def directory(self) -> Path:
        """The run's private directory, made on first use and removed by close()."""
        if self._directory is None:
            self._directory = run_directory(self.topology.rid)
        return self._directory

    @property
    def namespaces(self) -> dict[str, str]:
        return {name: side.namespace for name, side in self.topology.sides.items()}

    @property
    def commands(self) -> list[str]:
        return self.topology.log.lines

    def __enter__(self) -> "Lab":
        refuse_ipv6(self.lesson)
        try:
            self.topology.up()
            ours = [p.name for p in self.lesson.peers if p.implementation == "ikelab"]
            if self.capture_path is not None:
                watched = self.topology.sides[ours[0]]
                path = self.directory() / "veth.pcap" if self.capture_path is True else self.capture_path
                self.capture = Capture(watched.namespace, watched.interface, path)
            for peer in self.lesson.external:
                self._start_strongswan(peer)
            sockets = {}
            for name in ours:
                side = self.topology.sides[name]
                sockets[name] = ike_sockets_in(side)
            self.transport = UdpTransport(sockets)
            self.transport.name = "netns"
            self.datapath = start_datapath(self.topology, self.lesson, self.prefer_datapath, ours, self.capture is not None)
            if self.wait_for_datapath:
                self.ready()
        except OSError as e:  # a system call the lab makes itself failed: one line, no traceback
            self.close()
            raise LabError(f"the lab could not start: {e}") from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ready(self) -> None:
        """Wait until the datapath can carry ESP (see wait_for_datapath); at once the second time."""
        if isinstance(self.datapath, datapaths.UserspaceEsp):
            self.datapath.ready()  # a LabError leaves the cleanup to the `with` block

    def _start_strongswan(self, peer) -> None:
        from ikelab.lab.strongswan import Charon, StrongswanPeer, available

        problem = available()
        if problem:
            raise LabError(f"the lesson puts strongSwan on the {peer.name} side, but {problem}")
        other = next(p for p in self.lesson.peers if p is not peer)
        workdir = self.directory() / peer.name
        workdir.mkdir(mode=0o700)
        remote_addr = other.address
        if self.lesson.router and self.lesson.router.nat and peer.name == "right":
            remote_addr = Router.RIGHT_ADDRESS  # left reaches us masqueraded as the router
        whole = lambda seconds: None if seconds is None else int(seconds)  # the lesson checked they are whole
        config = StrongswanPeer(
            name=peer.name, namespace=self.topology.sides[peer.name].namespace, local_addr=peer.address,
            remote_addr=remote_addr, local_id=peer.identity.text, remote_id=other.identity.text
            if peer.remote_identity is None else peer.remote_identity.text, psk=peer.psk,
            ike_proposal=",".join(s.keywords() for s in peer.ike), esp_proposal=",".join(s.keywords() for s in peer.esp),
            local_ts=list(peer.local_ts), remote_ts=list(peer.remote_ts), role=peer.role, workdir=workdir,
            version=self.lesson.ike_version, aggressive=self.lesson.ike_version == 1 and self.lesson.mode == "aggressive",
            rekey_ike_after=whole(peer.rekey_ike_after), rekey_child_after=whole(peer.rekey_child_after),
            nat_keepalive_every=whole(peer.nat_keepalive_every),
            dpd_every=None if peer.liveness_every is None else int(peer.liveness_every),
            fragmentation=peer.fragmentation, fragment_size=peer.fragment_size, **self._certificate_of(peer),
        )
        charon = Charon(config, self.topology.log)
        self.charons[peer.name] = charon
        charon.start()

    def _certificate_of(self, peer) -> dict:
        if peer.auth != "pubkey":
            return {}
        if not self.credentials:
            from ikelab.lab.credentials import issue_credentials

            self.credentials = issue_credentials(self.lesson, None)  # strongSwan checks dates on the wall clock
        mine = self.credentials[peer.name]
        return dict(certificate=mine.certificate, private_key=mine.private_key, trusted_cas=mine.trusted_cas)

    def close(self) -> None:
        """Undo everything, in reverse order; safe to call twice and after a partial start. The
        namespaces go last and always, whatever failed before them."""
        try:
            if self.capture is not None:
                self.capture.stop()
            if self.datapath is not None:
                self.datapath.stop()
            if self.transport is not None:
                self.transport.close()
            for charon in self.charons.values():
                charon.stop()
        finally:
            self.topology.down()
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None

    def stop_capture(self) -> None:
        if self.capture is not None:
            self.capture.stop()

    def ping(self, count: int, on_line: Callable[[str], None] = lambda line: None) -> PingResult:
        """Real ping from the initiator's protected address to the responder's, line by line."""
        src, dst = self.lesson.left, self.lesson.right
        result = ping(self.topology.sides[src.name].namespace, src.protected, dst.protected, count, on_line, self.topology.log)
        self.check_still_there()
        return result

    def check_still_there(self) -> None:
        """LabError if the lab's namespaces were removed under the run (`ikelab lab cleanup --all`):
        what it measured then is not a result."""
        gone = [n for n in self.namespaces.values() if not os.path.exists(os.path.join(NETNS_DIR, n))]
        if gone:
            raise LabError(f"the lab was removed while the run was using it ({', '.join(gone)} gone; "
                           "`ikelab lab cleanup --all` removes live runs too)")


def ping(namespace: str, src: str, dst: str, count: int, on_line: Callable[[str], None], log) -> PingResult:
    """Real ping in `namespace` from protected address `src` to `dst`, each line to on_line as it comes."""
    args = ["ip", "netns", "exec", namespace, "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", "-I", src, dst]
    log.lines.append(" ".join(args))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                on_line(line)
    finally:
        if process.poll() is None:  # interrupted: the ping goes with us
            process.kill()
        process.wait()
    match = next((PING_SUMMARY.search(l) for l in lines if PING_SUMMARY.search(l)), None)
    transmitted, received = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return PingResult(transmitted, received, lines)
