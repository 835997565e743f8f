"""Datapaths: what turns negotiated Child SAs into ESP on the wire. Two backends, one interface.

- KernelXfrm installs states and policies with `ip xfrm` when the kernel has ESP;
- UserspaceEsp runs one esp_worker process per namespace with a TUN device and routes for the
  traffic selectors through it, the way strongSwan's kernel-libipsec does.

`choose()` probes which one this kernel supports and says why.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from typing import Protocol

from ikelab.esp.sa import ChildSa
from ikelab.lab import xfrm
from ikelab.lab.sa_messages import esp_sa_to_dict
from ikelab.lab.netns import CommandLog, LabError, Side, Topology, _quote

TUN_NAME = "ikelab0"
TUN_MTU = 1400  # room for the outer IP header, ESP header, IV, padding and ICV on a 1500-byte link
CONTROL_TIMEOUT = 10.0


def command_text(args: list[str]) -> str:
    return " ".join(_quote(a) for a in args)


class Datapath(Protocol):
    name: str
    reason: str  # why this backend was chosen

    def start(self) -> None: ...

    def install(self, side: str, child: ChildSa) -> list[str]: ...

    def remove(self, side: str, child: ChildSa) -> None: ...

    def counters(self, side: str) -> dict: ...

    def stop(self) -> None: ...


class KernelXfrm:
    name = "kernel XFRM"

    def __init__(self, topology: Topology, reason: str) -> None:
        self.topology, self.reason = topology, reason
        self.log: CommandLog = topology.log
        self._installed: dict[str, list[ChildSa]] = {}

    def start(self) -> None:
        pass

    def install(self, side: str, child: ChildSa) -> list[str]:
        s = self.topology.sides[side]
        done = []
        for args in xfrm.child_sa_commands(s.namespace, child):
            self.log.run(args)
            done.append(command_text(args))
        for remote in child.remote_ts:
            args = ["ip", "-n", s.namespace, "route", "replace", remote, "dev", s.interface, "src", s.protected]
            self.log.run(args)
            done.append(command_text(args))
        self._installed.setdefault(side, []).append(child)
        return done

    def remove(self, side: str, child: ChildSa) -> None:
        for args in xfrm.delete_commands(self.topology.sides[side].namespace, child):
            self.log.run(args, check=False)

    def counters(self, side: str) -> dict:
        s = self.topology.sides[side]
        out = subprocess.run(["ip", "-n", s.namespace, "-s", "xfrm", "state"], capture_output=True, text=True).stdout
        return {"raw": out}

    def stop(self) -> None:
        pass  # the states and policies vanish with the namespaces


class _WorkerHandle:
    def __init__(self, side: Side, log: CommandLog, cpu: int | None = None) -> None:
        self.side = side
        parent, child = socket.socketpair()
        self.control = parent
        # Under traffic each worker keeps to its own CPU (both on one halved the throughput here);
        # idle, both go back to CPU 0, which keeps a lone ping fast.
        cpu_args = ["--cpu", str(cpu), "--idle-cpu", "0"] if cpu is not None else []
        args = ["ip", "netns", "exec", side.namespace, sys.executable, "-m", "ikelab.lab.esp_worker",
                "--control-fd", str(child.fileno()), "--tun", TUN_NAME, "--encap-address", side.address, *cpu_args]
        self.process = subprocess.Popen(args, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        child.close()
        self._buffer = b""
        self._lock = threading.Lock()  # the live stage installs SAs while the ping reads counters

    def wait_ready(self) -> None:
        ready = self.reply()
        if not ready.get("ok"):
            self.close()
            raise LabError(f"the ESP datapath in {self.side.namespace} did not start: {ready.get('error', 'no answer')}")

    def reply(self) -> dict:
        while b"\n" not in self._buffer:
            try:
                ready, _, _ = select.select([self.control], [], [], CONTROL_TIMEOUT)
                chunk = self.control.recv(1 << 20) if ready else b""
            except OSError:  # the worker is gone (reset, closed): say so, never raise into the lab
                chunk = b""
            if not chunk:
                return {"ok": False, "error": "the ESP worker stopped answering"}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, **command) -> dict:
        with self._lock:
            try:
                self.control.sendall(json.dumps(command).encode() + b"\n")
            except OSError:
                return {"ok": False, "error": "the ESP worker is gone"}
            return self.reply()

    def close(self) -> None:
        if self.process.poll() is None:
            self.call(op="stop")
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.control.close()


class UserspaceEsp:
    name = "userspace ESP (TUN)"

    def __init__(self, topology: Topology, reason: str, sides: list[str] | None = None) -> None:
        self.topology, self.reason = topology, reason
        self.sides = sides if sides is not None else list(topology.sides)  # the ikelab sides
        self.log = topology.log
        self.workers: dict[str, _WorkerHandle] = {}
        self._routed: set[tuple[str, str]] = set()

    def start(self) -> None:
        try:
            # Start every worker first, then wait: their start-ups (a Python each) overlap.
            cpus = os.cpu_count() or 1
            for index, name in enumerate(self.sides):
                cpu = index % cpus if cpus > 1 else None
                self.workers[name] = _WorkerHandle(self.topology.sides[name], self.log, cpu)
            for name in self.sides:
                side = self.topology.sides[name]
                self.workers[name].wait_ready()
                self.log.lines.append(f"# {side.namespace}: ikelab's ESP worker opened TUN device {TUN_NAME} and a raw socket for protocol 50")
                self.log.run(["ip", "-n", side.namespace, "link", "set", TUN_NAME, "mtu", str(TUN_MTU), "up"])
        except BaseException:
            self.stop()
            raise

    def install(self, side: str, child: ChildSa) -> list[str]:
        s = self.topology.sides[side]
        reply = self.workers[side].call(
            op="install",
            inbound=esp_sa_to_dict(child.inbound),
            outbound=esp_sa_to_dict(child.outbound),
            local_ts=list(child.local_ts),
            remote_ts=list(child.remote_ts),
        )
        if not reply.get("ok"):
            raise LabError(f"the ESP worker of {side} refused the Child SA: {reply.get('error')}")
        done = []
        for remote in child.remote_ts:
            args = ["ip", "-n", s.namespace, "route", "replace", remote, "dev", TUN_NAME, "src", s.protected]
            if (side, remote) not in self._routed:
                self.log.run(args)
                self._routed.add((side, remote))
            done.append(command_text(args))
        return done

    def route_ahead(self, side: str, networks: list[str]) -> None:
        """Routes for the networks a lesson expects, set before IKE runs: a subprocess less on the
        handshake's critical path. Without an SA the worker drops such packets, as a kernel policy would."""
        s = self.topology.sides[side]
        for network in networks:
            self.log.run(["ip", "-n", s.namespace, "route", "replace", network, "dev", TUN_NAME, "src", s.protected])
            self._routed.add((side, network))

    def remove(self, side: str, child: ChildSa) -> None:
        self.workers[side].call(op="remove", inbound_spi=child.inbound.spi.hex(), outbound_spi=child.outbound.spi.hex())

    def counters(self, side: str) -> dict:
        if side not in self.workers:
            return {}  # a side ikelab does not run (strongSwan): its counters are its own
        reply = self.workers[side].call(op="counters")
        return {k: reply[k] for k in ("inbound", "outbound", "dropped")} if reply.get("ok") else {}

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def choose(topology: Topology, sample: ChildSa | None, prefer: str = "auto", sides: list[str] | None = None) -> Datapath:
    """Kernel XFRM when a probe in the run's own namespace shows ESP works, else userspace."""
    if prefer == "userspace":
        return UserspaceEsp(topology, "chosen with --datapath userspace", sides)
    namespace = next(iter(topology.sides.values())).namespace
    ok, why = (False, "no Child SA to probe with") if sample is None else xfrm.kernel_supports(namespace, sample)
    if ok:
        return KernelXfrm(topology, why)
    if prefer == "kernel":
        raise LabError(f"--datapath kernel was asked for, but {why}")
    return UserspaceEsp(topology, f"{why}: using the userspace datapath instead", sides)
