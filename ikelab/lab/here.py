"""`ikelab peer`'s datapath: the network namespace this process already runs in, when ikelab made it.

Nothing outside ikelab's own namespaces is ever touched, so the namespace is identified the way
`ip netns identify` does it (the inode of /proc/self/ns/net against those of /run/netns entries)
and only a name with ikelab's per-run prefix counts. Such a namespace is already set up (addresses,
links): it is adopted as a one-side Topology that creates and removes no namespace, and the same
datapath, capture and ping as the lab's run in it, removed again on every exit path.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Callable

from ikelab.lab import datapath as datapaths
from ikelab.lab.lab import Capture, PingResult, lab_ike_sockets, ping, start_datapath
from ikelab.lab.netns import NETNS_DIR, PREFIX, LabError, Side, Topology
from ikelab.lab.transports import UdpTransport
from ikelab.lessons import Lesson

# The names ikelab's own runs give their namespaces: ikelab-<pid>x<n>-<side> (netns.namespace_name).
RUN_NAMESPACE = re.compile(rf"{re.escape(PREFIX)}\d+x\d+-[\w-]+")


def current_namespace() -> tuple[str | None, str]:
    """The name of the ikelab namespace this process runs in, or None and why it is not one."""
    try:
        mine = os.stat("/proc/self/ns/net")
    except OSError as e:
        return None, f"cannot tell which network namespace this is (/proc/self/ns/net: {e.strerror})"
    names = []
    try:
        entries = sorted(os.listdir(NETNS_DIR))
    except OSError:
        entries = []
    for name in entries:
        try:
            st = os.stat(os.path.join(NETNS_DIR, name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            names.append(name)
    ours = [n for n in names if RUN_NAMESPACE.fullmatch(n)]
    if ours:
        return ours[0], f"this is ikelab's network namespace {ours[0]}"
    if names:
        return None, f"this network namespace ({', '.join(names)}) was not created by ikelab"
    return None, "this is not a network namespace ikelab created (it has no ikelab name in /run/netns)"


def interface_of(address: str) -> str | None:
    """The interface that carries `address` in this namespace, or None."""
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        words = line.split()  # "2: veth-left    inet 192.0.2.1/24 brd ... scope global veth-left" (or inet6)
        family = "inet" if "inet" in words else "inet6" if "inet6" in words else None
        if family and words[words.index(family) + 1].split("/")[0] == address:
            return words[1].split("@")[0]
    return None


def side_here(name: str, address: str, protected: str) -> tuple[Side | None, str]:
    """Our side in this namespace when a datapath may be installed here, else None and why not."""
    namespace, why = current_namespace()
    if namespace is None:
        return None, f"{why}, and ikelab changes nothing outside its own namespaces"
    interface = interface_of(address)
    if interface is None:
        return None, f"{address} is on no interface of {namespace}"
    if interface_of(protected) is None:
        return None, f"the protected address {protected} is on no interface of {namespace}"
    return Side(name, namespace, interface, address, protected), why


class PeerLab:
    """`with PeerLab(lesson, side, remote_protected) as lab:` gives our side's IKE transport, datapath,
    capture and ping in the namespace we run in; the `with` removes the worker, its TUN device and
    routes, and the capture, and leaves the namespace itself alone. Quacks like Lab for ping_stage."""

    def __init__(self, lesson: Lesson, side: Side, remote_protected: str, *, capture: Path | None = None,
                 prefer_datapath: str = "auto") -> None:
        self.lesson = lesson
        self.side = side
        self.remote_protected = remote_protected
        self.topology = Topology.adopt([side])
        self.capture_path = capture
        self.prefer_datapath = prefer_datapath
        self.transport: UdpTransport | None = None
        self.datapath = None
        self.capture: Capture | None = None

    @property
    def namespaces(self) -> dict[str, str]:
        return {self.side.name: self.side.namespace}

    @property
    def commands(self) -> list[str]:
        return self.topology.log.lines

    def __enter__(self) -> "PeerLab":
        try:
            side = self.side
            if self.capture_path is not None:
                self.capture = Capture(side.namespace, side.interface, self.capture_path)
            # Before the worker starts: its ESP-in-UDP socket joins the group of our 4500 socket.
            try:
                sockets = lab_ike_sockets(side.address)
            except OSError as e:
                raise LabError(f"cannot listen on {side.address} ports 500 and 4500 here: {e}") from None
            self.transport = UdpTransport({side.name: sockets})
            self.transport.name = "netns"
            self.datapath = start_datapath(self.topology, self.lesson, self.prefer_datapath, [side.name], self.capture is not None)
            if isinstance(self.datapath, datapaths.UserspaceEsp):
                self.datapath.ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Undo what __enter__ did, in reverse order; safe after a partial start and twice."""
        # One try per resource: a failure (or a second Ctrl-C) while stopping one must not leave
        # the next in place, which in a namespace we did not make would outlive the run.
        try:
            if self.capture is not None:
                self.capture.stop()
        finally:
            try:
                if self.datapath is not None:
                    self.datapath.stop()
                    self.datapath = None
            finally:
                if self.transport is not None:
                    self.transport.close()
                    self.transport = None

    def stop_capture(self) -> None:
        if self.capture is not None:
            self.capture.stop()

    def ping(self, count: int, on_line: Callable[[str], None] = lambda line: None) -> PingResult:
        """Real ping from our protected address to the other side's, through the tunnel."""
        return ping(self.side.namespace, self.side.protected, self.remote_protected, count, on_line, self.topology.log)
