"""Broker throughput and latency over loopback: ``mqttsim broker`` beside Debian's mosquitto.

Each case runs against a fresh broker process of each kind, one after the other in the same
run, with the same load (machines are noisy: the ratio is the figure to quote):

- QoS 0, 1 and 2: one publisher -> one subscriber, 20,000 messages of 64 bytes;
- fan-out: one publisher -> 10 subscribers, QoS 1, 2,000 messages (20,000 deliveries).

The load generator is built in and needs only the standard library: raw sockets speaking
MQTT 3.1.1, the publisher and the subscribers in two separate processes (forked), each a
single non-blocking ``selectors`` loop. The publisher keeps at most ``--window`` QoS 1/2
messages unacknowledged (mosquitto_pub's default, 20). Every payload carries a sequence
number and the send time (CLOCK_MONOTONIC, shared by processes), so the subscribers count
unique deliveries, losses and duplicates and measure end-to-end latency. Rate = unique
deliveries / (last delivery - first publish). ``--loadgen PATH`` runs an external load
generator with loadgen.py's command line instead (e.g. ../shared/bench/loadgen.py), as a
cross-check.

    python benchmarks/broker.py [--messages 20000] [--fanout-messages 2000] [--repeat 1]

Prints a table, then one JSON line: {"cases": {case: {"mosquitto": {...}, "mqttsim": {...},
"ratio": mqttsim/mosquitto msg/s}}, ...}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPIC = b"bench/broker"
STAMP = struct.Struct(">IQ")  # sequence number, send time in ns
MONOTONIC_NS = time.monotonic_ns


# -- a minimal MQTT 3.1.1 vocabulary ----------------------------------------------------------

def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _remaining_length(len(body)) + body


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str) -> bytes:
    # protocol name, level 4, flags: clean session; keepalive 0 (no pings during a run)
    return _packet(0x10, _string(b"MQTT") + b"\x04\x02\x00\x00" + _string(client_id.encode()))


def subscribe_packet(qos: int) -> bytes:
    return _packet(0x82, b"\x00\x01" + _string(TOPIC) + bytes((qos,)))


def split_packets(buf: bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """Whole packets at the start of ``buf``: [(first byte, body start, body end)], used."""
    packets, pos, size = [], 0, len(buf)
    while size - pos >= 2:
        value, shift, i = 0, 0, pos + 1
        while True:
            if i >= size:
                return packets, pos
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            i += 1
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError("malformed remaining length")
        if i + value > size:
            break
        packets.append((buf[pos], i, i + value))
        pos = i + value
    return packets, pos


def open_client(port: int, client_id: str, deadline: float) -> socket.socket:
    """Connect, send CONNECT, wait for a successful CONNACK; blocking."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=max(0.1, deadline -
                                                                     time.monotonic()))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    buf = bytearray()
    while True:
        packets, _ = split_packets(buf)
        if packets:
            first, start, _ = packets[0]
            if first >> 4 != 2 or buf[start + 1] != 0:
                raise RuntimeError(f"{client_id}: connection refused")
            return sock
        data = sock.recv(4096)
        if not data:
            raise RuntimeError(f"{client_id}: closed before CONNACK")
        buf += data


# -- the two load processes -------------------------------------------------------------------

