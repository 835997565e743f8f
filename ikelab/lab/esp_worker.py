"""The userspace ESP datapath of one namespace (strongSwan's kernel-libipsec approach).

Started with `ip netns exec NS python -m ikelab.lab.esp_worker --control-fd N`, so it lives in
its namespace (and `ikelab lab cleanup` finds it there). It opens a TUN device and a raw socket for
IP protocol 50, then loops:

  TUN -> match the destination against the outbound SAs' remote selectors -> ESP -> raw socket
  raw socket -> SPI -> inbound SA (anti-replay, ICV, decrypt) -> selector check -> TUN

The parent sends commands as JSON lines on the control socket: install, remove, counters, stop.
A separate process per namespace keeps both directions off the parent's GIL.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys

from ikelab.esp.ipv4 import strip_ipv4_header
from ikelab.esp.packet import EspError, InboundSa, OutboundSa
from ikelab.lab.sa_messages import esp_sa_from_dict

TUNSETIFF = 0x400454CA
# IFF_NAPI: packets we write go through NAPI and GRO instead of one netif_rx each; this cut the
# kernel's cost per written packet about fourfold under iperf3 here.
IFF_TUN, IFF_NO_PI, IFF_NAPI = 0x0001, 0x1000, 0x0010
IPPROTO_ESP = 50
BATCH = 64  # packets handled per wake-up before polling again
PR_SET_PDEATHSIG = 1


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI | IFF_NAPI))
    return fd


class Worker:
    def __init__(self, tun: int, raw: socket.socket, control: socket.socket) -> None:
        self.tun, self.raw, self.control = tun, raw, control
        self.outbound: list[tuple[list, OutboundSa]] = []  # (remote networks, SA)
        self.inbound: dict[bytes, tuple[InboundSa, list, list]] = {}  # spi -> (SA, remote nets, local nets)
        self.route_cache: dict[bytes, OutboundSa | None] = {}
        self.dropped = {"no_sa": 0, "policy": 0, "unknown_spi": 0}
        self._buffer = b""

    # ------------------------------------------------------------- commands

    def handle(self, command: dict) -> dict:
        op = command["op"]
        if op == "install":
            inbound = InboundSa(esp_sa_from_dict(command["inbound"]))
            outbound = OutboundSa(esp_sa_from_dict(command["outbound"]))
            local = [ipaddress.ip_network(n) for n in command["local_ts"]]
            remote = [ipaddress.ip_network(n) for n in command["remote_ts"]]
            self.outbound.append((remote, outbound))
            self.inbound[inbound.sa.spi] = (inbound, remote, local)
            self.route_cache.clear()
            return {"ok": True}
        if op == "remove":
            self.inbound.pop(bytes.fromhex(command["inbound_spi"]), None)
            self.outbound = [(n, sa) for n, sa in self.outbound if sa.sa.spi.hex() != command["outbound_spi"]]
            self.route_cache.clear()
            return {"ok": True}
        if op == "counters":
            return {"ok": True, "inbound": {s.hex(): vars(sa.counters) for s, (sa, _, _) in self.inbound.items()},
                    "outbound": {sa.sa.spi.hex(): vars(sa.counters) for _, sa in self.outbound}, "dropped": self.dropped}
        if op == "stop":
            return {"ok": True, "stop": True}
        return {"ok": False, "error": f"unknown command {op!r}"}

    def read_control(self) -> bool:
        """Handle every complete command line; False when the parent is gone or said stop."""
        chunk = self.control.recv(1 << 20)
        if not chunk:
            return False
        self._buffer += chunk
        keep_going = True
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                reply = self.handle(json.loads(line))
            except (KeyError, ValueError) as e:
                reply = {"ok": False, "error": str(e)}
            self.control.sendall(json.dumps(reply).encode() + b"\n")
            keep_going = keep_going and not reply.get("stop")
        return keep_going

    # ------------------------------------------------------------- packets

    def route(self, dst: bytes) -> OutboundSa | None:
        if dst not in self.route_cache:
            address = ipaddress.ip_address(dst)
            self.route_cache[dst] = next((sa for nets, sa in self.outbound if any(address in n for n in nets)), None)
        return self.route_cache[dst]

    def from_tun(self) -> None:
        for _ in range(BATCH):
            try:
                packet = os.read(self.tun, 65535)
            except BlockingIOError:
                return
            if len(packet) < 20 or packet[0] >> 4 != 4:
                continue
            sa = self.route(packet[16:20])
            if sa is None:
                self.dropped["no_sa"] += 1
                continue
            try:
                self.raw.sendto(sa.encapsulate(packet), (sa.sa.dst, 0))
            except (EspError, OSError):
                continue

    def from_wire(self) -> None:
        for _ in range(BATCH):
            try:
                datagram = self.raw.recv(65535)
            except BlockingIOError:
                return
            try:
                _, _, _, esp = strip_ipv4_header(datagram)
            except EspError:
                continue
            entry = self.inbound.get(esp[:4])
            if entry is None:
                self.dropped["unknown_spi"] += 1
                continue
            sa, remote, local = entry
            try:
                inner = sa.decapsulate(esp)
            except EspError:
                continue  # counted by the SA: replay, integrity, malformed
            if len(inner) < 20:
                continue
            src, dst = ipaddress.ip_address(inner[12:16]), ipaddress.ip_address(inner[16:20])
            if not (any(src in n for n in remote) and any(dst in n for n in local)):
                self.dropped["policy"] += 1  # decrypted fine but outside the agreed traffic selectors
                continue
            os.write(self.tun, inner)

    def loop(self) -> None:
        poller = select.poll()
        for fd in (self.tun, self.raw.fileno(), self.control.fileno()):
            poller.register(fd, select.POLLIN)
        raw_fd, control_fd = self.raw.fileno(), self.control.fileno()
        while True:
            for fd, _ in poller.poll():
                if fd == self.tun:
                    self.from_tun()
                elif fd == raw_fd:
                    self.from_wire()
                elif fd == control_fd and not self.read_control():
                    return


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--tun", default="ikelab0")
    args = parser.parse_args()
    # Die with the parent, even if it is killed with SIGKILL.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    control = socket.socket(fileno=args.control_fd)
    try:
        tun = open_tun(args.tun)
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
        raw.setblocking(False)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError as e:
        control.sendall(json.dumps({"ok": False, "error": f"cannot open the TUN device or raw ESP socket: {e}"}).encode() + b"\n")
        return 1
    control.sendall(json.dumps({"ok": True, "ready": args.tun}).encode() + b"\n")
    try:
        Worker(tun, raw, control).loop()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
