"""The asyncio broker server on real loopback sockets: life cycle, timers, robustness,
backpressure, group commit, the ``-v`` log and the ``mqttsim broker`` command.

Clients here are raw sockets speaking exact packets (encoded by our codec), so a failure
points at the server driver, not at a client library.
"""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mqttsim.net.log import BrokerLog
from mqttsim.net.server import BrokerServer, ServerThread, run, uvloop_available
from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.broker_state import BrokerConfig, BrokerStore
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                      Publish, Suback, Subscribe, Subscription, Will)

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0
LOOPS = [False] + ([True] if uvloop_available() else [])


class RawClient:
    """One TCP connection speaking exact MQTT packets."""

    def __init__(self, port: int, version: int = 4):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.version = version
        self.decoder = Decoder(version)
        self.inbox: list = []

    def send(self, *packets) -> None:
        self.sock.sendall(b"".join(encode(p, self.version) for p in packets))

    def connect(self, client_id: str, **fields) -> Connack:
        self.send(Connect(client_id=client_id, **fields))
        connack = self.expect(Connack)
        assert connack.reason_code == 0, connack
        return connack

    def expect(self, kind=None, timeout: float = WAIT):
        """The next packet (of type ``kind``); fails if none arrives within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for index, packet in enumerate(self.inbox):
                if kind is None or isinstance(packet, kind):
                    return self.inbox.pop(index)
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} within {timeout} s; got {self.inbox}"
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, f"connection closed while waiting for {kind}; got {self.inbox}"
            self.inbox += self.decoder.feed(data)

    def closed_by_broker(self, timeout: float = WAIT) -> bool:
        """True once the broker closes the connection (packets before that are kept)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.inbox += self.decoder.feed(data)
        return False

    def close(self) -> None:
        self.sock.close()


def ping_works(client: RawClient) -> None:
    client.send(Pingreq())
    client.expect(Pingresp)


def subscribe(client: RawClient, topic_filter: str, qos: int = 0, packet_id: int = 1) -> None:
    client.send(Subscribe(packet_id, (Subscription(topic_filter, qos),)))
    assert client.expect(Suback).reason_codes == (qos,)


# -- life cycle -------------------------------------------------------------------------------

@pytest.mark.parametrize("use_uvloop", LOOPS, ids=lambda u: "uvloop" if u else "asyncio")
def test_port_0_binds_a_free_port_and_a_message_goes_through(use_uvloop: bool) -> None:
    with ServerThread(port=0, use_uvloop=use_uvloop) as (host, port):
        assert host == "127.0.0.1" and port > 0
        sub, pub = RawClient(port), RawClient(port)
        sub.connect("sub")
        subscribe(sub, "sensor", qos=1)
        pub.connect("pub")
        pub.send(Publish("sensor", b"12", qos=1, packet_id=7))
        assert pub.expect(Puback).packet_id == 7
        got = sub.expect(Publish)
        assert (got.topic, got.payload, got.qos) == ("sensor", b"12", 1)
        sub.send(Puback(got.packet_id))
        ping_works(sub)


@pytest.mark.parametrize("use_uvloop", LOOPS, ids=lambda u: "uvloop" if u else "asyncio")
def test_start_and_stop_from_async_code(use_uvloop: bool) -> None:
    """The API a notebook or another asyncio program uses: await start(), await stop()."""

    async def scenario() -> tuple:
        server = BrokerServer(port=0)
        host, port = await server.start()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(encode(Connect(client_id="a"), 4))
        connack = Decoder(4).feed(await reader.readexactly(4))
        count = server.connection_count
        await server.stop()
        closed = await reader.read() == b""
        return connack, count, closed, server.connection_count

    connack, count, closed, after = run(scenario(), use_uvloop=use_uvloop)
    assert connack == [Connack(False, 0)]
    assert (count, closed, after) == (1, True, 0)


@pytest.mark.parametrize("use_uvloop", LOOPS, ids=lambda u: "uvloop" if u else "asyncio")
def test_tcp_nodelay_is_set_on_accepted_sockets(use_uvloop: bool) -> None:
    thread = ServerThread(use_uvloop=use_uvloop)
    with thread as (_, port):
        client = RawClient(port)
        client.connect("c")

        def nodelay() -> list[int]:
            return [protocol.transport.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for protocol in thread.server._protocols.values()]

        assert thread.call(nodelay) == [1]


