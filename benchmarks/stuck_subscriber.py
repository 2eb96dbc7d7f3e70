"""One subscriber that never reads its socket: do the others keep flowing, does memory stay
bounded? ``mqttsim broker`` beside Debian's mosquitto 2.0, same load, same run (issue 13).

Each broker is a separate process started fresh for each phase, with the same limits
(``max_queued_messages``; mosquitto.conf's name and meaning in both) and its packet log on
(``mqttsim broker -v``; mosquitto ``log_type all``) so the drops can be read from the log.

- **steady**: a raw-socket subscriber to ``#`` at QoS 1 (keepalive 0, 4 KB receive buffer)
  sends CONNECT and SUBSCRIBE and never reads again; a well-behaved paho-mqtt subscriber
  listens on ``load/#``; a paho-mqtt QoS 1 publisher sends ``--rate`` messages a second for
  ``--seconds``. Measured: the publisher's acknowledged/sent ratio, the longest time
  without a PUBACK, what the good subscriber received, and the broker's RSS.
- **flood**: the same stuck subscriber, and a raw-socket QoS 1 publisher that does not wait
  for PUBACKs (up to 65,535 unacknowledged: every packet id) sending ``--flood`` messages
  as fast as the broker takes them. Measured:
  the broker's resident memory (``VmRSS`` in /proc/PID/status, sampled every 50 ms) before,
  at its peak and after, and how many of the messages were acknowledged.

Bounded in count and time: every wait has a deadline, every process is stopped at the end.

    python benchmarks/stuck_subscriber.py [--rate 100] [--seconds 20] [--flood 100000]

Prints a table, then one JSON line {"steady": {broker: {...}}, "flood": {broker: {...}}}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_BYTES = 1024
DROPPING = "Outgoing messages are being dropped for client stuck"  # both brokers' words
DROP_COUNT = re.compile(r"(\d+) outgoing messages were dropped for client stuck")


# -- brokers ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Broker:
    kind: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kb(self) -> int:
        """Resident memory of the broker process (VmRSS, kB), from /proc."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def mosquitto_binary() -> str | None:
    return shutil.which("/usr/sbin/mosquitto") or shutil.which("mosquitto")


