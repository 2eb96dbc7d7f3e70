"""Load: 1,000 concurrent clients on one ``mqttsim broker`` process, exchanging QoS 1 and
QoS 2 messages; at QoS 2 nothing is lost or duplicated, at QoS 1 nothing is lost.

Client ``i`` subscribes to ``load/i`` at QoS 2 and publishes ``MESSAGES`` messages to its
neighbour's topic, alternating QoS 1 and 2, all at once (the broker's per-client in-flight
window and queue are exercised too). The clients are our own sans-IO ``ClientEngine``s on one
asyncio loop in the test process, the broker is a separate process, so the two use both
cores and the broker is exactly what ``mqttsim broker`` runs.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.client import ClientConfig, ClientEngine

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 1000
MESSAGES = 50  # per client: 25 at QoS 1, 25 at QoS 2
DEADLINE = 40.0  # seconds for the whole exchange; it takes a few on two cores


def raise_open_files_limit(needed: int) -> None:
    """Both processes hold one socket per client (the broker inherits our limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class EngineClient(asyncio.Protocol):
    """A ``ClientEngine`` on an asyncio transport: the smallest possible driver."""

    def __init__(self, index: int, loop: asyncio.AbstractEventLoop):
        self.index = index
        self.loop = loop
        self.engine = ClientEngine(ClientConfig(f"load-{index}", keepalive=0, max_inflight=20,
                                                emit_packet_events=False))
        self.transport: asyncio.Transport | None = None
        self.connected = loop.create_future()
        self.subscribed = loop.create_future()
        self.received: list[tuple[int, bytes]] = []
        self.acknowledged = 0
        self.lost = False
        self.lost_early = False  # lost before the test closed it

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.engine.connect(self.loop.time())
        self.flush()

    def data_received(self, data: bytes) -> None:
        for event in self.engine.receive(data, self.loop.time()):
            kind = type(event)
            if kind is ev.MessageReceived:
                self.received.append((event.qos, event.payload))
            elif kind is ev.MessageAcknowledged:
                self.acknowledged += 1
            elif kind is ev.Connected and not self.connected.done():
                self.connected.set_result(True)
            elif kind is ev.Subscribed and not self.subscribed.done():
                self.subscribed.set_result(event.granted)
        self.flush()

    def connection_lost(self, exc) -> None:
        self.lost = True
        for future in (self.connected, self.subscribed):
            if not future.done():
                future.set_exception(ConnectionError(f"client {self.index} lost: {exc}"))

    def flush(self) -> None:
        data = self.engine.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def exchange(port: int) -> list[EngineClient]:
    loop = asyncio.get_running_loop()
    clients = [EngineClient(i, loop) for i in range(CLIENTS)]
    gate = asyncio.Semaphore(200)  # connect in waves, as real fleets do

    async def open_one(client: EngineClient) -> None:
        async with gate:
            await loop.create_connection(lambda: client, "127.0.0.1", port)
            await client.connected

    await asyncio.wait_for(asyncio.gather(*(open_one(c) for c in clients)), 20)
    now = loop.time()
    for client in clients:
        client.engine.subscribe(f"load/{client.index}", now, qos=2)
        client.flush()
    grants = await asyncio.wait_for(asyncio.gather(*(c.subscribed for c in clients)), 20)
    assert set(grants) == {(2,)}
    for client in clients:
        target = f"load/{(client.index + 1) % CLIENTS}"
        for k in range(MESSAGES):
            client.engine.publish(target, b"%d:%d" % (client.index, k), qos=1 + k % 2,
                                  now=loop.time())
        client.flush()
    deadline = loop.time() + DEADLINE
    total = CLIENTS * MESSAGES
    while loop.time() < deadline:
        delivered = sum(len(c.received) for c in clients)
        acked = sum(c.acknowledged for c in clients)
        if delivered >= total and acked >= total:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # time for a duplicate, if any, to arrive
    for client in clients:
        client.lost_early = client.lost
    for client in clients:
        client.engine.disconnect(loop.time())
        client.flush()
        client.transport.close()
    return clients


@pytest.mark.timeout(120)
def test_1000_concurrent_clients_lose_nothing_and_qos2_duplicates_nothing() -> None:
    raise_open_files_limit(CLIENTS * 2 + 256)
    broker = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", "-p", "0"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in broker.stderr:
            if "Opening listen socket" in line:
                port = int(line.rsplit("port", 1)[1].strip(" .\n"))
                break
        assert port is not None, f"the broker did not start: exit {broker.poll()}"
        started = time.monotonic()
        clients = asyncio.run(exchange(port))
        elapsed = time.monotonic() - started
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=20) == 0
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait()
    assert not [c.index for c in clients if c.lost_early], "the broker dropped connections"
    problems = []
    for client in clients:
        sender = (client.index - 1) % CLIENTS
        expected = {qos: Counter(b"%d:%d" % (sender, k) for k in range(MESSAGES)
                                 if 1 + k % 2 == qos) for qos in (1, 2)}
        got = {qos: Counter(payload for q, payload in client.received if q == qos)
               for qos in (1, 2)}
        lost = (expected[1] - got[1]) + (expected[2] - got[2])
        duplicated_qos2 = got[2] - expected[2]
        if lost or duplicated_qos2 or set(got[1]) - set(expected[1]):
            problems.append((client.index, dict(lost), dict(duplicated_qos2)))
        if client.acknowledged != MESSAGES:
            problems.append((client.index, "acknowledged", client.acknowledged))
    assert not problems, problems[:10]
    assert elapsed < DEADLINE + 25