def test_stop_closes_clients_and_tells_mqtt5_clients_why() -> None:
    thread = ServerThread()
    _, port = thread.start()
    try:
        v5, v4 = RawClient(port, version=5), RawClient(port)
        v5.connect("five")
        v4.connect("four")
    finally:
        thread.stop()
    assert v5.closed_by_broker() and v4.closed_by_broker()
    assert v5.expect(Disconnect, timeout=0).reason_code == 0x8B  # server shutting down
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_stop_publishes_the_wills_of_connected_clients() -> None:
    # A will is published when the server ends a connection without DISCONNECT [MQTT-3.1.2-8];
    # a watcher on another broker would see it: here the store-less engine routes it to a
    # subscriber that is itself being closed, so check the engine's account instead.
    seen: list = []
    thread = ServerThread(on_events=seen.extend)
    _, port = thread.start()
    client = RawClient(port)
    client.connect("w", will=Will("last/w", b"gone"))
    thread.stop()
    wills = [e for e in seen if isinstance(e, ev.WillPublished)]
    assert [(w.client_id, w.topic) for w in wills] == [("w", "last/w")]


def test_start_reports_a_port_in_use() -> None:
    with ServerThread() as (_, port):
        with pytest.raises(OSError) as raised:
            ServerThread(port=port).start()
    from mqttsim.net.server import address_in_use
    assert address_in_use(raised.value)


# -- timers -----------------------------------------------------------------------------------

def test_v311_MQTT_3_1_2_24_keepalive_expiry_over_real_sockets() -> None:
    log = io.StringIO()
    holder: dict = {}

    def on_events(events):
        holder["log"](events)

    with ServerThread(BrokerConfig(emit_packet_events=True), on_events=on_events) as (_, port):
        holder["log"] = BrokerLog(log)
        quiet, busy = RawClient(port), RawClient(port)
        quiet.connect("quiet", keepalive=1)
        busy.connect("busy", keepalive=1)
        started = time.monotonic()
        for _ in range(8):  # busy keeps talking for 2 s: it must stay
            time.sleep(0.25)
            ping_works(busy)
        assert quiet.closed_by_broker(timeout=0.1)
        # 1.5 x keepalive, measured from CONNECT: the broker waited, then closed.
        assert time.monotonic() - started >= 1.4
        ping_works(busy)
    assert "Client quiet disconnected: keepalive expired [MQTT-3.1.2-24]" in log.getvalue()


def test_one_timer_handle_for_all_connections() -> None:
    """The engine keeps every timer; the server arms one loop timer at next_deadline()."""
    thread = ServerThread(use_uvloop=False)  # asyncio's loop lets us count scheduled handles
    with thread as (_, port):
        clients = [RawClient(port) for _ in range(50)]
        for number, client in enumerate(clients):
            client.connect(f"k{number}", keepalive=30 + number)

        def scheduled() -> tuple[int, float | None, float | None]:
            loop = thread.loop
            live = [h for h in loop._scheduled if not h.cancelled()]
            server = thread.server
            return len(live), server._timer_at, server.engine.next_deadline()

        count, armed_at, deadline = thread.call(scheduled)
        assert count == 1
        assert armed_at == deadline


def test_connect_timeout_is_configurable_and_closes_a_silent_client() -> None:
    with ServerThread(BrokerConfig(connect_timeout=0.3, emit_packet_events=False)) as (_, port):
        normal = RawClient(port)
        normal.connect("normal")
        silent = RawClient(port)
        started = time.monotonic()
        assert silent.closed_by_broker(timeout=3)
        assert 0.25 <= time.monotonic() - started < 2.5
        ping_works(normal)


# -- robustness -------------------------------------------------------------------------------

