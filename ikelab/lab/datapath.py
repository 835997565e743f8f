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
import time
from functools import lru_cache
from typing import Protocol

from ikelab.esp.sa import ChildSa
from ikelab.lab import xfrm
from ikelab.lab.sa_messages import esp_sa_to_dict
from ikelab.lab.netns import CommandLog, LabError, Side, Topology, _quote

TUN_NAME = "ikelab0"
TUN_MTU = 1400  # room for the outer IP header, ESP header, IV, padding and ICV on a 1500-byte link
CONTROL_TIMEOUT = 10.0


def command_text(args: list[str]) -> str:
    return " ".join(map(_known_quote, args))


# Every Child SA shows its `ip xfrm` commands, two dozen words each of which are mostly the same
# ("xfrm", "state", the addresses): their quoting is remembered rather than matched again.
_known_quote = lru_cache(maxsize=4096)(_quote)


class Datapath(Protocol):
    name: str
    reason: str  # why this backend was chosen

    def start(self) -> None: ...

    def install(self, side: str, child: ChildSa) -> list[str]: ...

    def remove(self, side: str, child: ChildSa) -> None: ...

    def settle(self) -> None: ...  # installs are done (or LabError says why not)

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

    def settle(self) -> None:
        pass  # `ip xfrm` has finished when install returns

    def remove(self, side: str, child: ChildSa) -> None:
        for args in xfrm.delete_commands(self.topology.sides[side].namespace, child):
            self.log.run(args, check=False)

    def counters(self, side: str) -> dict:
        s = self.topology.sides[side]
        out = subprocess.run(["ip", "-n", s.namespace, "-s", "xfrm", "state"], capture_output=True, text=True).stdout
        return {"raw": out}

    def stop(self) -> None:
        # A lab's states, policies and routes vanish with its namespaces; a namespace ikelab only
        # adopted (`ikelab peer` runs in it) keeps them, so they are removed one by one.
        if not getattr(self.topology, "adopted", False):
            return
        for side, children in self._installed.items():
            s = self.topology.sides[side]
            for child in children:
                self.remove(side, child)
                for remote in child.remote_ts:
                    self.log.run(["ip", "-n", s.namespace, "route", "del", remote, "dev", s.interface], check=False)
        self._installed.clear()