def subscriber_process(pipe, port: int, qos: int, subscribers: int, count: int,
                       timeout: float) -> None:
    try:
        pipe.send(("result", _subscribe_and_count(pipe, port, qos, subscribers, count,
                                                  timeout)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, never a hang
        pipe.send(("error", f"subscriber: {type(exc).__name__}: {exc}"))


def _subscribe_and_count(pipe, port, qos, subscribers, count, timeout) -> dict:
    deadline = time.monotonic() + 10
    socks = [open_client(port, f"bench-sub-{os.getpid()}-{i}", deadline)
             for i in range(subscribers)]
    for sock in socks:
        sock.sendall(subscribe_packet(qos))
        buf = bytearray()
        while not split_packets(buf)[0]:
            buf += sock.recv(4096)  # SUBACK (nothing else is published yet)
        sock.setblocking(False)
    selector = selectors.DefaultSelector()
    state = {}
    for sock in socks:
        state[sock] = (bytearray(), bytearray(count))
        selector.register(sock, selectors.EVENT_READ)
    selector.register(pipe, selectors.EVENT_READ)
    pipe.send(("ready",))
    cpu_start = time.process_time()
    expected = subscribers * count
    unique = duplicates = foreign = 0
    first_ns = last_ns = 0
    latencies: list[int] = []
    hard_deadline = time.monotonic() + timeout
    publisher_done_at = None
    last_activity = time.monotonic()
    unpack = STAMP.unpack_from
    while unique < expected:
        now = time.monotonic()
        if now > hard_deadline:
            break
        if publisher_done_at is not None and now - max(last_activity, publisher_done_at) > 2.0:
            break  # everything that was coming has come
        for key, _ in selector.select(0.05):
            if key.fileobj is pipe:
                pipe.recv()
                publisher_done_at = time.monotonic()
                continue
            sock = key.fileobj
            try:
                data = sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("the broker closed a subscriber")
            received_ns = MONOTONIC_NS()
            last_activity = time.monotonic()
            buf, seen = state[sock]
            buf += data
            packets, used = split_packets(buf)
            acks = bytearray()
            for first, start, end in packets:
                kind = first >> 4
                if kind == 3:
                    pos = start + 2 + ((buf[start] << 8) | buf[start + 1])
                    packet_qos = (first >> 1) & 3
                    if packet_qos:
                        packet_id = buf[pos:pos + 2]
                        pos += 2
                        acks += (b"\x40\x02" if packet_qos == 1 else b"\x50\x02") + packet_id
                    if end - pos < STAMP.size:
                        foreign += 1
                        continue
                    seq, sent_ns = unpack(buf, pos)
                    if seq >= count or seen[seq]:
                        duplicates += seq < count
                        continue
                    seen[seq] = 1
                    unique += 1
                    latencies.append(received_ns - sent_ns)
                    if not first_ns:
                        first_ns = received_ns
                    last_ns = received_ns
                elif kind == 6:  # PUBREL -> PUBCOMP
                    acks += b"\x70\x02" + buf[start:start + 2]
            del buf[:used]
            if acks:
                sock.setblocking(True)
                sock.sendall(acks)
                sock.setblocking(False)
    for sock in socks:
        try:
            sock.setblocking(True)
            sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        sock.close()
    return {"unique": unique, "duplicates": duplicates, "lost": expected - unique,
            "first_ns": first_ns, "last_ns": last_ns, "latencies": latencies,
            "foreign": foreign, "timed_out": unique < expected and publisher_done_at is None,
            "cpu_s": time.process_time() - cpu_start}


def publisher_process(pipe, port: int, qos: int, count: int, payload: int, window: int,
                      timeout: float) -> None:
    try:
        pipe.send(("result", _publish(pipe, port, qos, count, payload, window, timeout)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, never a hang
        pipe.send(("error", f"publisher: {type(exc).__name__}: {exc}"))


def _publish(pipe, port, qos, count, payload, window, timeout) -> dict:
    sock = open_client(port, f"bench-pub-{os.getpid()}", time.monotonic() + 10)
    pipe.send(("ready",))
    pipe.recv()  # go
    sock.setblocking(False)
    padding = bytes(payload - STAMP.size)
    body_length = 2 + len(TOPIC) + (2 if qos else 0) + payload
    head = bytes((0x30 | qos << 1,)) + _remaining_length(body_length) + _string(TOPIC)
    pack = STAMP.pack
    inbuf, out = bytearray(), bytearray()
    seq = completed = inflight = 0
    deadline = time.monotonic() + timeout
    start_ns = MONOTONIC_NS()
    cpu_start = time.process_time()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    while completed < count and time.monotonic() < deadline:
        if not out:
            if qos == 0:
                for _ in range(min(64, count - seq)):
                    out += head + pack(seq, MONOTONIC_NS()) + padding
                    seq += 1
            else:
                while seq < count and inflight < window:
                    packet_id = (seq % 65535 + 1).to_bytes(2, "big")
                    out += head + packet_id + pack(seq, MONOTONIC_NS()) + padding
                    seq += 1
                    inflight += 1
        if out:
            try:
                sent = sock.send(out)
                del out[:sent]
            except BlockingIOError:
                pass
            if qos == 0 and not out:
                completed = seq
        if qos == 0 and completed < count and not out:
            continue
        wait = 0 if (out and qos == 0) else 0.05
        for _ in selector.select(wait):
            data = sock.recv(1 << 16)
            if not data:
                raise RuntimeError("the broker closed the publisher")
            inbuf += data
            packets, used = split_packets(inbuf)
            for first, start, _end in packets:
                kind = first >> 4
                if kind in (4, 7):  # PUBACK, PUBCOMP
                    inflight -= 1
                    completed += 1
                elif kind == 5:  # PUBREC -> PUBREL
                    out += b"\x62\x02" + inbuf[start:start + 2]
            del inbuf[:used]
    end_ns = MONOTONIC_NS()
    sock.setblocking(True)
    try:
        sock.sendall(bytes(out) + b"\xe0\x00")
    except OSError:
        pass
    sock.close()
    return {"start_ns": start_ns, "end_ns": end_ns, "sent": seq, "completed": completed,
            "cpu_s": time.process_time() - cpu_start}


def _expect(pipe, what: str, timeout: float):
    if not pipe.poll(timeout):
        raise TimeoutError(f"no {what} within {timeout:g} s")
    message = pipe.recv()
    if message[0] == "error":
        raise RuntimeError(message[1])
    return message


def builtin_load(port: int, qos: int, subscribers: int, count: int, payload: int = 64,
                 window: int = 20, timeout: float = 60.0) -> dict:
    """One measured run against the broker on 127.0.0.1:``port``."""
    context = mp.get_context("fork")
    sub_pipe, sub_end = context.Pipe()
    pub_pipe, pub_end = context.Pipe()
    procs = [context.Process(target=subscriber_process, daemon=True,
                             args=(sub_end, port, qos, subscribers, count, timeout)),
             context.Process(target=publisher_process, daemon=True,
                             args=(pub_end, port, qos, count, payload, window, timeout))]
    try:
        procs[0].start()
        _expect(sub_pipe, "subscribers ready", 20)
        procs[1].start()
        _expect(pub_pipe, "publisher ready", 20)
        pub_pipe.send(("go",))
        published = _expect(pub_pipe, "publisher result", timeout + 10)[1]
        sub_pipe.send(("publisher done",))
        received = _expect(sub_pipe, "subscriber result", timeout + 10)[1]
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    latencies = sorted(received["latencies"])
    elapsed = (received["last_ns"] - published["start_ns"]) / 1e9
    return {"msgs_per_s": round(received["unique"] / elapsed) if elapsed > 0 else 0,
            "p50_ms": _percentile_ms(latencies, 0.50), "p99_ms": _percentile_ms(latencies, 0.99),
            "lost": received["lost"], "duplicates": received["duplicates"],
            "deliveries": received["unique"], "timed_out": received["timed_out"],
            "elapsed_s": round(elapsed, 3), "cpu_s": {"publisher": round(published["cpu_s"], 3),
                                                     "subscribers": round(received["cpu_s"], 3)}}


def _percentile_ms(ordered: list[int], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)


def external_load(script: str, port: int, qos: int, subscribers: int, count: int) -> dict:
    """The same run by an external generator with loadgen.py's command line and JSON."""
    done = subprocess.run([sys.executable, script, "--port", str(port), "-P", "1",
                           "-S", str(subscribers), "-N", str(count), "-q", str(qos), "-B", "64",
                           "--timeout", "60"], capture_output=True, text=True, timeout=150)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise RuntimeError(result["error"])
    return {"msgs_per_s": round(result["deliver_rate"]), "p50_ms": result["lat_ms"]["p50"],
            "p99_ms": result["lat_ms"]["p99"], "lost": result["lost"],
            "duplicates": result["dups"], "deliveries": result["unique"],
            "timed_out": result["timed_out"]}


# -- the brokers ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"broker on port {port} did not start (exit {proc.poll()})")


@dataclass(frozen=True)
class BrokerProcess:
    name: str
    proc: subprocess.Popen
    port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _limits(max_queued: int | None) -> str:
    """Configuration lines both brokers get (the same file syntax)."""
    return "" if max_queued is None else f"max_queued_messages {max_queued}\n"


def start_mosquitto(binary: str, workdir: str, max_queued: int | None = None) -> BrokerProcess:
    port = _free_port()
    conf = Path(workdir) / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                    f"persistence false\nlog_dest none\n{_limits(max_queued)}")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_listening(port, proc)
    return BrokerProcess("mosquitto", proc, port)


def start_mqttsim(workdir: str, max_queued: int | None = None) -> BrokerProcess:
    port = _free_port()
    command = [sys.executable, "-m", "mqttsim", "broker", "-p", str(port)]
    if max_queued is not None:  # through -c, as a user would
        conf = Path(workdir) / f"mqttsim-{port}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        f"{_limits(max_queued)}")
        command += ["-c", str(conf)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_listening(port, proc)
    return BrokerProcess("mqttsim", proc, port)


# -- the run ----------------------------------------------------------------------------------

def cases(messages: int, fanout_messages: int) -> list[tuple[str, int, int, int]]:
    """(name, qos, subscribers, messages)."""
    return [("qos0", 0, 1, messages), ("qos1", 1, 1, messages), ("qos2", 2, 1, messages),
            ("fanout_qos1", 1, 10, fanout_messages)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--fanout-messages", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; medians shown")
    parser.add_argument("--window", type=int, default=20, help="publisher QoS 1/2 window")
    parser.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    parser.add_argument("--loadgen", default=None, metavar="PATH",
                        help="use an external generator with loadgen.py's CLI instead")
    parser.add_argument("--only", choices=("mosquitto", "mqttsim"), default=None)
    # Throughput, not queue policy: a full subscriber queue drops that subscriber's copies
    # (Mosquitto's rule and ours since issue 13), and a subscriber process that drains more
    # slowly than the publisher fills would turn the measurement into a drop count. Both
    # brokers get no queue limit unless asked; benchmarks/stuck_subscriber.py measures the
    # queue limits themselves.
    parser.add_argument("--max-queued", type=int, default=0, metavar="N",
                        help="max_queued_messages for both brokers (default 0: no limit, a "
                             "throughput measurement; -1: each broker's own default, 1000)")
    args = parser.parse_args(argv)
    if args.max_queued < 0:
        args.max_queued = None
    brokers = [name for name in ("mosquitto", "mqttsim") if args.only in (None, name)]
    if "mosquitto" in brokers and not os.path.exists(args.mosquitto):
        parser.error(f"mosquitto not found at {args.mosquitto}: sudo apt-get install mosquitto")
    try:
        import uvloop  # noqa: F401
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="mqttsim-bench-") as workdir:
        for name, qos, subscribers, count in cases(args.messages, args.fanout_messages):
            runs: dict[str, list[dict]] = {broker: [] for broker in brokers}
            for _ in range(args.repeat):
                for broker_name in brokers:  # side by side, alternating, same load
                    broker = (start_mosquitto(args.mosquitto, workdir, args.max_queued)
                              if broker_name == "mosquitto"
                              else start_mqttsim(workdir, args.max_queued))
                    try:
                        if args.loadgen:
                            run = external_load(args.loadgen, broker.port, qos, subscribers,
                                                count)
                        else:
                            run = builtin_load(broker.port, qos, subscribers, count,
                                               window=args.window)
                    finally:
                        broker.stop()
                    runs[broker_name].append(run)
            results[name] = {broker: _median(items) for broker, items in runs.items()}
            if len(brokers) == 2 and results[name]["mosquitto"]["msgs_per_s"]:
                results[name]["ratio"] = round(results[name]["mqttsim"]["msgs_per_s"]
                                               / results[name]["mosquitto"]["msgs_per_s"], 2)
    print_table(results, brokers, loop_name, args)
    print(json.dumps({"cases": results, "loop": loop_name, "messages": args.messages,
                      "fanout_messages": args.fanout_messages, "repeat": args.repeat,
                      "loadgen": args.loadgen or "builtin", "max_queued": args.max_queued}))
    return 0


def _median(runs: list[dict]) -> dict:
    keys = ("msgs_per_s", "p50_ms", "p99_ms")
    out = {key: statistics.median(run[key] for run in runs if run[key] is not None)
           if any(run[key] is not None for run in runs) else None for key in keys}
    out["lost"] = sum(run["lost"] for run in runs)
    out["duplicates"] = sum(run["duplicates"] for run in runs)
    out["runs"] = len(runs)
    return out


def print_table(results: dict, brokers: list[str], loop_name: str, args) -> None:
    head = f"{'case':<12}"
    for broker in brokers:
        head += f" | {broker + ' msg/s':>15} {'p50 ms':>8} {'p99 ms':>8} {'lost/dup':>9}"
    if len(brokers) == 2:
        head += " | ratio"
    print(f"mqttsim broker ({loop_name}) beside mosquitto, loopback, 64-byte payloads, "
          f"{args.messages} messages (fan-out {args.fanout_messages} x 10), "
          f"medians of {args.repeat}, max_queued_messages "
          f"{'default' if args.max_queued is None else args.max_queued or 'unlimited'}")
    print(head)
    print("-" * len(head))
    for name, result in results.items():
        line = f"{name:<12}"
        for broker in brokers:
            r = result[broker]
            line += (f" | {r['msgs_per_s']:>15,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                     f"{str(r['lost']) + '/' + str(r['duplicates']):>9}")
        if "ratio" in result:
            line += f" | {result['ratio']:.2f}x"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