@contextmanager
def broker(kind: str, workdir: Path, max_queued: int) -> Iterator[Broker]:
    """A fresh ``mqttsim broker -v`` or ``mosquitto`` on a free loopback port, stopped after."""
    port = _free_port()
    log_path = workdir / f"{kind}-{port}.log"
    conf = workdir / f"{kind}-{port}.conf"
    limits = f"max_queued_messages {max_queued}\nmax_inflight_messages 20\n"
    if kind == "mqttsim":
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{limits}")
        command = [sys.executable, "-m", "mqttsim", "broker", "-c", str(conf), "-v"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    else:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        as_root = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{limits}"
                        f"persistence false\nlog_dest file {log_path}\nlog_type all\n"
                        f"connection_messages true\n{as_root}")
        command, env = [binary, "-c", str(conf)], None
    with open(log_path if kind == "mqttsim" else workdir / f"{kind}-{port}.out", "ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
    try:
        if not _wait_listening(port, proc):
            raise RuntimeError(f"{kind} did not start: {log_path.read_text(errors='replace')}")
        yield Broker(kind, port, proc, log_path)
    finally:
        _stop(proc)


# -- clients ----------------------------------------------------------------------------------

def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    length, n = bytearray(), len(body)
    while True:
        n, digit = n >> 7, n & 0x7F
        length.append(digit | (0x80 if n else 0))
        if not n:
            return bytes([first]) + bytes(length) + body


def stuck_subscriber(port: int, client_id: str = "stuck") -> socket.socket:
    """CONNECT (MQTT 3.1.1, clean, keepalive 0) and SUBSCRIBE ``#`` at QoS 1, read CONNACK
    and SUBACK, then never read again. A 4 KB receive buffer keeps the kernel from soaking
    up the backlog, so the broker sees a full socket almost at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    connect = _string("MQTT") + bytes([4, 0x02, 0, 0]) + _string(client_id)
    subscribe = (1).to_bytes(2, "big") + _string("#") + bytes([1])
    sock.sendall(_packet(0x10, connect) + _packet(0x82, subscribe))
    got = b""
    while len(got) < 9:  # CONNACK (4 bytes) + SUBACK (5 bytes)
        chunk = sock.recv(9 - len(got))
        if not chunk:
            raise ConnectionError("the broker closed the stuck subscriber's connection")
        got += chunk
    return sock


def _paho(client_id: str, max_inflight: int = 20):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(max_inflight)  # 0: no limit
    client.max_queued_messages_set(0)
    return client


class GoodSubscriber:
    """A paho-mqtt subscriber to ``load/#`` at QoS 1 that records each sequence number."""

    def __init__(self, port: int):
        self.seen: set[int] = set()
        self.ready = threading.Event()
        self.client = _paho("good")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.subscribe("load/#", qos=1)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("the good subscriber got no SUBACK")

    def _message(self, client, userdata, message) -> None:
        self.seen.add(int(message.payload[:10]))

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A paho-mqtt QoS 1 publisher counting PUBACKs and the longest wait between two."""

    def __init__(self, port: int, max_inflight: int = 20):
        self.acked = 0
        self.last_ack = time.monotonic()
        self.longest_gap = 0.0
        self.sent = 0
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = _paho("publisher", max_inflight)
        self.client.on_publish = self._acked
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("the publisher got no CONNACK")

    def _acked(self, client, userdata, mid, reason_code, properties) -> None:
        now = time.monotonic()
        with self.lock:
            self.acked += 1
            self.longest_gap = max(self.longest_gap, now - self.last_ack)
            self.last_ack = now

    def publish(self, number: int) -> None:
        payload = b"%010d" % number + b"x" * (PAYLOAD_BYTES - 10)
        self.client.publish("load/t", payload, qos=1)
        self.sent += 1

    def wait_acks(self, timeout: float) -> None:
        """Wait until every message is acknowledged or ``timeout``; a wait that ends with
        acks missing counts as a gap too (a publisher stalled for good has no next ack)."""
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            if self.acked < self.sent:
                self.longest_gap = max(self.longest_gap, time.monotonic() - self.last_ack)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class FloodPublisher:
    """A raw-socket MQTT 3.1.1 QoS 1 publisher that never waits for a PUBACK before the next
    PUBLISH: it writes as fast as the socket takes bytes, and reads PUBACKs only to count
    them and to free packet ids. It stops only where the protocol makes it: 65,535 ids, so
    at most 65,535 messages unacknowledged [MQTT-2.3.1-2]. (paho-mqtt cannot do this at
    this scale: past its in-flight limit it queues in the client, and its bookkeeping per
    PUBACK grows with that queue, so the client, not the broker, sets the pace.)"""

    MAX_IDS = 65535

    def __init__(self, port: int, client_id: str = "flooder"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        connect = _string("MQTT") + bytes([4, 0x02, 0, 60]) + _string(client_id)
        self.sock.sendall(_packet(0x10, connect))
        if self._read_exactly(4)[:2] != b"\x20\x02":
            raise ConnectionError("no CONNACK for the flood publisher")
        self.sock.setblocking(False)
        self.sent = self.acked = 0
        self._inbox = b""

    def _read_exactly(self, n: int) -> bytes:
        got = b""
        while len(got) < n:
            chunk = self.sock.recv(n - len(got))
            if not chunk:
                raise ConnectionError("the broker closed the flood publisher's connection")
            got += chunk
        return got

    def _read_acks(self, timeout: float) -> None:
        """Count the PUBACKs that arrived (each 4 bytes: 0x40 0x02 id), waiting up to
        ``timeout`` for the first one."""
        import select

        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("the broker closed the flood publisher's connection")
        self._inbox += data
        whole = len(self._inbox) // 4 * 4
        self.acked += whole // 4
        self._inbox = self._inbox[whole:]

    def run(self, messages: int, time_limit: float) -> bool:
        """Send ``messages`` QoS 1 PUBLISHes of PAYLOAD_BYTES; True if all went out in time."""
        import select

        deadline = time.monotonic() + time_limit
        pending = b""
        while (self.sent < messages or pending) and time.monotonic() < deadline:
            while len(pending) < (1 << 16) and self.sent < messages \
                    and self.sent - self.acked < self.MAX_IDS:
                packet_id = self.sent % self.MAX_IDS + 1
                body = (_string("load/t") + packet_id.to_bytes(2, "big")
                        + b"%010d" % self.sent + b"x" * (PAYLOAD_BYTES - 10))
                pending += _packet(0x32, body)
                self.sent += 1
            if pending:
                select.select([], [self.sock], [], 0.1)
                try:
                    pending = pending[self.sock.send(pending):]
                except BlockingIOError:
                    pass
            self._read_acks(0 if pending else 0.1)
        return self.sent >= messages and not pending

    def wait_acks(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            self._read_acks(0.1)

    def stop(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        self.sock.close()


class RssSampler:
    """The broker's VmRSS every 50 ms on a thread: the peak while the load runs."""

    def __init__(self, target: Broker):
        self.target, self.peak = target, target.rss_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.target.rss_kb())
            except OSError:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _drops_from_log(target: Broker, timeout: float = 5.0) -> int | None:
    """mqttsim logs the count of queue_full drops when the client goes; mosquitto does not."""
    if target.kind != "mqttsim":
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = DROP_COUNT.search(target.log())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    return 0