class _WorkerHandle:
    def __init__(self, side: Side, log: CommandLog, cpu: int | None = None, udp_gso: bool = True) -> None:
        self.side = side
        parent, child = socket.socketpair()
        self.control = parent
        # Under traffic each worker keeps to its own CPU (both on one halved the throughput here);
        # idle, both go back to CPU 0, which keeps a lone ping fast.
        cpu_args = ["--cpu", str(cpu), "--idle-cpu", "0"] if cpu is not None else []
        cpu_args += [] if udp_gso else ["--no-udp-gso"]
        args = ["ip", "netns", "exec", side.namespace, sys.executable, "-m", "ikelab.lab.esp_worker",
                "--control-fd", str(child.fileno()), "--tun", TUN_NAME, "--encap-address", side.address, *cpu_args]
        # Its own session: a Ctrl-C at the terminal goes to the foreground process group, and a worker
        # in it would die with a KeyboardInterrupt traceback; the lab stops its workers itself (and a
        # killed lab's worker reads EOF on the control socket and stops), `lab cleanup` finds it by namespace.
        self.process = subprocess.Popen(args, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, start_new_session=True)
        child.close()
        self._buffer = b""
        self._lock = threading.Lock()  # the live stage installs SAs while the ping reads counters
        self._unanswered = 0  # posted commands whose answers are still to be read (see post)
        self.refusal: str | None = None  # the first error a posted command got back
        self._stopping = False  # stop was sent (ask_to_stop)

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
            self._read_answers()
            try:
                self.control.sendall(json.dumps(command).encode() + b"\n")
            except OSError:
                return {"ok": False, "error": "the ESP worker is gone"}
            return self.reply()

    def post(self, **command) -> None:
        """Send a command without waiting for its answer, which `settle()` (or the next call) reads:
        an install then costs the handshake a write, not a round trip to a worker that was asleep."""
        with self._lock:
            try:
                self.control.sendall(json.dumps(command).encode() + b"\n")
            except OSError:
                self.refusal = self.refusal or "the ESP worker is gone"
                return
            self._unanswered += 1

    def settle(self) -> str | None:
        """Wait for the answers to posted commands; the first refusal among them, or None."""
        with self._lock:
            self._read_answers()
            refusal, self.refusal = self.refusal, None
            return refusal

    def _read_answers(self) -> None:
        while self._unanswered:
            self._unanswered -= 1
            answer = self.reply()
            if not answer.get("ok"):
                self.refusal = self.refusal or answer.get("error", "no answer")

    def ask_to_stop(self) -> None:
        """Send stop without waiting: close() then waits for the exit."""
        if self.process.poll() is None and not self._stopping:
            self.post(op="stop")
            self._stopping = True

    def close(self) -> None:
        if self.process.poll() is None:
            self.ask_to_stop()
            self._wait_for_eof(2.0)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.control.close()

    def _wait_for_eof(self, timeout: float) -> None:
        """Until the worker's end of the control socket closes, which it does as it exits: a
        blocking wait, where Popen.wait(timeout) polls with sleeps of up to 50 ms."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                ready, _, _ = select.select([self.control], [], [], remaining)
                if ready and not self.control.recv(1 << 16):
                    return
            except OSError:
                return


class UserspaceEsp:
    name = "userspace ESP (TUN)"

    def __init__(self, topology: Topology, reason: str, sides: list[str] | None = None) -> None:
        self.topology, self.reason = topology, reason
        self.sides = sides if sides is not None else list(topology.sides)  # the ikelab sides
        self.log = topology.log
        self.workers: dict[str, _WorkerHandle] = {}
        self._routed: set[tuple[str, str]] = set()
        # False while the lab captures the wire: a run sent with UDP GSO would show in the capture as
        # one large datagram (see udp_gso), not as the packets the peer receives.
        self.udp_gso = True
        self._ready: set[str] = set()  # sides whose worker answered and whose TUN device is up
        self._ahead: dict[str, list[str]] = {}  # route_ahead networks waiting for their TUN device

    def start(self, wait: bool = True) -> None:
        """Start every worker; with wait=False return at once, so that their start-ups (a Python
        each) overlap each other and whatever the caller does meanwhile (the CLI imports the IKE
        engines): `ready()` waits for them."""
        try:
            cpus = os.cpu_count() or 1
            for index, name in enumerate(self.sides):
                cpu = index % cpus if cpus > 1 else None
                self.workers[name] = _WorkerHandle(self.topology.sides[name], self.log, cpu, self.udp_gso)
        except BaseException:
            self.stop()
            raise
        if wait:
            self.ready()

    def ready(self) -> None:
        """Wait for the spawned workers, bring their TUN devices up and set the routes route_ahead
        asked for; nothing the second time."""
        try:
            for name in self.sides:
                if name in self._ready:
                    continue
                side = self.topology.sides[name]
                self.workers[name].wait_ready()
                self.log.lines.append(f"# {side.namespace}: ikelab's ESP worker opened TUN device {TUN_NAME} and a raw socket for protocol 50")
                self.log.run(["ip", "-n", side.namespace, "link", "set", TUN_NAME, "mtu", str(TUN_MTU), "up"])
                self._ready.add(name)
                self.route_ahead(name, self._ahead.pop(name, []))
        except BaseException:
            self.stop()
            raise

    def install(self, side: str, child: ChildSa) -> list[str]:
        """Hand the Child SA to the side's worker without waiting for its answer (`settle()` reads it,
        once the IKE response that follows has left). No ESP is lost for it: the command is in the
        worker's control socket before the response is sent, and the worker reads its control socket
        before the packets that arrived with it (esp_worker's poll order)."""
        s = self.topology.sides[side]
        self.ready()
        self.settle()
        self.workers[side].post(
            op="install",
            inbound=esp_sa_to_dict(child.inbound),
            outbound=esp_sa_to_dict(child.outbound),
            local_ts=list(child.local_ts),
            remote_ts=list(child.remote_ts),
        )
        done = []
        for remote in child.remote_ts:
            args = ["ip", "-n", s.namespace, "route", "replace", remote, "dev", TUN_NAME, "src", s.protected]
            if (side, remote) not in self._routed:
                self.log.run(args)
                self._routed.add((side, remote))
            done.append(command_text(args))
        return done

    def settle(self) -> None:
        """Read the workers' answers to the installs handed to them; LabError if one was refused."""
        for side, worker in self.workers.items():
            refusal = worker.settle()
            if refusal is not None:
                raise LabError(f"the ESP worker of {side} refused the Child SA: {refusal}")

    def route_ahead(self, side: str, networks: list[str]) -> None:
        """Routes for the networks a lesson expects, set before IKE runs: a subprocess less on the
        handshake's critical path. Without an SA the worker drops such packets, as a kernel policy would."""
        s = self.topology.sides[side]
        if side not in self._ready:  # the TUN device is not there yet: ready() sets them
            self._ahead.setdefault(side, []).extend(networks)
            return
        for network in networks:
            self.log.run(["ip", "-n", s.namespace, "route", "replace", network, "dev", TUN_NAME, "src", s.protected])
            self._routed.add((side, network))

    def remove(self, side: str, child: ChildSa) -> None:
        self.settle()
        self.workers[side].call(op="remove", inbound_spi=child.inbound.spi.hex(), outbound_spi=child.outbound.spi.hex())

    def counters(self, side: str) -> dict:
        if side not in self.workers:
            return {}  # a side ikelab does not run (strongSwan): its counters are its own
        self.ready()
        reply = self.workers[side].call(op="counters")
        return {k: reply[k] for k in ("inbound", "outbound", "dropped")} if reply.get("ok") else {}

    def stop(self) -> None:
        # Every worker is told first, then waited for: their exits (an interpreter's shutdown each) overlap.
        for worker in self.workers.values():
            worker.ask_to_stop()
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
