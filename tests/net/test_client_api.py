"""The asyncio ``Client`` and the ``BlockingClient`` against a real Debian mosquitto, and
against PyPI's paho-mqtt through that broker.

What is checked is what a user of the API sees: awaited calls return when the broker's
acknowledgement arrived, messages come out of ``client.messages``, a refusal raises
``ConnectionRefused`` naming the CONNACK reason, keepalive pings happen on their own.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from mqttsim.net.client import (BlockingClient, Client, ConnectionLost, ConnectionRefused,
                                Message)
from mqttsim.protocol import events as ev
from mqttsim.protocol.packets import Pingreq, Pingresp, Will
from support.mosquitto import Broker, mosquitto_broker, require_mosquitto

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Broker]:
    with mosquitto_broker(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_broker(tmp_path_factory) -> Iterator[Broker]:
    """Only alice (password 'secret'), who may use allowed/# and nothing else."""
    require_mosquitto("mosquitto_passwd")
    work = tmp_path_factory.mktemp("mosquitto-auth")
    passwords, acl = work / "passwords", work / "acl"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "alice", "secret"],
                   check=True, capture_output=True)
    acl.write_text("user alice\ntopic readwrite allowed/#\n")
    extra = f"password_file {passwords}\nacl_file {acl}\nallow_anonymous false\n"
    with mosquitto_broker(work, extra) as running:
        yield running


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


async def next_message(client: Client, timeout: float = WAIT) -> Message:
    return await asyncio.wait_for(client.messages.__anext__(), timeout)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_subscribe_round_trip(broker: Broker, version: int, qos: int) -> None:
    async def main() -> None:
        topic = f"api/{version}/{qos}"
        async with Client(broker.host, broker.port, client_id=f"s{version}{qos}",
                          version=version) as sub, \
                Client(broker.host, broker.port, client_id=f"p{version}{qos}",
                       version=version) as pub:
            assert await sub.subscribe(topic, qos=2) == (2,)
            assert await pub.publish(topic, b"\x00payload", qos=qos) == 0
            if qos:  # awaited publish returns after PUBACK/PUBCOMP: nothing left in flight
                assert pub.engine.inflight_count == 0
            message = await next_message(sub)
            assert (message.topic, message.payload, message.qos, message.retain) == \
                (topic, b"\x00payload", qos, False)
            assert (message.packet_id is None) == (qos == 0)
    run(main())


def test_subscribe_several_filters_and_retained(broker: Broker) -> None:
    async def main() -> None:
        async with Client(broker.host, broker.port, version=5) as c:
            await c.publish("api/ret", "kept", qos=1, retain=True)
            assert await c.subscribe([("api/ret", 1), ("api/+/w", 0)]) == (1, 0)
            message = await next_message(c)
            assert (message.topic, message.payload, message.retain) == ("api/ret", b"kept", True)
            await c.publish("api/ret", b"", qos=1, retain=True)  # clear it again
            await c.publish("api/x/w", "wild")
            assert (await next_message(c)).payload == b""
            assert (await next_message(c)).topic == "api/x/w"
            assert await c.unsubscribe("api/+/w") == (0,)  # MQTT 5 UNSUBACK: Success
    run(main())


@pytest.mark.parametrize("version, denied", [(4, 0x80), (5, 0x87)])
def test_subscribe_returns_refusal_codes_rather_than_raising(version: int, denied: int) -> None:
    # mosquitto 2.0 grants every subscription and applies its ACL at delivery, so the refusal
    # comes from mqttsim's own broker (issue #4: "a denied subscription gets 0x80").
    from mqttsim.net.server import ServerThread
    from mqttsim.protocol.auth import StaticUsers, TopicRules
    from mqttsim.protocol.broker import BrokerConfig

    thread = ServerThread(BrokerConfig(emit_packet_events=False),
                          auth=StaticUsers({"alice": "secret"}),
                          authz=TopicRules({"alice": [("allowed/#", "readwrite")]}))
    host, port = thread.start()
    try:
        async def main() -> tuple[int, ...]:
            async with Client(host, port, username="alice", password="secret",
                              version=version) as c:
                return await c.subscribe(["allowed/x", "secret/x"], qos=1)
        assert run(main()) == (1, denied)
    finally:
        thread.stop()


@pytest.mark.parametrize("version, code, reason", [
    (3, 5, "Connection Refused, not authorized"),
    (4, 5, "Connection Refused, not authorized"),
    (5, 0x87, "Not authorized"),
])
def test_refused_connection_raises_connection_refused(auth_broker: Broker, version: int,
                                                      code: int, reason: str) -> None:
    async def main() -> None:
        async with Client(auth_broker.host, auth_broker.port, client_id="intruder",
                          username="alice", password="wrong", version=version):
            raise AssertionError("connected with a wrong password")
    with pytest.raises(ConnectionRefused) as caught:
        run(main())
    assert (caught.value.reason_code, caught.value.reason) == (code, reason)
    assert reason in str(caught.value)


