"""Reconnecting clients: ``mqttsim sub`` as mosquitto_sub (a broker killed and started again
under it, mosquitto_sub beside it as the expected behaviour), and ``Client(reconnect=True)``
with its offline buffer, asyncio and blocking, against our broker stopped and started again
and against a scripted peer that leaves a QoS 1 message unacknowledged. The same options in
the simulator are in tests/sim/test_sim_reconnect.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqttsim.net import client as client_module
from mqttsim.net.client import BlockingClient, Client, MessageNotDelivered
from mqttsim.net.server import ServerThread
from mqttsim.protocol.decoder import Decoder
from mqttsim.protocol.encoder import encode
from mqttsim.protocol.packets import Connack, Connect, Puback, Publish
from support.mosquitto import free_port, require_mosquitto, stop_process, wait_listening

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0


def wait_until(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- mqttsim sub under a broker that is killed and started again ------------------------------

class Mosquitto:
    """Debian's mosquitto on a fixed port, so it can be killed and started again there."""

    def __init__(self, workdir: Path, port: int):
        self.binary = require_mosquitto("mosquitto_pub", "mosquitto_sub")
        self.workdir, self.port, self.runs = workdir, port, 0
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "mosquitto.log"

    def start(self) -> None:
        self.runs += 1
        conf = self.workdir / "mosquitto.conf"
        as_root = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        f"log_dest file {self.log_path}\nlog_type all\n{as_root}")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_listening(self.port, WAIT, alive=lambda: self.proc.poll() is None)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no DISCONNECT, the clients' sockets just break
        self.proc.wait(WAIT)

    def subacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Sending SUBACK") \
            if self.log_path.exists() else 0


@pytest.mark.parametrize("tool", ["mosquitto_sub", "sub"])
def test_sub_reconnects_when_its_broker_is_killed_and_started_again(tmp_path, tool) -> None:
    broker = Mosquitto(tmp_path, free_port())
    broker.start()
    command = [tool] if tool.startswith("mosquitto") else [sys.executable, "-m", "mqttsim", tool]
    sub = subprocess.Popen([*command, "-p", str(broker.port), "-t", "restart/#", "-v",
                            "-C", "1", "-q", "1"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_until(lambda: broker.subacks() >= 1, "the first SUBACK")
        broker.kill()
        time.sleep(0.3)  # without reconnecting it would have exited by now
        assert sub.poll() is None, sub.communicate()  # still running, as mosquitto_sub
        broker.start()
        wait_until(lambda: broker.subacks() >= 2 or sub.poll() is not None,
                   "the subscription made again after the restart")
        done = subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "restart/x",
                               "-m", "back", "-q", "1"], capture_output=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        out, err = sub.communicate(timeout=WAIT)
        assert (sub.returncode, out, err) == (0, b"restart/x back\n", b"")
    finally:
        stop_process(sub)
        if broker.proc is not None:
            stop_process(broker.proc)


# -- Client(reconnect=True) against our broker stopped and started again ---------------------

def test_client_reconnects_with_back_off_queues_offline_and_subscribes_again(
        monkeypatch) -> None:
    delays = []
    schedule = client_module.reconnect_delay  # the simulated clients' schedule too

    def recorded(first: float, most: float, failures: int) -> float:
        delays.append(failures)
        return schedule(first, most, failures)

    monkeypatch.setattr(client_module, "reconnect_delay", recorded)
    port = free_port()
    broker = ServerThread(port=port)
    broker.start()

    async def main() -> None:
        nonlocal broker
        client = Client("127.0.0.1", port, client_id="offline-buffer", reconnect=True,
                        reconnect_delay=0.1, reconnect_max_delay=0.4, max_queued=3)
        await client.connect()
        assert await client.subscribe("buffer/#", 1) == (1,)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, broker.stop)  # every client is disconnected
        await asyncio.sleep(0.05)
        assert not client.connected
        # Offline: QoS 1 waits in the buffer (3 at most), QoS 0 is not kept.
        waiting = [asyncio.ensure_future(client.publish(f"buffer/{n}", b"m%d" % n, 1,
                                                        retain=True)) for n in range(5)]
        await asyncio.sleep(0)
        with pytest.raises(MessageNotDelivered, match="qos0_offline"):
            await client.publish("buffer/qos0", b"gone", 0)
        await asyncio.sleep(0.8)  # attempts at +0.1, +0.3, +0.7 s are refused
        assert client.queued == 3
        assert dict(client.dropped) == {"queue_full": 2, "qos0_offline": 1}
        broker = ServerThread(port=port)
        await loop.run_in_executor(None, broker.start)
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True),
                                         WAIT)
        assert [r if isinstance(r, int) else r.reason for r in results] == \
            [0, 0, 0, "queue_full", "queue_full"]
        assert client.reconnects == 1 and client.connected
        # The subscription was made again: the retained messages come back on it.
        got = set()
        async for message in client.messages:
            got.add((message.topic, message.payload))
            if len(got) == 3:
                break
        assert got == {("buffer/0", b"m0"), ("buffer/1", b"m1"), ("buffer/2", b"m2")}
        await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(main(), 2 * WAIT))
    finally:
        broker.stop()
    assert delays[:3] == [0, 1, 2] and delays == list(range(len(delays)))


