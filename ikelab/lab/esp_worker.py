"""The userspace ESP datapath of one namespace (strongSwan's kernel-libipsec approach).

Started with `ip netns exec NS python -m ikelab.lab.esp_worker --control-fd N`, so it lives in
its namespace (and `ikelab lab cleanup` finds it there). It opens a TUN device and a raw socket for
IP protocol 50, then loops:

  TUN -> match the destination against the outbound SAs' remote selectors -> ESP -> raw socket
  raw socket -> SPI -> inbound SA (anti-replay, ICV, decrypt) -> selector check -> TUN

The parent sends commands as JSON lines on the control socket: install, remove, counters, stop.
A separate process per namespace keeps both directions off the parent's GIL.

Where the time goes, and what is done about it (measured under iperf3 on these 2-core VMs):
- Writing a packet to a TUN device runs the kernel's whole receive path (IP, TCP, ACK, socket
  wake-up) inside our write. IFF_NAPI cut that about fourfold; IFF_VNET_HDR lets us write one
  64 KiB GSO packet for a run of in-order TCP segments (`TcpCoalescer`, GRO as a NIC does it), so
  that path runs once per batch instead of once per segment. Every segment still crossed the wire
  in its own ESP packet exactly as the sender's kernel made it, and the kernel verifies the merged
  TCP checksum over all of the data.
- Each wake-up drains every ready source in batches and hands a batch to the SA at once
  (`encapsulate_batch`, `decapsulate_batch`: local variables, OpenSSL called directly, one
  getrandom per 256 CBC IVs). The selector check compares integers, cached per address pair.
- Latency: on these VMs a process woken from sleep runs about ten times slower than a warm one
  (cold caches), so a ping's round trip is mostly the cold cost of its four hops through the
  workers. So the first packet of a wake-up is sent (or, unless it is TCP, written) before
  anything else is done; a lone packet takes the per-packet methods, whose code path is
  shorter; and whether more is queued is asked with poll(0), not with a read that would raise
  BlockingIOError (an exception is costly when cold). Measured in the workers during a ping (a
  machine also running other jobs): a lone packet's hop takes 100-350 us from poll's return, no
  page faults; one cold call into OpenSSL (HMAC, CBC or GCM of a small packet, 50 ms after the
  last) takes 45-80 us against 1-2.4 us warm, so encapsulating a lone ping takes ~95 us of it.
- ESP in UDP: a batch's equal-sized packets to one peer leave in one sendmsg with UDP GSO, and
  the UDP socket takes runs whole (UDP_GRO), so the kernel's UDP/IP/veth path runs once per run
  (udp_gso): about a third less worker CPU per packet under iperf3. Raw ESP has no equivalent.
- Raw ESP: a raw socket has no GSO, and every sendto ran the sending kernel's IP output and the
  receiving namespace's IP input (in our system call, as the veth delivers at once): about a third
  of the sending worker's time under iperf3 (perf). A batch now leaves in one sendmmsg and the
  rest of a wake-up's queue comes in with one recvmmsg (mmsg; the kernel's per-packet work stays,
  the system calls and Python's per-call costs go): across a veth pair 8.0 -> 6.7 us of CPU per
  packet sent and 5.4 -> 4.6 us per packet received (medians of 5 interleaved runs). Under iperf3
  about 56 packets per sendmmsg and 35 per recvmmsg; lone packets keep sendto/recv.
- With --cpu (and --idle-cpu), the worker keeps to a CPU of its own while traffic is heavy and
  shares one with its peer while it is light (CpuPolicy): the kernel otherwise tends to stack
  both workers on one CPU under load. It goes back after QUIET_MS without a packet: 10 ms made
  the receiving worker flap between the CPUs 20-70 times per 5 s of iperf3 on a busy machine
  (sched_setaffinity counted with perf), 30 ms once; iperf3 raw ESP aes128gcm16, medians of 6
  and 10 interleaved runs (30 and 50 ms): 173 -> 185 and 177 -> 193 Mbit/s, CPU per GB unchanged.
- Measured and dropped: TSO on the TUN device (TUN_F_CSUM | TUN_F_TSO4: reading 64 KiB
  super-packets and cutting them into segments here). One read then replaces ~42, but building
  each segment's headers and checksums costs about what a read did: 1.6 us a segment even with
  numpy summing all payloads of a super-packet in one call (0.4 us a segment; CPython's
  int.from_bytes(...) % 0xFFFF takes 3.6 us for 1448 bytes). iperf3 raw ESP, 6 interleaved pairs:
  505 vs 524 Mbit/s, median pair ratio 1.01, ping RTT 0.94 vs 0.77 ms. Also dropped:
  a process per direction (more wake-ups, no gain), lingering in a polling loop after light
  traffic (no gain in RTT here), larger batches and socket buffers, a noqueue qdisc on the TUN
  device (no difference). With the batches above: IP_HDRINCL on the raw socket (we build the
  outer header, the kernel skips ip_append_data: 7.5-8.8 vs 7.0-7.9 us per packet sent, within
  the noise, and the outer header would no longer be the kernel's); letting idle workers float
  instead of sharing CPU 0 (ping RTT medians over 5 interleaved runs within noise: 1.08 vs 1.01
  ms raw ESP, 1.08 vs 1.11 ms ESP-in-UDP).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

from ikelab.esp.ipv4 import NO_OFFLOAD, VNET_HDR_LEN, TcpCoalescer, ipv4_payload
from ikelab.crypto.cipher import CIPHERS
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.packet import EspError, InboundSa, OutboundSa
from ikelab.esp.sa import EspSa
from ikelab.lab.reuseport import join_group
from ikelab.lab.udp_gso import GRO_CMSG_SPACE, SegmentingSender, enable_gro, split
from ikelab.lab.sa_messages import esp_sa_from_dict

TUNSETIFF = 0x400454CA
# IFF_NAPI: packets we write go through NAPI and GRO instead of one netif_rx each; this cut the
# kernel's cost per written packet about fourfold under iperf3 here. IFF_VNET_HDR: every read
# and write starts with a virtio-net header, which lets us write GSO packets (no offloads are
# enabled for reads, so what we read is always a plain, complete IP packet).
IFF_TUN, IFF_NO_PI, IFF_NAPI, IFF_VNET_HDR = 0x0001, 0x1000, 0x0010, 0x4000
IPPROTO_ESP = 50
BATCH = 64  # packets read per source and wake-up before polling again
# A removed inbound SA still takes packets this long. After a rekey the peer's Delete travels on
# the IKE socket while its last ESP packets under the old SA may still be queued in its worker,
# so they can arrive after the Delete; strongSwan waits too (charon.delete_rekeyed_delay, 5 s).
INBOUND_GRACE = 2.0
READ_SIZE = 65535 + VNET_HDR_LEN
CACHE_LIMIT = 4096  # entries per route or policy cache before it starts afresh
BUSY_RATE = 2000  # packets per second from which a worker given --cpu keeps to it (iperf3: ~35000)
BUSY_WINDOW = 0.1  # seconds over which that rate is judged
# A worker on its --cpu that waits this long for a packet goes back to --idle-cpu. At 10 ms, iperf3
# on a busy machine left a worker without packets that long 20-70 times in 5 s, and each time it
# spent the next BUSY_WINDOW sharing a CPU with its peer. Shorter than the 50 ms between the
# bench's pings, so that a ping series still finds both workers on the shared CPU.
QUIET_MS = 30


def open_tun(name: str) -> tuple[int, bool]:
    """The TUN device's fd, and whether it speaks virtio-net headers (False on a kernel that
    refuses IFF_VNET_HDR: then every read and write is a plain IP packet and nothing is merged)."""
    for flags, vnet in ((IFF_TUN | IFF_NO_PI | IFF_NAPI | IFF_VNET_HDR, True), (IFF_TUN | IFF_NO_PI | IFF_NAPI, False)):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
            return fd, vnet
        except OSError:
            os.close(fd)
            if not vnet:
                raise
    raise AssertionError("unreachable")


class Selectors:
    """Traffic selectors as integer ranges, per IP version: membership without `ipaddress`."""

    def __init__(self, networks: list[str]) -> None:
        self.ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in networks:
            net = ipaddress.ip_network(text)
            self.ranges[net.version].append((int(net.network_address), int(net.broadcast_address)))

    def __contains__(self, address: bytes) -> bool:
        value = int.from_bytes(address, "big")
        return any(lo <= value <= hi for lo, hi in self.ranges[4 if len(address) == 4 else 6])


class Inbound:
    """An inbound SA with its policy (RFC 4301 §5.2): the remote selectors a decrypted packet's
    source must be in and the local ones its destination must be in, with the verdict cached per
    address pair (`verdicts`, keyed by the 8 address bytes of an IPv4 header)."""

    def __init__(self, sa: InboundSa, remote: Selectors, local: Selectors) -> None:
        self.sa, self.remote, self.local = sa, remote, local
        self.verdicts: dict[bytes, bool] = {}

    def allows(self, inner: bytes) -> bool:
        version = inner[0] >> 4
        if version == 4 and len(inner) >= 20:
            key, src, dst = inner[12:20], inner[12:16], inner[16:20]
        elif version == 6 and len(inner) >= 40:
            key, src, dst = inner[8:40], inner[8:24], inner[24:40]
        else:
            return False
        verdict = self.verdicts.get(key)
        if verdict is None:
            if len(self.verdicts) >= CACHE_LIMIT:
                self.verdicts.clear()
            verdict = self.verdicts[key] = src in self.remote and dst in self.local
        return verdict


class Worker:
    def __init__(self, tun: int, raw: socket.socket, control: socket.socket, vnet: bool = False,
                 udp: socket.socket | None = None, udp_gso: bool = True, batch_syscalls: bool = False) -> None:
        self.tun, self.raw, self.control = tun, raw, control
        # Batches on the raw socket go out with one sendmmsg and come in with one recvmmsg (mmsg);
        # None: one sendto or recv per packet.
        self.raw_sender = self.raw_receiver = None
        if batch_syscalls:
            from ikelab.lab import mmsg  # here: ctypes would add ~10 ms to the start-up the lab waits for

            if mmsg.available():
                self.raw_sender, self.raw_receiver = mmsg.BatchSender(raw), mmsg.BatchReceiver(raw)
        self.udp = udp  # ESP-in-UDP on port 4500 (RFC 3948), shared with IKE through SO_REUSEPORT
        # Runs of equal-sized ESP-in-UDP packets go out in one sendmsg each (udp_gso)
        self.udp_sender = SegmentingSender(udp, udp_gso) if udp is not None else None
        self.vnet = vnet
        self.outbound: list[tuple[Selectors, OutboundSa]] = []  # (remote selectors, SA)
        self.inbound: dict[bytes, Inbound] = {}  # SPI -> SA and policy
        self.route_cache: dict[bytes, tuple[OutboundSa, tuple[str, int]] | None] = {}
        self.dropped = {"no_sa": 0, "policy": 0, "unknown_spi": 0}
        # Removed inbound SAs, still accepted until their deadline (see INBOUND_GRACE): SPI -> (deadline, SA)
        self.retiring: dict[bytes, tuple[float, Inbound]] = {}
        self._buffer = b""
        # Per-source polls, to ask "anything more?" after the first packet of a wake-up without
        # the BlockingIOError a further read would raise (cheap when warm, slow when cold).
        self._tun_ready = select.poll()
        self._tun_ready.register(tun, select.POLLIN)
        self._raw_ready = select.poll()
        self._raw_ready.register(raw.fileno(), select.POLLIN)
        self._udp_ready = select.poll()
        if udp is not None:
            self._udp_ready.register(udp.fileno(), select.POLLIN)
        self.coalescer = TcpCoalescer(self._write_buffers) if vnet else None

    def _retiring_sa(self, spi: bytes) -> Inbound | None:
        """A removed inbound SA still within its grace period, or None (expired ones are forgotten)."""
        if not self.retiring:
            return None
        now = time.monotonic()
        for old in [s for s, (deadline, _) in self.retiring.items() if deadline < now]:
            del self.retiring[old]
        found = self.retiring.get(spi)
        return found[1] if found else None

    def _write_buffers(self, buffers: list) -> None:
        try:
            os.writev(self.tun, buffers)
        except OSError as e:
            if e.errno == errno.EINVAL and buffers[0] is not NO_OFFLOAD and self.coalescer.merge:
                self.coalescer.merge = False  # this kernel refuses GSO writes: no more merging

    def write_batch(self, packets: list[bytes]) -> None:
        if self.coalescer is not None:
            self.coalescer.write_batch(packets)
            return
        for packet in packets:
            try:
                os.write(self.tun, packet)
            except OSError:
                pass

    # ------------------------------------------------------------- commands

    def handle(self, command: dict) -> dict:
        op = command["op"]
        if op == "install":
            inbound = InboundSa(esp_sa_from_dict(command["inbound"]))
            outbound = OutboundSa(esp_sa_from_dict(command["outbound"]))
            local = Selectors(command["local_ts"])
            remote = Selectors(command["remote_ts"])
            self.outbound.append((remote, outbound))
            self.inbound[inbound.sa.spi] = Inbound(inbound, remote, local)
            self.route_cache.clear()
            return {"ok": True}
        if op == "remove":
            spi = bytes.fromhex(command["inbound_spi"])
            gone = self.inbound.pop(spi, None)
            if gone is not None:
                self.retiring[spi] = (time.monotonic() + INBOUND_GRACE, gone)
            self.outbound = [(n, sa) for n, sa in self.outbound if sa.sa.spi.hex() != command["outbound_spi"]]
            self.route_cache.clear()
            return {"ok": True}
        if op == "counters":
            merged, sender = self.coalescer, self.udp_sender
            return {"ok": True, "inbound": {s.hex(): vars(e.sa.counters) for s, e in self.inbound.items()},
                    "outbound": {sa.sa.spi.hex(): vars(sa.counters) for _, sa in self.outbound}, "dropped": self.dropped,
                    # GRO: packets written to the TUN device as one GSO packet, and the segments in them
                    "gro": {"packets": merged.merged_packets if merged else 0, "segments": merged.merged_segments if merged else 0},
                    # UDP GSO: sendmsg calls that carried a run of ESP-in-UDP packets, and the packets in them
                    "udp_gso": {"sends": sender.runs if sender else 0, "segments": sender.segments if sender else 0},
                    # sendmmsg: calls that sent a batch of raw ESP packets, and the packets in them
                    "raw_batches": {"sends": self.raw_sender.calls if self.raw_sender else 0,
                                    "packets": self.raw_sender.datagrams if self.raw_sender else 0}}
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

    def route(self, dst: bytes) -> tuple[OutboundSa, tuple[str, int]] | None:
        """(SA, outer destination) of the first outbound SA whose remote selectors hold `dst`
        (4 or 16 address bytes), cached per destination."""
        found = self.route_cache.get(dst, False)
        if found is False:
            if len(self.route_cache) >= CACHE_LIMIT:
                self.route_cache.clear()
            sa = next((sa for selectors, sa in self.outbound if dst in selectors), None)
            port = sa.sa.encap[1] if sa is not None and sa.sa.encap else 0  # 0: raw ESP, else UDP
            found = self.route_cache[dst] = None if sa is None else (sa, (sa.sa.dst, port))
        return found

    def from_tun(self) -> int:
        """Encrypt and send what the TUN device holds: the first packet at once (a ping waits on
        it), then, if more is queued, the rest in batches per SA. Returns the packets read."""
        read, tun, skip = os.read, self.tun, VNET_HDR_LEN if self.vnet else 0
        try:
            data = read(tun, READ_SIZE)
        except BlockingIOError:
            return 0
        # With virtio-net headers and no offloads enabled, the header is all zeros.
        self.send([data[skip:] if skip else data])
        if not self._tun_ready.poll(0):  # a poll, not a read that would raise when nothing is left
            return 1
        packets: list[bytes] = []
        append = packets.append
        while len(packets) < BATCH:
            try:
                data = read(tun, READ_SIZE)
            except BlockingIOError:
                break
            append(data[skip:] if skip else data)
        self.send(packets)
        return 1 + len(packets)

    def send(self, packets: list[bytes]) -> None:
        """Route each IP packet to its outbound SA, encrypt per SA and send the ESP packets."""
        route_cache, route = self.route_cache, self.route
        groups: dict[tuple, list[bytes]] = {}
        last_target = last_group = None
        for packet in packets:
            if len(packet) < 20:
                continue
            version = packet[0] >> 4
            if version == 4:
                dst = packet[16:20]
            elif version == 6 and len(packet) >= 40:
                dst = packet[24:40]
            else:
                continue
            target = route_cache.get(dst) or route(dst)
            if target is None:
                self.dropped["no_sa"] += 1
            elif target is last_target:
                last_group.append(packet)
            else:
                last_group = groups.get(target)
                if last_group is None:
                    last_group = groups[target] = []
                last_group.append(packet)
                last_target = target
        for (sa, address), group in groups.items():
            sendto = self.udp.sendto if address[1] and self.udp is not None else self.raw.sendto
            if len(group) == 1:  # a lone packet (ping): the per-packet path is leaner
                try:
                    esps: list[bytes] = [sa.encapsulate(group[0])]
                except EspError:
                    continue
            else:
                esps = sa.encapsulate_batch(group)
            if address[1] and self.udp_sender is not None:
                self.udp_sender.send(esps, address)
                continue
            if not address[1] and len(esps) > 1 and self.raw_sender is not None:
                try:
                    self.raw_sender.send(esps, address)  # one system call; a refused packet is dropped
                except OSError:
                    pass
                continue
            for esp in esps:
                try:
                    sendto(esp, address)
                except OSError:
                    pass  # e.g. ENOBUFS: dropped, as a full NIC queue would

    def from_wire(self) -> int:
        """Decrypt what the raw socket holds and write it to the TUN device. The first packet
        goes at once unless it is TCP (a ping waits on it); TCP segments are gathered with what
        else is queued, so that runs of them are written merged (GRO). Returns the datagrams read."""
        recv, more = self.raw.recv, self._raw_ready.poll
        try:
            datagram = recv(65535)
        except BlockingIOError:
            return 0
        inner = self.open([datagram])
        if inner and not (inner[0][0] == 0x45 and inner[0][9] == 6):
            self.write_batch(inner)
            inner = []
        count = 1
        # A poll, not a read that would raise when nothing is left (a ping's path), then the rest
        # of the queue in one recvmmsg, or one recv each
        if self.raw_receiver is not None and more(0):
            esps = self.raw_receiver.receive(BATCH, ipv4_payloads=True)
            inner += self.open(esps, ip=False)
            count += len(esps)
        elif self.raw_receiver is None and more(0):
            datagrams: list[bytes] = []
            append = datagrams.append
            while len(datagrams) < BATCH:
                try:
                    append(recv(65535))
                except BlockingIOError:
                    break
            inner += self.open(datagrams)
            count += len(datagrams)
        if inner:
            self.write_batch(inner)
        return count

    def from_udp(self) -> int:
        """ESP that arrived inside UDP on port 4500: as from the raw socket (first packet first),
        minus the IPv4 header, which the kernel's UDP socket took off. A recvmsg returns a run the
        kernel kept whole (UDP_GRO) or one datagram."""
        recvmsg = self.udp.recvmsg
        try:
            data, ancillary, _, _ = recvmsg(65535, GRO_CMSG_SPACE)
        except BlockingIOError:
            return 0
        datagrams = split(data, ancillary)
        count = len(datagrams)
        inner = self.open(datagrams, ip=False)
        if inner and not (inner[0][0] == 0x45 and inner[0][9] == 6):  # not TCP: a ping waits on it
            self.write_batch(inner)
            inner = []
        if self._udp_ready.poll(0):  # a poll, not a read that would raise when nothing is left
            datagrams = []
            while len(datagrams) < BATCH:
                try:
                    data, ancillary, _, _ = recvmsg(65535, GRO_CMSG_SPACE)
                except BlockingIOError:
                    break
                datagrams += split(data, ancillary)
            inner += self.open(datagrams, ip=False)
            count += len(datagrams)
        if inner:
            self.write_batch(inner)
        return count

    def open(self, datagrams: list[bytes], ip: bool = True) -> list[bytes]:
        """The inner packets of the ESP datagrams that their SA accepts (replay window, ICV,
        padding: counted there) and whose addresses its traffic selectors allow, in order per SA."""
        inbound, dropped = self.inbound, self.dropped
        groups: dict[Inbound, list[bytes]] = {}
        last_entry = last_group = None
        for datagram in datagrams:
            try:
                esp = ipv4_payload(datagram) if ip else datagram
            except EspError:
                continue
            if len(esp) < 8:
                continue
            entry = inbound.get(esp[:4]) or self._retiring_sa(esp[:4])
            if entry is None:
                dropped["unknown_spi"] += 1
            elif entry is last_entry:
                last_group.append(esp)
            else:
                last_group = groups.get(entry)
                if last_group is None:
                    last_group = groups[entry] = []
                last_group.append(esp)
                last_entry = entry
        accepted: list[bytes] = []
        append = accepted.append
        for entry, group in groups.items():
            verdicts, allows = entry.verdicts, entry.allows
            if len(group) == 1:  # a lone packet (ping): the per-packet path is leaner
                try:
                    inners: list[bytes] = [entry.sa.decapsulate(group[0])]
                except EspError:  # counted by the SA: replay, ICV, malformed
                    continue
            else:
                inners = entry.sa.decapsulate_batch(group)  # counts as decapsulate does
            for inner in inners:
                if not inner:
                    continue  # a dummy packet (RFC 4303 §2.6)
                # Authentic, but inside the agreed traffic selectors? (cached per IPv4 pair)
                verdict = verdicts.get(inner[12:20]) if inner[0] == 0x45 else None
                if verdict is None:
                    verdict = allows(inner)
                if verdict:
                    append(inner)
                else:
                    dropped["policy"] += 1
        return accepted

    def loop(self, cpus: CpuPolicy | None = None) -> None:
        """Serve the TUN device, the raw socket and the control socket until told to stop."""
        poller = select.poll()
        # The control socket first: poll() lists ready descriptors in this order, so an install that
        # arrived with (or before) the first packets of its SA is handled before them (see
        # UserspaceEsp.install, which does not wait for the answer).
        for fd in (self.control.fileno(), self.tun, self.raw.fileno()):
            poller.register(fd, select.POLLIN)
        udp_fd = self.udp.fileno() if self.udp is not None else -1
        if self.udp is not None:
            poller.register(udp_fd, select.POLLIN)
        raw_fd, control_fd, tun = self.raw.fileno(), self.control.fileno(), self.tun
        from_tun, from_wire, poll = self.from_tun, self.from_wire, poller.poll
        if cpus is None:
            while True:
                for fd, _ in poll():
                    if fd == tun:
                        from_tun()
                    elif fd == raw_fd:
                        from_wire()
                    elif fd == udp_fd:
                        self.from_udp()
                    elif fd == control_fd and not self.read_control():
                        return
        monotonic = time.monotonic
        while True:
            events = poll(cpus.timeout)
            handled = 0
            for fd, _ in events:
                if fd == tun:
                    handled += from_tun()
                elif fd == raw_fd:
                    handled += from_wire()
                elif fd == udp_fd:
                    handled += self.from_udp()
                elif fd == control_fd and not self.read_control():
                    return
            cpus.update(not events, handled, monotonic())


class CpuPolicy:
    """Which CPU a worker keeps to: `cpu` while traffic is heavy, `idle_cpu` (or any CPU) while
    it is light.

    The two workers of a lab hand every packet to each other, and the kernel's wake-affine
    scheduling tends to stack them on one CPU, where they take turns while the other idles: on
    different CPUs they run in parallel (iperf3 here: +25% median over interleaved runs). A lone
    ping is the other way round: on the CPU of the worker that woke it, the next hop runs at once
    with warm caches, while a sleeping CPU must first be woken (an IPI, slow in a VM). So under
    heavy traffic left and right get different CPUs, and under light traffic the same one."""

    def __init__(self, cpu: int, idle_cpu: int | None = None, set_cpus: Callable[[set[int]], bool] | None = None,
                 allowed: list[int] | None = None) -> None:
        everywhere = sorted(allowed if allowed is not None else os.sched_getaffinity(0))
        self.busy = {everywhere[cpu % len(everywhere)]}
        self.quiet = {everywhere[idle_cpu % len(everywhere)]} if idle_cpu is not None else set(everywhere)
        self._set = set_cpus or _set_cpus
        self.enabled = self._set(self.quiet)  # if the system will not have it, leave it alone
        self.on_busy_cpu = False
        self._handled, self._since = 0, time.monotonic()

    @property
    def timeout(self) -> int | None:
        """How long to poll: on the busy CPU, long enough to tell that traffic has stopped."""
        return QUIET_MS if self.on_busy_cpu else None

    def update(self, timed_out: bool, handled: int, now: float) -> None:
        """After each wake-up: whether the poll timed out, how many packets it moved, and when."""
        if not self.enabled:
            return
        if timed_out and self.on_busy_cpu:  # nothing for a while: the quiet CPU, before a ping
            self._set(self.quiet)
            self.on_busy_cpu = False
        self._handled += handled
        if now - self._since >= BUSY_WINDOW:
            if not self.on_busy_cpu and self._handled >= BUSY_RATE * (now - self._since):
                self.on_busy_cpu = self._set(self.busy)
            self._handled, self._since = 0, now


def warm_up() -> None:
    """Build and drop an SA pair of every ESP cipher before reporting ready. OpenSSL's first context
    of an algorithm costs about a millisecond (a later one a few microseconds); without this, that
    cost fell on the first install, between an IKE_AUTH request and its response."""
    for cipher in CIPHERS.values():
        integrity = None if cipher.is_aead else INTEGRITY[12]  # AUTH_HMAC_SHA2_256_128
        for mac in (integrity,) if integrity is None else INTEGRITY.values():
            sa = EspSa(b"\0\0\0\1", "192.0.2.1", "192.0.2.2", cipher, mac, bytes(cipher.key_length),
                       bytes(mac.key_length) if mac else b"")
            InboundSa(sa), OutboundSa(sa)
    Selectors(["192.0.2.0/24", "2001:db8::/32"])


def _set_cpus(cpus: set[int]) -> bool:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--tun", default="ikelab0")
    parser.add_argument("--cpu", type=int, help="the CPU to keep to under heavy traffic (see CpuPolicy)")
    parser.add_argument("--idle-cpu", type=int, help="the CPU to keep to under light traffic (default: any)")
    parser.add_argument("--encap-address", help="join UDP 4500 on this address for ESP-in-UDP (the lab bound IKE there first)")
    parser.add_argument("--no-udp-gso", action="store_true", help="one sendto per ESP-in-UDP packet (the lab captures the wire)")
    args = parser.parse_args()
    # No PR_SET_PDEATHSIG: it follows the *thread* that started us, not the process. When the
    # process that runs the lab dies, even by SIGKILL, the control socket reads EOF and we stop.
    control = socket.socket(fileno=args.control_fd)
    try:
        tun, vnet = open_tun(args.tun)
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
        raw.setblocking(False)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp = None
        if args.encap_address:
            udp = join_group(args.encap_address)
            udp.setblocking(False)
            enable_gro(udp)  # runs of datagrams arrive whole; without it, one by one
    except OSError as e:
        control.sendall(json.dumps({"ok": False, "error": f"cannot open the TUN device or raw ESP socket: {e}"}).encode() + b"\n")
        return 1
    warm_up()
    control.sendall(json.dumps({"ok": True, "ready": args.tun}).encode() + b"\n")
    try:
        cpus = CpuPolicy(args.cpu, args.idle_cpu) if args.cpu is not None else None
        Worker(tun, raw, control, vnet, udp, udp_gso=not args.no_udp_gso, batch_syscalls=True).loop(cpus)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
