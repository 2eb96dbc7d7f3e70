"""The link emulator: IP packets from the hosts' TUN devices, across the scenario's links.

One process (its own interpreter, so the broker's and clients' Python work never delays a
packet, nor the other way round) holds every host's TUN fd. A packet a host's kernel sends
is read from that host's TUN, its destination found by IPv4 address, and it is carried hop
by hop along the scenario's path between the two hosts, each hop *the same*
``mqttsim.netmodel.link.LinkDirection`` the simulator uses (bandwidth with serialization,
drop-tail queue, latency, jitter, Bernoulli and Gilbert-Elliott loss, outages), built by
the same ``Network`` from the scenario and seed. A hop is asked about a packet at the
moment the packet reaches it (the previous hop's arrival time), in time order across all
packets, so routers' queues are shared as in the simulator. What survives the last hop is
written to the destination's TUN at its arrival time; the kernel there takes it as if it
came off a wire.

A middlebox on a route (``[middlebox]``: a NAT, firewall or load balancer with an idle
timeout) is the world's ``MiddleboxHop`` in the path, asked with the real packet's 5-tuple
(``mqttsim.world.middlebox.FlowTable``, the simulator's own rule): a client's SYN opens a
flow, any packet of it refreshes it, and once it has idled out its packets are dropped or,
with ``on_idle = "reset"``, answered with a forged RST to each host (``packets.resets_for``)
sent on from the middlebox's place on the path.

Times are scenario seconds: ``time.monotonic() - origin`` (CLOCK_MONOTONIC is one clock
for every process on the machine, so the driver and the emulator agree on scenario time).
Every packet is logged (sent, arrival or drop with the hop, its bytes) and handed back at
the end, with each link direction's counters and how late writes were.

Run as ``python -m mqttsim.backends.kernel.emulator``: the configuration comes pickled on
stdin, the TUN fds are inherited; it prints ``ready``, reads the scenario origin (8 bytes),
then forwards until stdin closes (or SIGTERM), and writes its log to the configured file.
"""

from __future__ import annotations

import heapq
import itertools
import os
import pickle
import select
import signal
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

READ_BURST = 64  # packets read from one TUN before looking at the clock again
MAX_WAIT = 0.05  # seconds: the longest select, so stop requests are seen promptly
SNAPLEN_NO_CAPTURE = 60  # IPv4 + TCP headers (with options) kept when payloads are not


@dataclass
class EmulatorConfig:
    """What the emulator needs: hosts (scenario name, address, TUN fd) and the network."""

    hosts: list[tuple[str, str, int]]
    scenario: Any
    seed: int
    log_path: str
    capture: bool = True


@dataclass
class EmulatorLog:
    """What the emulator hands back: one row per packet (``PACKET_FIELDS``), the links'
    rows as ``Network.link_rows`` makes them, and timing statistics."""

    packets: list[tuple] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


PACKET_FIELDS = ("t", "src", "dst", "size", "t_arrival", "dropped", "hop", "data")