def test_client_without_reconnect_still_ends_when_the_connection_breaks() -> None:
    port = free_port()
    broker = ServerThread(port=port)
    broker.start()

    async def main() -> None:
        client = Client("127.0.0.1", port)
        await client.connect()
        await asyncio.get_running_loop().run_in_executor(None, broker.stop)
        with pytest.raises(client_module.ConnectionLost):
            async for _ in client.messages:
                pass
        with pytest.raises(client_module.ConnectionLost):
            await client.publish("t", b"x", 1)

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_disconnect_while_reconnecting_stops_and_fails_what_waits() -> None:
    port = free_port()
    broker = ServerThread(port=port)
    broker.start()

    async def main() -> None:
        client = Client("127.0.0.1", port, reconnect=True, reconnect_delay=0.05,
                        reconnect_max_delay=0.1)
        await client.connect()
        await asyncio.get_running_loop().run_in_executor(None, broker.stop)
        waiting = asyncio.ensure_future(client.publish("t", b"never", 1))
        await asyncio.sleep(0.2)  # a few refused attempts
        assert not waiting.done() and client.queued == 1
        await client.disconnect()
        with pytest.raises(client_module.ConnectionLost, match="disconnected while"):
            await waiting
        assert [m async for m in client.messages] == []  # ends, no error
        await asyncio.wait_for(client.wait_closed(), 1.0)
        await asyncio.sleep(0.2)
        assert client.reconnects == 0 and not client.connected  # and it stays away

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_a_refused_connack_on_reconnect_ends_it_as_it_ends_mosquitto_sub() -> None:
    from mqttsim.net.client import ConnectionRefused
    from mqttsim.net.config import RefuseAll

    port = free_port()
    broker = ServerThread(port=port)
    broker.start()

    async def main() -> None:
        nonlocal broker
        client = Client("127.0.0.1", port, reconnect=True, reconnect_delay=0.05,
                        reconnect_max_delay=0.1)
        await client.connect()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, broker.stop)
        broker = ServerThread(port=port, auth=RefuseAll())  # back, but says "not authorised"
        await loop.run_in_executor(None, broker.start)
        with pytest.raises(ConnectionRefused) as refused:
            async for _ in client.messages:
                pass
        assert refused.value.reason_code == 5
        await asyncio.sleep(0.3)
        assert client.reconnects == 0 and client._reconnect_task is None  # it stopped

    try:
        asyncio.run(asyncio.wait_for(main(), WAIT))
    finally:
        broker.stop()


def test_blocking_client_reconnects_and_its_messages_go_on() -> None:
    port = free_port()
    broker = ServerThread(port=port)
    broker.start()
    client = BlockingClient("127.0.0.1", port, client_id="blocking-rc", reconnect=True,
                            reconnect_delay=0.05, reconnect_max_delay=0.2)
    try:
        client.connect()
        client.subscribe("blocking/#", qos=1)
        broker.stop()
        wait_until(lambda: not client.client.connected, "the broken connection")
        with pytest.raises(MessageNotDelivered):
            client.publish("blocking/x", b"qos0 offline")
        assert client.client.dropped["qos0_offline"] == 1
        broker = ServerThread(port=port)
        broker.start()
        wait_until(lambda: client.client.reconnects == 1, "the reconnect")
        wait_until(lambda: broker.call(lambda: "blocking/#" in broker.server.engine
                                       .sessions["blocking-rc"].subscriptions),
                   "the subscription made again")
        with BlockingClient("127.0.0.1", port) as other:
            other.publish("blocking/y", b"after", qos=1)
        assert [(m.topic, m.payload) for m in client.messages(timeout=WAIT, count=1)] == \
            [("blocking/y", b"after")]
    finally:
        client.close()
        broker.stop()


# -- QoS 1 in flight across a broken connection: a scripted peer ----------------------------

@pytest.mark.parametrize("clean", [False, True])
def test_v311_MQTT_4_4_0_1_in_flight_qos1_is_resent_with_dup_or_dropped_by_a_clean_session(
        clean: bool) -> None:
    """First connection: CONNACK, then the PUBLISH is read and the socket closed without
    PUBACK. Second: a persistent session resends it with DUP and the same packet id
    [MQTT-4.4.0-1]; a clean session discards it [MQTT-3.1.2-6] and says so."""
    seen: list[Publish] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder(4)
        while True:
            data = await reader.read(65536)
            if not data:
                break
            for packet in decoder.feed(data):
                if isinstance(packet, Connect):
                    writer.write(encode(Connack(session_present=not packet.clean_session
                                                and bool(seen)), 4))
                elif isinstance(packet, Publish):
                    seen.append(packet)
                    if len(seen) == 1:
                        writer.close()  # no PUBACK: the message stays in flight
                        return
                    writer.write(encode(Puback(packet.packet_id), 4))
        writer.close()

    async def main():
        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Client("127.0.0.1", port, client_id="in-flight", clean_session=clean,
                        reconnect=True, reconnect_delay=0.05, reconnect_max_delay=0.05)
        await client.connect()
        try:
            return await asyncio.wait_for(client.publish("t", b"once", 1), WAIT), client
        except MessageNotDelivered as exc:
            return exc.reason, client
        finally:
            await client.disconnect()
            server.close()

    outcome, client = asyncio.run(asyncio.wait_for(main(), 2 * WAIT))
    if clean:
        assert outcome == "clean_session" and client.dropped["clean_session"] == 1
        assert len(seen) == 1
    else:
        assert outcome == 0 and not client.dropped
        first, again = seen
        assert (first.dup, again.dup) == (False, True)
        assert again.packet_id == first.packet_id and again.payload == b"once"