def test_keepalive_pings_without_being_asked(broker: Broker) -> None:
    seen: list = []

    def answered() -> bool:
        return any(isinstance(e, ev.PacketReceived) and isinstance(e.packet, Pingresp)
                   for e in seen)

    async def main() -> None:
        async with Client(broker.host, broker.port, keepalive=1, on_event=seen.append):
            deadline = asyncio.get_running_loop().time() + WAIT
            while not answered() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)  # until the first PINGRESP (about 1 s)
    run(main())
    sent = [e.t for e in seen if isinstance(e, ev.PacketSent) and isinstance(e.packet, Pingreq)]
    assert sent and answered()
    connect_sent = seen[0].t
    assert 0.99 <= sent[0] - connect_sent < 1.6  # one keepalive after the last packet sent


def test_messages_end_after_disconnect(broker: Broker) -> None:
    async def main() -> list[Message]:
        c = Client(broker.host, broker.port)
        await c.connect()
        await c.subscribe("api/end")
        await c.publish("api/end", "last")

        async def later() -> None:
            await asyncio.sleep(0.2)
            await c.disconnect()
        task = asyncio.create_task(later())
        got = [m async for m in c.messages]  # ends: no exception after a clean disconnect
        await task
        return got
    assert [m.payload for m in run(main())] == [b"last"]


def test_takeover_ends_messages_with_connection_lost(broker: Broker) -> None:
    async def main() -> None:
        async with Client(broker.host, broker.port, client_id="twin") as first:
            async with Client(broker.host, broker.port, client_id="twin"):
                with pytest.raises(ConnectionLost):
                    await next_message(first)
                with pytest.raises(ConnectionLost):
                    await first.publish("api/x", "too late")
    run(main())


def test_abort_publishes_the_will(broker: Broker) -> None:
    async def main() -> Message:
        async with Client(broker.host, broker.port) as watcher:
            await watcher.subscribe("api/will", qos=1)
            doomed = Client(broker.host, broker.port, will=Will("api/will", b"lost", qos=1))
            await doomed.connect()
            doomed.abort()
            await doomed.wait_closed()
            return await next_message(watcher)
    message = run(main())
    assert (message.topic, message.payload, message.qos) == ("api/will", b"lost", 1)


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_gets_queued_messages(broker: Broker, version: int) -> None:
    async def main() -> None:
        options = dict(client_id=f"keep{version}", clean_session=False, version=version,
                       session_expiry=300)
        c = Client(broker.host, broker.port, **options)
        async with c:
            await c.subscribe("api/keep", qos=1)
        async with Client(broker.host, broker.port, version=version) as pub:
            for payload in (b"a", b"b"):
                await pub.publish("api/keep", payload, qos=1)
        async with c:  # the same client connects again
            assert c.session_present
            assert [(await next_message(c)).payload for _ in range(2)] == [b"a", b"b"]
        async with Client(broker.host, broker.port, client_id=f"keep{version}",
                          version=version) as c:  # clean again: the session is dropped
            assert not c.session_present
    run(main())


def test_publish_before_connect_is_an_error() -> None:
    with pytest.raises(ConnectionLost):
        run(Client("127.0.0.1", 1).publish("t", "x"))


# ---------------------------------------------------------------------------------------------
# The blocking wrapper


def test_blocking_client_round_trip(broker: Broker) -> None:
    with BlockingClient(broker.host, broker.port, version=5) as c:
        assert c.client.client_id  # MQTT 5: the broker assigned one
        assert c.subscribe("api/block", qos=1) == (1,)
        assert c.publish("api/block", "one", qos=1) == 0
        c.publish("api/block", "two")
        got = c.messages(timeout=WAIT, count=2)
        assert [(m.payload, m.qos) for m in got] == [(b"one", 1), (b"two", 0)]
        began = time.monotonic()
        assert c.messages(timeout=0.3) == []
        assert time.monotonic() - began >= 0.3
    assert c.client.engine.state == "disconnected"


def test_blocking_client_refused(auth_broker: Broker) -> None:
    with pytest.raises(ConnectionRefused):
        with BlockingClient(auth_broker.host, auth_broker.port, username="alice",
                            password="nope"):
            pass


# ---------------------------------------------------------------------------------------------
# paho-mqtt on the other side


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_interop_with_paho(broker: Broker, version: int, qos: int) -> None:
    mqtt = pytest.importorskip("paho.mqtt.client")
    protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
    paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho{version}{qos}",
                       protocol=protocol)
    inbox: queue.Queue = queue.Queue()
    ready = threading.Event()
    paho.on_message = lambda client, userdata, msg: inbox.put(msg)
    paho.on_subscribe = lambda *args: ready.set()
    paho.connect(broker.host, broker.port)
    paho.loop_start()
    try:
        paho.subscribe(f"paho/to/{version}/{qos}", qos=2)
        assert ready.wait(WAIT)

        async def main() -> Message:
            async with Client(broker.host, broker.port, version=version) as ours:
                await ours.subscribe(f"paho/from/{version}/{qos}", qos=2)
                await ours.publish(f"paho/to/{version}/{qos}", b"ours", qos=qos)
                info = paho.publish(f"paho/from/{version}/{qos}", b"theirs", qos=qos)
                await asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish,
                                                                 WAIT)
                return await next_message(ours)
        message = run(main())
        assert (message.payload, message.qos) == (b"theirs", qos)
        received = inbox.get(timeout=WAIT)
        assert (received.topic, received.payload, received.qos) == \
            (f"paho/to/{version}/{qos}", b"ours", qos)
    finally:
        paho.disconnect()
        paho.loop_stop()