class Emulator:
    """Forwards packets between TUN fds through the scenario's links."""

    def __init__(self, config: EmulatorConfig, origin: float):
        from ...world.network import MiddleboxHop, Network
        self._middlebox_hop = MiddleboxHop
        self.config, self.origin = config, origin
        self.network = Network(config.scenario, None, config.seed)
        self.names = [name for name, _, _ in config.hosts]
        self.fds = [fd for _, _, fd in config.hosts]
        self.host_of_address = {bytes(map(int, address.split("."))): index
                                for index, (_, address, _) in enumerate(config.hosts)}
        self._paths: dict[tuple[int, int], list] = {}
        self._heap: list[tuple] = []
        self._order = itertools.count()
        self.log = EmulatorLog()
        self.unroutable = 0
        self.late_max = 0.0
        self.late_sum = 0.0
        self.written = 0
        self.write_errors = 0

    def path(self, src: int, dst: int) -> list:
        """The hops (LinkDirections) from host ``src`` to host ``dst``: the network's own
        paths between a client and the broker (through routers, sharing their queues); two
        clients talk through the broker's side of the network."""
        key = (src, dst)
        found = self._paths.get(key)
        if found is None:
            broker = self.network.broker
            a, b = self.names[src], self.names[dst]
            # open_paths: the links, and the host's middlebox if it is behind one (its
            # flows are told apart by their 5-tuples here, not by the path)
            if b == broker:
                found = self.network.open_paths(a)[0]
            elif a == broker:
                found = self.network.open_paths(b)[1]
            else:
                found = self.network.open_paths(a)[0] + self.network.open_paths(b)[1]
            self._paths[key] = found
        return found

    def now(self) -> float:
        return time.monotonic() - self.origin

    # -- the loop ----------------------------------------------------------------------------
    def run(self, controls: tuple[int, ...], deadline: float | None = None) -> None:
        """Forward until a ``controls`` fd has data or EOF, or ``deadline`` (scenario
        seconds) passes."""
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, select.POLLIN)
        for fd in controls:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        index_of_fd = {fd: i for i, fd in enumerate(self.fds)}
        while True:
            now = self.now()
            if deadline is not None and now >= deadline:
                return
            self._due(now)
            heap = self._heap
            wait = MAX_WAIT if not heap else min(MAX_WAIT, max(0.0, heap[0][0] - self.now()))
            for fd, _ in poller.poll(wait * 1000.0):
                if fd in controls:
                    return
                self._read(fd, index_of_fd[fd])

    def _read(self, fd: int, src: int) -> None:
        for _ in range(READ_BURST):
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                return
            self.accept(packet, src, self.now())

    def accept(self, packet: bytes, src: int, now: float) -> None:
        """A packet host ``src`` sent at ``now``: log it and put it on its first hop."""
        if len(packet) < 20 or packet[0] >> 4 != 4:
            self.unroutable += 1  # not IPv4 (e.g. an IPv6 router solicitation): no route
            return
        dst = self.host_of_address.get(packet[16:20])
        if dst is None or dst == src:
            self.unroutable += 1
            return
        row = [now, src, dst, len(packet), None, None, None,
               packet if self.config.capture else packet[:SNAPLEN_NO_CAPTURE]]
        self.log.packets.append(row)
        self._hop(now, packet, self.path(src, dst), 0, dst, row)

    def _hop(self, t: float, packet: bytes, path: list, index: int, dst: int,
             row: list) -> None:
        hop = path[index]
        if hop.__class__ is self._middlebox_hop:
            self._middlebox(t, packet, path, index, dst, row)
            return
        arrival = hop.link.arrival(t, len(packet))
        if arrival is None:
            row[5], row[6] = hop.link.last_dropped, hop.name
            return
        heapq.heappush(self._heap, (arrival, next(self._order), packet, path, index + 1, dst,
                                    row))

    def _middlebox(self, t: float, packet: bytes, path: list, index: int, dst: int,
                   row: list) -> None:
        """The packet meets a middlebox at ``t``: on along the path, dropped, or dropped and
        answered with a RST to each host (each sent on from here along its own path)."""
        from ...world.middlebox import DROP_REASON, Verdict
        from .packets import ACK, SYN, parse, resets_for
        hop = path[index]
        header = parse(packet)
        if header is None:  # not TCP: the middlebox tracks TCP flows only
            heapq.heappush(self._heap, (t, next(self._order), packet, path, index + 1, dst, row))
            return
        ends = ((header.src, header.src_port), (header.dst, header.dst_port))
        flow = ends if hop.outbound else ends[::-1]  # (client side, broker side)
        opens = hop.outbound and header.flags & (SYN | ACK) == SYN
        verdict = hop.table.packet(flow, t, opens)
        if verdict is Verdict.FORWARD:
            heapq.heappush(self._heap, (t, next(self._order), packet, path, index + 1, dst, row))
            return
        row[5], row[6] = DROP_REASON, hop.name
        if verdict is not Verdict.RESET:
            return
        src = row[1]
        back, forward = resets_for(header)
        for rst, sender, receiver, route, at in (
                (forward, src, dst, path, index),
                (back, dst, src, self.path(dst, src), None)):
            if at is None:  # the same middlebox on the way back
                at = next(i for i, h in enumerate(route) if h.__class__ is self._middlebox_hop
                          and h.table is hop.table)
            forged = [t, sender, receiver, len(rst), None, None, None, rst]
            self.log.packets.append(forged)
            heapq.heappush(self._heap, (t, next(self._order), rst, route, at + 1, receiver,
                                        forged))

    def _due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, _, packet, path, index, dst, row = heapq.heappop(heap)
            if index < len(path):
                self._hop(t, packet, path, index, dst, row)
                continue
            try:
                os.write(self.fds[dst], packet)
            except OSError:
                self.write_errors += 1  # the device is down (the host is gone)
                row[5], row[6] = "host_down", self.names[dst]
                continue
            row[4] = t
            late = self.now() - t
            self.written += 1
            self.late_sum += late
            if late > self.late_max:
                self.late_max = late

    def finish(self, duration: float) -> EmulatorLog:
        self.log.links = self.network.link_rows(duration)
        self.log.stats = {"packets": len(self.log.packets), "delivered": self.written,
                          "unroutable": self.unroutable, "write_errors": self.write_errors,
                          "late_max": self.late_max,
                          "late_mean": self.late_sum / self.written if self.written else 0.0,
                          "hosts": self.names, "middleboxes": self.network.middlebox_rows()}
        return self.log


# -- the process --------------------------------------------------------------------------

def _read_exactly(fd: int, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = os.read(fd, count - len(data))
        if not chunk:
            raise EOFError("the driver went away")
        data += chunk
    return data


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies (PR_SET_PDEATHSIG)."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main() -> int:
    _die_with_parent()
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the driver; it stops us
    try:
        size = struct.unpack("<Q", _read_exactly(0, 8))[0]
        config: EmulatorConfig = pickle.loads(_read_exactly(0, size))
        os.write(1, b"ready\n")
        origin = struct.unpack("<d", _read_exactly(0, 8))[0]
    except EOFError:
        return 0  # the driver gave up before the run began: nothing to log
    emulator = Emulator(config, origin)
    read_end, write_end = os.pipe()  # SIGTERM wakes the loop through this pipe
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    if not stopping:
        emulator.run(controls=(0, read_end))
    log = emulator.finish(config.scenario.duration)
    try:
        with open(config.log_path + ".part", "wb") as out:
            pickle.dump(log, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(config.log_path + ".part", config.log_path)
    except OSError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