def test_garbage_closes_that_connection_only() -> None:
    with ServerThread() as (_, port):
        normal = RawClient(port)
        normal.connect("normal")
        subscribe(normal, "t")
        garbage = RawClient(port)
        garbage.sock.sendall(b"\xff\xff\xff\xff\xff GET / HTTP/1.1\r\n\r\n" * 10)
        assert garbage.closed_by_broker()
        # The garbage arriving after a valid CONNECT also closes only that connection.
        late = RawClient(port)
        late.connect("late")
        late.sock.sendall(b"\x00\x00\x00")
        assert late.closed_by_broker()
        other = RawClient(port)
        other.connect("other")
        other.send(Publish("t", b"still here"))
        assert normal.expect(Publish).payload == b"still here"


def test_oversized_packet_closes_that_connection_only() -> None:
    config = BrokerConfig(max_packet_size=1024, emit_packet_events=False)
    with ServerThread(config) as (_, port):
        normal = RawClient(port)
        normal.connect("normal")
        subscribe(normal, "t")
        big = RawClient(port)
        big.connect("big")
        big.send(Publish("t", b"x" * 4096))
        assert big.closed_by_broker()
        ping_works(normal)
        small = RawClient(port)
        small.connect("small")
        small.send(Publish("t", b"x" * 512))
        assert normal.expect(Publish).payload == b"x" * 512


def test_a_client_that_vanishes_mid_packet_is_cleaned_up() -> None:
    with ServerThread() as (_, port):
        seen = RawClient(port)
        seen.connect("x", will=Will("will/x", b"bye"))
        watcher = RawClient(port)
        watcher.connect("watcher")
        subscribe(watcher, "will/#")
        seen.sock.sendall(encode(Publish("t", b"y" * 100), 4)[:20])  # half a packet
        linger_zero = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN
        seen.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        seen.close()
        got = watcher.expect(Publish)
        assert (got.topic, got.payload) == ("will/x", b"bye")


# -- backpressure -----------------------------------------------------------------------------

@pytest.mark.parametrize("use_uvloop", LOOPS, ids=lambda u: "uvloop" if u else "asyncio")
def test_a_client_that_does_not_read_is_paused_not_buffered_without_bound(
        use_uvloop: bool) -> None:
    """It publishes 60 KB messages to a topic it subscribes to, and never reads. Without
    backpressure the broker would read all it sends and keep every echo in memory."""
    thread = ServerThread(use_uvloop=use_uvloop)
    with thread as (_, port):
        hog_sock = socket.socket()
        hog_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # no autotuning
        hog_sock.connect(("127.0.0.1", port))
        hog = RawClient.__new__(RawClient)
        hog.sock, hog.version, hog.decoder, hog.inbox = hog_sock, 4, Decoder(4), []
        hog.sock.settimeout(WAIT)
        hog.connect("hog")
        subscribe(hog, "echo")
        normal = RawClient(port)
        normal.connect("normal")
        hog.sock.setblocking(False)

        def hog_transport() -> tuple[int, bool]:
            [transport] = [p.transport for p in thread.server._protocols.values()
                           if p.transport.get_write_buffer_size() > 0] or [None]
            if transport is None:
                return 0, True
            return transport.get_write_buffer_size(), transport.is_reading()

        stream = memoryview(encode(Publish("echo", b"z" * 60_000), 4) * 700)  # 42 MB
        sent, stalled_since = 0, None
        while sent < len(stream):
            try:
                sent += hog.sock.send(stream[sent:sent + (1 << 20)])
                stalled_since = None
            except BlockingIOError:
                # The hog's sends block. Done once the broker has stopped reading it (what
                # is checked below); a broker that still reads it gets up to 1 s to take
                # more, and one that never stops reads all 42 MB.
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0 or not thread.call(hog_transport)[1]:
                    break
                time.sleep(0.01)

        buffered, reading = thread.call(hog_transport)
        assert buffered < 4 * 1024 * 1024, f"{buffered} bytes buffered for a client that " \
                                           f"does not read ({sent} sent)"
        assert not reading
        ping_works(normal)  # everyone else is served meanwhile
        # Closed here, not left to the server's stop: it would wait 3 s for the hog's
        # socket, full of echoes, to close before aborting it.
        hog.sock.close()
        normal.sock.close()


# -- group commit -----------------------------------------------------------------------------

