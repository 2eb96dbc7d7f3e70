"""One stuck subscriber on a real ``mqttsim`` broker: its queue is bounded, the rest flow.

A subscriber to ``#`` that never reads its socket (keepalive 0, a tiny receive buffer) sits
beside a good subscriber while a QoS 1 publisher sends as fast as its in-flight window lets
it. The publisher gets every PUBACK, the good subscriber every message, the stuck one's
copies beyond its queue are dropped and counted (``BrokerEngine.drops``), and what the server
holds for it stays bounded: the engine queue by ``max_queued_messages``/``max_queued_bytes``,
the socket buffer by the server's write high-water mark (reading pauses, the engine queues).
Also: the mosquitto.conf option and the ``-v`` log line.
"""

from __future__ import annotations

import asyncio
import io
import socket

from mqttsim.net.client import Client
from mqttsim.net.config import parse_config
from mqttsim.net.log import BrokerLog
from mqttsim.net.server import FLUSH_AFTER_BYTES, WRITE_HIGH_WATER, ServerThread
from mqttsim.protocol import encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import Connect, Subscribe, Subscription

MESSAGES = 3000
PAYLOAD = b"x" * 1024


def stuck_subscriber(port: int) -> socket.socket:
    """CONNECT (keepalive 0) and SUBSCRIBE # at QoS 1, read the CONNACK/SUBACK, then never
    read again; a 4 KB receive buffer so the kernel cannot soak up the backlog."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode(Connect("stuck", keepalive=0), 4)
                 + encode(Subscribe(1, (Subscription("#", 1),)), 4))
    got = b""
    while len(got) < 4 + 5:  # CONNACK (4 bytes) and SUBACK (5 bytes)
        got += sock.recv(9 - len(got))
    return sock


async def publish_and_listen(port: int) -> tuple[int, list[bytes]]:
    good = Client("127.0.0.1", port, client_id="good")
    await good.connect()
    await good.subscribe("load/#", qos=1)
    received: list[bytes] = []

    async def listen():
        async for message in good.messages:
            received.append(message.payload)
            if len(received) == MESSAGES:
                return

    listener = asyncio.create_task(listen())
    pub = Client("127.0.0.1", port, client_id="pub")
    await pub.connect()
    acked = 0
    window = asyncio.Semaphore(20)

    async def one(n: int):
        nonlocal acked
        async with window:
            await pub.publish("load/t", PAYLOAD + b"%d" % n, qos=1)
            acked += 1

    await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(MESSAGES))), 60)
    await asyncio.wait_for(listener, 30)
    await pub.disconnect()
    await good.disconnect()
    return acked, received


def held_for_stuck(server) -> tuple[int, int, int]:
    """(queued messages, queued bytes, socket write buffer) the server holds for "stuck"."""
    session = server.engine.sessions["stuck"]
    transport = server._protocols[session.conn].transport
    return (len(session.flow.queue), session.flow.queued_bytes,
            transport.get_write_buffer_size())


def test_a_stuck_subscriber_stalls_no_one_and_its_backlog_stays_bounded():
    config = BrokerConfig(max_queued_messages=200, max_queued_bytes=100_000)
    thread = ServerThread(config)
    _, port = thread.start()
    sock = None
    try:
        sock = stuck_subscriber(port)
        acked, received = asyncio.run(publish_and_listen(port))
        assert acked == MESSAGES  # acknowledged / sent = 1.0
        assert sorted(int(p[len(PAYLOAD):]) for p in received) == list(range(MESSAGES))
        queued, queued_bytes, buffered = thread.call(lambda: held_for_stuck(thread.server))
        drops = thread.call(lambda: thread.server.engine.drop_counts())
        assert set(drops) == {"stuck"} and drops["stuck"] > MESSAGES // 2
        assert queued <= 200 and queued_bytes < 100_000 + len(PAYLOAD) + 8
        assert buffered <= WRITE_HIGH_WATER + FLUSH_AFTER_BYTES
    finally:
        if sock is not None:
            sock.close()
        thread.stop()


def test_max_queued_bytes_is_read_from_mosquitto_conf():
    settings = parse_config("max_queued_messages 50\nmax_queued_bytes 65536\n")
    assert (settings.config.max_queued_messages, settings.config.max_queued_bytes) == (50, 65536)
    assert parse_config("max_queued_bytes 0\n").config.max_queued_bytes is None  # no limit
    assert BrokerConfig().hold_acks_when_congested is False  # opt-in only


def test_log_says_once_that_a_client_is_dropping_and_counts_when_it_goes():
    out = io.StringIO()
    log = BrokerLog(out, peer=lambda conn: "127.0.0.1:1", clock=lambda: 5)
    log([ev.MessageDropped(0, "t", 1, "queue_full", None, 4, "slow")] * 3
        + [ev.MessageDropped(0, "t", 1, "expired", None, 4, "slow"),
           ev.ConnectionClosed(0, "slow", "clean", "client sent DISCONNECT", None, 4)])
    assert out.getvalue().splitlines() == [
        "5: Outgoing messages are being dropped for client slow.",  # mosquitto's words
        "5: Dropped message for slow on 't' (q1): expired.",
        "5: Client slow disconnected.",
        "5: 3 outgoing messages were dropped for client slow (queue full)."]
