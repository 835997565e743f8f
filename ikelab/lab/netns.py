"""Network namespaces for a lab run, built with iproute2.

iproute2 rather than pyroute2: `ip` is the tool students will use on real gateways, every command
the lab runs is recorded in the trace as the exact line they could type, and it needs no extra
dependency. The veth pair is created with both ends directly inside the run's namespaces, so the
host namespace's links and routes are never touched.

Python 3.11 has no os.setns. Sockets and TUN devices are opened by a short-lived thread that
enters the namespace with setns(2) through ctypes: a socket stays in the namespace it was created
in, so one process can hold both peers' sockets and the stepper drives them directly, without a
process per namespace and the IPC that would need. Only the thread changes namespace, never the
main thread.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

PREFIX = "ikelab-"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
_counter = itertools.count(1)
T = TypeVar("T")


def one_line(output: str) -> str:
    """A tool's message as one line for an error: swanctl, for one, explains over several."""
    return "; ".join(line.strip() for line in output.splitlines() if line.strip())


class LabError(RuntimeError):
    """The lab cannot be built or used; the message says what is missing and what to do."""


def run_id() -> str:
    """Unique per process and lab: the pid lets `ikelab lab cleanup` tell stale runs from live ones."""
    return f"{os.getpid()}x{next(_counter)}"


def namespace_name(rid: str, side: str) -> str:
    return f"{PREFIX}{rid}-{side}"


def run_directory(rid: str) -> Path:
    """A private temporary directory (mode 0700) for the files of run `rid` (strongSwan's
    configuration and log, which hold the PSK; the raw capture). Named like the run's namespaces,
    so `ikelab lab cleanup` can tell a killed run's directory from a live one's."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{rid}-files-"))


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def in_namespace(namespace: str, action: Callable[[], T]) -> T:
    """Run `action` in a thread that has entered `namespace`; return its result or raise its error."""
    outcome: dict = {}

    def target() -> None:
        try:
            with open(os.path.join(NETNS_DIR, namespace), "rb") as handle:
                if _libc().setns(handle.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
            outcome["value"] = action()
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass
class CommandLog:
    """Every command the lab ran, in order, as a student could type it."""

    lines: list[str] = field(default_factory=list)

    def run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        self.lines.append(" ".join(_quote(a) for a in args))
        result = subprocess.run(args, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise LabError(f"`{self.lines[-1]}` failed: {one_line(result.stderr or result.stdout)}")
        return result


_SAFE = re.compile(r"[\w@%+=:,./-]+")


def _quote(arg: str) -> str:
    """Shell quoting only where needed, so commands read as a student would type them."""
    return arg if _SAFE.fullmatch(arg) else "'" + arg.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class Side:
    """One peer's end of the lab."""

    name: str  # "left" / "right"
    namespace: str
    interface: str  # its veth end
    address: str  # outer address, /24 on the veth
    protected: str  # protected host address, /32 on lo


@dataclass(frozen=True)
class Router:
    """A third namespace between the peers: it forwards, and can masquerade (NAT) or drop UDP 500.

    The link is split in two: left in 192.0.2.0/25 (the router at .126), right in 192.0.2.128/25
    (the router at .129).
    """

    nat: bool = False
    drop_udp_500: bool = False

    LEFT_ADDRESS = "192.0.2.126"
    RIGHT_ADDRESS = "192.0.2.129"

    def nft_rules(self) -> str:
        rules = ["table inet ikelab {"]
        if self.drop_udp_500:
            rules += ["  chain forward {", "    type filter hook forward priority 0;",
                      "    udp dport 500 counter drop comment \"an administrator blocks IKE on port 500\"", "  }"]
        rules.append("}")
        if self.nat:
            rules += ["table ip ikelab-nat {", "  chain postrouting {", "    type nat hook postrouting priority 100;",
                      "    oifname \"veth-rr\" counter masquerade", "  }", "}"]
        return "\n".join(rules) + "\n"