class SlowStore(BrokerStore):
    """Records changes; ``commit`` is slow, so an ack written before it would arrive first."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending: list = []
        self.durable: list = []
        self.commits = 0

    def retained_changed(self, topic, message):
        self.pending.append(("retained", topic))

    def commit(self):
        if self.pending:
            time.sleep(0.2)
            with self.lock:
                self.durable += self.pending
                self.commits += 1
            self.pending = []


def test_store_is_committed_before_the_acknowledgement_is_written() -> None:
    store = SlowStore()
    with ServerThread(store=store) as (_, port):
        pub = RawClient(port)
        pub.connect("pub")
        pub.send(Publish("kept", b"1", qos=1, retain=True, packet_id=1),
                 Publish("kept2", b"2", qos=1, retain=True, packet_id=2))
        pub.expect(Puback)
        with store.lock:
            assert ("retained", "kept") in store.durable
        pub.expect(Puback)
        with store.lock:
            assert ("retained", "kept2") in store.durable
            assert store.commits <= 2  # both publishes in one turn: usually one commit


# -- the -v log -------------------------------------------------------------------------------

def test_log_lines_look_like_mosquitto() -> None:
    out = io.StringIO()
    log = BrokerLog(out, peer=lambda conn: "127.0.0.1:53412", clock=lambda: 1700000000.5)
    connect = Connect(client_id="sub", keepalive=60)
    log([ev.ConnectionOpened(0, 1),
         ev.PacketReceived(0, connect, 17, 1, None),
         ev.PacketSent(0, Connack(False, 0), 4, 1, "sub"),
         ev.Connected(0, "sub", False, 4, 1, 60),
         ev.PacketReceived(0, Publish("sensor", b"12"), 10, 2, "pub"),
         ev.PacketSent(0, Pingresp(), 2, 1, "sub"),
         ev.ConnectionClosed(0, "sub", "keepalive", "x", "MQTT-3.1.2-24", 1)])
    lines = out.getvalue().splitlines()
    assert lines[:4] == [  # mosquitto 2.0.11's lines, in its order
        "1700000000: New connection from 127.0.0.1:53412 on port ?.",
        "1700000000: New client connected from 127.0.0.1:53412 as sub (p2, c1, k60).",
        "1700000000: No will message specified.",
        "1700000000: Sending CONNACK to sub (0, 0)"]
    assert ("1700000000: Received PUBLISH from pub (d0, q0, r0, m0, 'sensor', ... (2 bytes))"
            in lines)
    assert "1700000000: Sending PINGRESP to sub" in lines
    assert "1700000000: Client sub disconnected: keepalive expired [MQTT-3.1.2-24]" in lines


def test_log_lines_for_wills_drops_refusals_and_socket_errors() -> None:
    out = io.StringIO()
    log = BrokerLog(out, peer=lambda conn: "127.0.0.1:1", clock=lambda: 5)
    log([ev.WillPublished(0, "w", "last/w", 1, True, 3),
         ev.MessageDropped(0, "t", 1, "queue_full", None, 4, "slow"),
         ev.PacketSent(0, Connack(False, 0x05), 4, 6, None),
         ev.ConnectionRefused(0, None, 0x05, "not authorized", 6),
         ev.ConnectionClosed(0, "x", "transport", "ConnectionResetError: reset", None, 7),
         ev.ConnectionClosed(0, None, "connect_timeout", "no CONNECT within 10 s", None, 8),
         ev.PacketReceived(0, Connect(client_id="c", will=Will("bye/c", b"12", 1)), 30, 9),
         ev.Connected(0, "c", False, 4, 9, 60)])
    assert out.getvalue().splitlines() == [
        "5: Publishing will of w to 'last/w' (q1, r1).",
        "5: Outgoing messages are being dropped for client slow.",
        "5: Sending CONNACK to 127.0.0.1 (0, 5)",
        "5: Socket error on client x, disconnecting: ConnectionResetError: reset",
        "5: Client <unknown> from 127.0.0.1:1 disconnected: no CONNECT in time "
        "(no CONNECT within 10 s)",
        "5: New client connected from 127.0.0.1:1 as c (p2, c1, k60).",
        "5: Will message specified (2 bytes) (r0, q1).",
        "5: \tbye/c"]


def test_packet_events_are_off_unless_asked_for() -> None:
    seen: list = []
    with ServerThread(on_events=seen.extend) as (_, port):
        client = RawClient(port)
        client.connect("c")
        ping_works(client)
        client.send(Disconnect())
        assert client.closed_by_broker()
    assert any(isinstance(e, ev.Connected) for e in seen)
    assert not any(isinstance(e, (ev.PacketReceived, ev.PacketSent)) for e in seen)


# -- the command line -------------------------------------------------------------------------

def broker_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def listening_port(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """Read ``Opening listen socket on HOST port N.`` from the broker's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if "Opening listen socket" in line:
            return int(line.rsplit("port", 1)[1].strip(" .\n"))
    raise AssertionError(f"the broker did not start: exit {proc.poll()}")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_cli_broker_stops_cleanly_on_signal(signal_number: int) -> None:
    proc = broker_process("-p", "0", "-v")
    try:
        port = listening_port(proc)
        client = RawClient(port, version=5)
        client.connect("c5")
        proc.send_signal(signal_number)
        assert proc.wait(timeout=10) == 0
        assert client.closed_by_broker()
        assert client.expect(Disconnect, timeout=0).reason_code == 0x8B
        err = proc.stderr.read()
        assert "mqttsim broker stopped." in err
        assert "Client c5 disconnected: broker shutting down" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_broker_refuses_a_port_in_use_with_exit_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "mqttsim", "broker", "-p", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "already in use" in done.stderr