# -- the two phases -----------------------------------------------------------------------------

@dataclass
class Steady:
    sent: int = 0
    acked: int = 0
    ack_ratio: float = 0.0
    longest_ack_gap_s: float = 0.0
    good_received: int = 0
    good_ratio: float = 0.0
    dropping_logged: bool = False
    stuck_drops: int | None = None  # from mqttsim's log when the stuck client goes
    rss_before_kb: int = 0
    rss_peak_kb: int = 0
    rss_growth_kb: int = 0


def steady(kind: str, workdir: Path, rate: float, seconds: float, max_queued: int) -> Steady:
    """Stuck subscriber + good subscriber + a publisher at ``rate`` msg/s for ``seconds``."""
    out = Steady()
    with broker(kind, workdir, max_queued) as target:
        stuck = stuck_subscriber(target.port)
        good = GoodSubscriber(target.port)
        pub = Publisher(target.port)
        out.rss_before_kb = target.rss_kb()
        sampler = RssSampler(target)
        try:
            start = time.monotonic()
            total = int(rate * seconds)
            for number in range(total):
                delay = start + number / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pub.publish(number)
            pub.wait_acks(10)
            deadline = time.monotonic() + 10
            while len(good.seen) < pub.sent and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            out.rss_peak_kb = sampler.stop()
            out.sent, out.acked = pub.sent, pub.acked
            out.longest_ack_gap_s = round(pub.longest_gap, 3)
            out.good_received = len(good.seen & set(range(pub.sent)))
            pub.stop()
            good.stop()
            stuck.close()  # now mqttsim logs how many were dropped for it
        out.stuck_drops = _drops_from_log(target)
        out.dropping_logged = DROPPING in target.log()
    out.ack_ratio = round(out.acked / out.sent, 4) if out.sent else 0.0
    out.good_ratio = round(out.good_received / out.sent, 4) if out.sent else 0.0
    out.rss_growth_kb = out.rss_peak_kb - out.rss_before_kb
    return out


@dataclass
class Flood:
    sent: int = 0
    acked: int = 0
    ack_ratio: float = 0.0
    seconds: float = 0.0
    rss_before_kb: int = 0
    rss_peak_kb: int = 0
    rss_after_kb: int = 0
    rss_growth_kb: int = 0
    stuck_drops: int | None = None
    notes: list[str] = field(default_factory=list)