class Topology:
    """Two namespaces joined by a veth pair; each has its outer address and a protected address.
    With a `router`, a third namespace sits in the middle and the two peers reach each other through it."""

    def __init__(self, sides: list[tuple[str, str, str]], log: CommandLog | None = None, router: Router | None = None) -> None:
        """`sides`: (name, outer address, protected address) for left and right."""
        self.rid = run_id()
        self.log = log or CommandLog()
        self.router = router
        self.sides = {
            name: Side(name, namespace_name(self.rid, name), f"veth-{name}", address, protected)
            for name, address, protected in sides
        }
        self.router_namespace = namespace_name(self.rid, "router")
        self._created: list[str] = []
        self.adopted = False  # see adopt()

    @classmethod
    def adopt(cls, sides: list[Side], log: CommandLog | None = None) -> "Topology":
        """Sides in namespaces that exist already (the one `ikelab peer` runs in): up() builds nothing
        and down() removes nothing; what a datapath adds there, it removes itself."""
        topology = cls([], log)
        topology.sides = {side.name: side for side in sides}
        topology.adopted = True
        return topology

    def up(self) -> None:
        """Build the topology; on any failure, remove what was made and raise LabError."""
        if self.adopted:
            return
        try:
            self._build()
        except BaseException:
            self.down()
            raise

    def _build(self) -> None:
        ip = shutil.which("ip")
        if ip is None:
            raise LabError("the `ip` command is missing: install iproute2 (apt-get install iproute2)")
        left, right = self.sides.values()
        for side in (left, right):
            self._add_namespace(side.namespace)
        prefix = 24
        if self.router is None:
            self.log.run(
                ["ip", "link", "add", left.interface, "netns", left.namespace, "type", "veth",
                 "peer", "name", right.interface, "netns", right.namespace]
            )
        else:
            self._build_router(left, right)
            prefix = 25
        for side in (left, right):
            n = ["ip", "-n", side.namespace]
            self.log.run(n + ["link", "set", "lo", "up"])
            self.log.run(n + ["addr", "add", f"{side.address}/{prefix}", "dev", side.interface])
            self.log.run(n + ["link", "set", side.interface, "up"])
            self.log.run(n + ["addr", "add", f"{side.protected}/32", "dev", "lo"])
            # No IPv6 on the link: nothing but the lesson's traffic on the wire.
            self.log.run(["ip", "netns", "exec", side.namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])

        if self.router is not None:
            # Each peer reaches the other half of 192.0.2.0/24 through the router.
            self.log.run(["ip", "-n", left.namespace, "route", "add", "192.0.2.128/25", "via", Router.LEFT_ADDRESS])
            self.log.run(["ip", "-n", right.namespace, "route", "add", "192.0.2.0/25", "via", Router.RIGHT_ADDRESS])

    def _add_namespace(self, namespace: str) -> None:
        # Recorded before it exists: a signal that lands right after `ip netns add` returns must
        # still find it in down() (deleting one that was never made is harmless).
        self._created.append(namespace)
        self.log.run(["ip", "netns", "add", namespace])

    def _build_router(self, left: Side, right: Side) -> None:
        router = self.router_namespace
        self._add_namespace(router)
        for side, inner, address in ((left, "veth-rl", Router.LEFT_ADDRESS), (right, "veth-rr", Router.RIGHT_ADDRESS)):
            self.log.run(["ip", "link", "add", side.interface, "netns", side.namespace, "type", "veth",
                          "peer", "name", inner, "netns", router])
            self.log.run(["ip", "-n", router, "addr", "add", f"{address}/25", "dev", inner])
            self.log.run(["ip", "-n", router, "link", "set", inner, "up"])
        self.log.run(["ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        if self.router.nat or self.router.drop_udp_500:
            if shutil.which("nft") is None:
                raise LabError("this lesson's router needs nftables: apt-get install nftables")
            rules = self.router.nft_rules()
            self.log.lines.append(f"ip netns exec {router} nft -f - <<EOF\n{rules}EOF")
            result = subprocess.run(["ip", "netns", "exec", router, "nft", "-f", "-"], input=rules, capture_output=True, text=True)
            if result.returncode != 0:
                raise LabError(f"nft in the router namespace failed: {one_line(result.stderr)}")

    def down(self) -> None:
        """Remove the namespaces (their veth ends and everything inside go with them)."""
        for namespace in reversed(self._created):
            kill_processes(namespace)
            self.log.run(["ip", "netns", "del", namespace], check=False)
        self._created.clear()

    def __enter__(self) -> "Topology":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()


def kill_processes(namespace: str) -> None:
    """Kill whatever still runs in a namespace (tcpdump, ping, ESP workers of a killed run)."""
    result = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in result.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass


def ikelab_namespaces() -> list[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


def owner_alive(name: str) -> bool:
    """Whether the process that made this namespace or run directory still runs."""
    match = re.match(rf"{re.escape(PREFIX)}(\d+)x", name)
    if not match:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RUN_DIRECTORY = re.compile(rf"{re.escape(PREFIX)}\d+x\d+-files-\w+")


def run_directories(root: Path | None = None) -> list[Path]:
    """The run directories (see run_directory) in `root`: ours by name, real directories (never
    a symbolic link), owned by this user."""
    root = Path(root or tempfile.gettempdir())
    found = []
    for path in root.iterdir():
        if _RUN_DIRECTORY.fullmatch(path.name) and not path.is_symlink() and path.is_dir() \
                and path.stat().st_uid == os.geteuid():
            found.append(path)
    return sorted(found)


def cleanup(*, include_live: bool = False, root: Path | None = None) -> list[str]:
    """Remove the namespaces (and what runs in them) and run directories of ikelab runs whose
    process is gone (of all of them with include_live). What was removed, by name."""
    removed = []
    for namespace in ikelab_namespaces():
        if include_live or not owner_alive(namespace):
            kill_processes(namespace)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
            removed.append(namespace)
    for directory in run_directories(root):
        if include_live or not owner_alive(directory.name):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(str(directory))
    return removed