def test_cli_broker_default_port_is_1883() -> None:
    from mqttsim.cli import build_parser
    from mqttsim.net.cli_broker import build_server

    args = build_parser().parse_args(["broker"])
    server = build_server(args, BrokerLog())
    assert [(item.host, item.port) for item in server.listeners] == [("127.0.0.1", 1883)]
    assert server.engine.config.emit_packet_events is False
    verbose = build_server(build_parser().parse_args(["broker", "-v"]), BrokerLog())
    assert verbose.engine.config.emit_packet_events is True


# -- -c mosquitto.conf ------------------------------------------------------------------------

def write_conf(tmp_path: Path, extra: str = "") -> Path:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 0 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}\n{extra}")
    return conf


def test_cli_broker_c_refuses_a_bad_line_naming_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("listener 0 127.0.0.1\nmax_inflight_messages lots\n")
    done = subprocess.run([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"{conf}:2" in done.stderr and "max_inflight_messages" in done.stderr


def test_cli_broker_c_acknowledged_messages_survive_kill_9(tmp_path: Path) -> None:
    """PUBACK means durable: the server commits before it writes the acknowledgement, so a
    broker killed right after it loses nothing it acknowledged."""
    conf = write_conf(tmp_path, "max_packet_size 10000\n")
    first = broker_process("-c", str(conf))
    try:
        port = listening_port(first)
        keeper = RawClient(port)
        keeper.connect("keeper", clean_session=False)
        subscribe(keeper, "durable", qos=1)
        keeper.send(Disconnect())
        assert keeper.closed_by_broker()
        pub = RawClient(port)
        pub.connect("pub")
        pub.send(Publish("durable", b"queued", qos=1, packet_id=1),
                 Publish("kept", b"retained", qos=1, retain=True, packet_id=2))
        pub.expect(Puback)
        pub.expect(Puback)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
    second = broker_process("-c", str(conf))
    try:
        port = listening_port(second)
        keeper = RawClient(port)
        assert keeper.connect("keeper", clean_session=False).session_present
        got = keeper.expect(Publish)
        assert (got.topic, got.payload, got.qos) == ("durable", b"queued", 1)
        late = RawClient(port)
        late.connect("late")
        subscribe(late, "kept", qos=1)
        got = late.expect(Publish)
        assert (got.topic, got.payload, got.retain) == ("kept", b"retained", True)
        # max_packet_size from the file is enforced
        late.send(Publish("kept", b"x" * 20000))
        assert late.closed_by_broker()
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