def flood(kind: str, workdir: Path, messages: int, max_queued: int,
          time_limit: float) -> Flood:
    """Stuck subscriber + a publisher that never waits for PUBACKs: broker memory."""
    out = Flood()
    with broker(kind, workdir, max_queued) as target:
        stuck = stuck_subscriber(target.port)
        pub = FloodPublisher(target.port)
        time.sleep(0.5)
        out.rss_before_kb = target.rss_kb()
        sampler = RssSampler(target)
        start = time.monotonic()
        try:
            if not pub.run(messages, time_limit):
                out.notes.append(f"publishing stopped at the {time_limit:g} s limit")
            pub.wait_acks(max(5.0, time_limit - (time.monotonic() - start)))
        finally:
            out.seconds = round(time.monotonic() - start, 2)
            out.rss_peak_kb = sampler.stop()
            out.rss_after_kb = target.rss_kb()
            out.sent, out.acked = pub.sent, pub.acked
            pub.stop()
            stuck.close()
        out.stuck_drops = _drops_from_log(target, timeout=15)
    out.ack_ratio = round(out.acked / out.sent, 4) if out.sent else 0.0
    out.rss_growth_kb = out.rss_peak_kb - out.rss_before_kb
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="steady: messages/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady: how long")
    parser.add_argument("--flood", type=int, default=100_000,
                        help="flood: messages published without waiting for PUBACKs")
    parser.add_argument("--flood-time-limit", type=float, default=120.0,
                        help="flood: stop publishing after this many seconds")
    parser.add_argument("--max-queued", type=int, default=1000,
                        help="max_queued_messages of both brokers (mosquitto's default)")
    parser.add_argument("--brokers", default="mqttsim,mosquitto")
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.brokers.split(",") if kind]
    if "mosquitto" in kinds and mosquitto_binary() is None:
        print("mosquitto not installed: measuring mqttsim alone", file=sys.stderr)
        kinds.remove("mosquitto")
    result: dict[str, dict] = {"steady": {}, "flood": {}, "config": vars(args)}
    with tempfile.TemporaryDirectory(prefix="stuck-") as tmp:
        for kind in kinds:
            result["steady"][kind] = asdict(steady(kind, Path(tmp), args.rate, args.seconds,
                                                   args.max_queued))
        for kind in kinds:
            result["flood"][kind] = asdict(flood(kind, Path(tmp), args.flood, args.max_queued,
                                                 args.flood_time_limit))
    print(f"steady: {args.rate:g} msg/s for {args.seconds:g} s, QoS 1, {PAYLOAD_BYTES} B, "
          f"one subscriber to # that never reads, max_queued_messages {args.max_queued}")
    print(f"{'broker':<10} {'sent':>6} {'acked':>6} {'ack ratio':>9} {'max gap s':>9} "
          f"{'good rcvd':>9} {'drops':>6} {'RSS +kB':>8}")
    for kind, row in result["steady"].items():
        print(f"{kind:<10} {row['sent']:>6} {row['acked']:>6} {row['ack_ratio']:>9.4f} "
              f"{row['longest_ack_gap_s']:>9.3f} {row['good_received']:>9} "
              f"{row['stuck_drops'] if row['stuck_drops'] is not None else 'n/a':>6} "
              f"{row['rss_growth_kb']:>8}")
    print(f"\nflood: {args.flood} QoS 1 messages without waiting for PUBACKs, same stuck "
          "subscriber")
    print(f"{'broker':<10} {'sent':>7} {'acked':>7} {'ack ratio':>9} {'s':>6} "
          f"{'RSS before':>10} {'peak':>8} {'+kB':>8} {'drops':>7}")
    for kind, row in result["flood"].items():
        print(f"{kind:<10} {row['sent']:>7} {row['acked']:>7} {row['ack_ratio']:>9.4f} "
              f"{row['seconds']:>6} {row['rss_before_kb']:>10} {row['rss_peak_kb']:>8} "
              f"{row['rss_growth_kb']:>8} "
              f"{row['stuck_drops'] if row['stuck_drops'] is not None else 'n/a':>7}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
