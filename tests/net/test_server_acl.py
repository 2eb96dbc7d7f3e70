"""Issue 13's three ways to reach the wrong user, on real sockets, beside mosquitto 2.0.

The issue's exact setup (``allow_anonymous false``, a password file with admin/alice/bob, its
ACL) runs on ``mqttsim.net.server`` (read through mosquitto.conf parsing, as ``mqttsim broker
-c`` does) and on Debian's mosquitto with the same files, with paho-mqtt and our own client.
Neither broker may deliver anything in the three stories. Where they differ the test says so:
mqttsim refuses a will it may not publish at CONNECT (return code 5), mosquitto 2.0.11 accepts
it and drops it when it would be published; mqttsim gives another user a fresh session
(session present 0), mosquitto resumes it and filters its queue through the new user's ACL.

"Never arrives" is not checked by listening a while: the subscriber publishes a marker to
itself after the forbidden message had its chance, and takes what came before the marker.
MQTT itself orders messages only per topic and publisher [MQTT-4.6.0-6], so the marker rests
on what both brokers do, and each test says which: they queue the retained messages of a
subscription, and a resumed session's messages, while they handle the SUBSCRIBE or CONNECT,
handle one connection's packets in the order they arrive, and write each connection's
packets to its TCP stream in the order they queued them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from mqttsim.net.client import BlockingClient, ConnectionRefused
from mqttsim.net.config import load_config
from mqttsim.net.server import ServerThread
from mqttsim.protocol.packets import Will
from support.classroom_acl import PASSWORDS, classroom_files
from support.mosquitto import mosquitto_broker

mqtt = pytest.importorskip("paho.mqtt.client")

WAIT = 5.0  # seconds at most for what must arrive (a marker, an acknowledgement)
MARKER = b"MARKER"


@dataclass(frozen=True)
class Broker:
    kind: str
    port: int
    # Has the broker handled the end of this client's connection (and so its will)?
    connection_over: Callable[[str], bool]

    def wait_connection_over(self, client_id: str) -> None:
        deadline = time.monotonic() + WAIT
        while not self.connection_over(client_id):
            assert time.monotonic() < deadline, f"{self.kind} still has {client_id}'s connection"
            time.sleep(0.01)


@pytest.fixture(params=["mqttsim", "mosquitto"])
def broker(request, tmp_path):
    """A broker with the issue's password file and ACL."""
    files = classroom_files(tmp_path)
    if request.param == "mosquitto":
        with mosquitto_broker(tmp_path / "mosquitto", files) as running:
            # mosquitto logs the end of a connection ("Client alice closed its connection.",
            # "Socket error on client alice, disconnecting.") in the step that sends its will.
            def logged_over(client_id: str) -> bool:
                return re.search(rf"[Cc]lient {re.escape(client_id)}[ ,.][^\n]*"
                                 r"(closed its connection|disconnect)", running.log()) is not None

            yield Broker("mosquitto", running.port, logged_over)
        return
    conf = tmp_path / "mqttsim.conf"
    conf.write_text("listener 0 127.0.0.1\n" + files)
    settings = load_config(conf)
    thread = ServerThread(settings.config, auth=settings.auth, authz=settings.authz)
    with thread as (_, port):
        # The engine publishes a will when it drops the connection from ``connections``; a
        # refused CONNECT leaves the connection without a client id until it is dropped.
        def engine_over(client_id: str) -> bool:
            return thread.call(lambda: all(
                c.client_id not in (client_id, None)
                for c in thread.server.engine.connections.values()))

        yield Broker("mqttsim", port, engine_over)


class Paho:
    """A paho-mqtt client that records what it receives."""

    def __init__(self, port: int, client_id: str, user: str, clean: bool = True):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.session_present = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, m.payload, bool(m.retain)))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), f"{client_id} did not connect"

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties):
        assert not reason_code.is_failure, reason_code
        self.session_present = flags.session_present
        self.connected.set()

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic_filter, qos)
        assert self.subscribed.wait(WAIT)

    def until_marker(self, topic: str) -> list[tuple[str, bytes, bool]]:
        """Publish a marker to ``topic`` (which this client subscribes to) and return what
        arrived before it comes back."""
        self.client.publish(topic, MARKER, qos=1)
        deadline = time.monotonic() + WAIT
        while True:
            got = list(self.messages)
            for index, (arrived_topic, payload, _) in enumerate(got):
                if (arrived_topic, payload) == (topic, MARKER):
                    return got[:index]
            assert time.monotonic() < deadline, f"no marker on {topic}; got {got}"
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def paho(port, client_id, user, clean=True):
    client = Paho(port, client_id, user, clean)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def ours(port, client_id, user, **options):
    client = BlockingClient("127.0.0.1", port, client_id=client_id, username=user,
                            password=PASSWORDS[user], **options)
    try:
        yield client
    finally:
        client.close()


def ours_until_marker(client: BlockingClient, topic: str) -> list[tuple[str, bytes]]:
    """``Paho.until_marker`` for our client."""
    client.publish(topic, MARKER, qos=1)
    got = []
    while True:
        [message] = client.messages(timeout=WAIT, count=1) or [None]
        assert message is not None, f"no marker on {topic}; got {got}"
        if (message.topic, message.payload) == (topic, MARKER):
            return got
        got.append((message.topic, message.payload))


def admin_publishes(port, *messages) -> None:
    with ours(port, "admin-pub", "admin") as admin:
        admin.connect()
        for topic, payload, retain in messages:
            admin.publish(topic, payload, qos=1, retain=retain)


@pytest.mark.parametrize("client", ["paho", "mqttsim"])
@pytest.mark.parametrize("topic_filter", ["public/#", "public/+/ret", "public/+/+"])
def test_retained_message_alice_may_not_read_is_not_sent_on_subscribe(broker, topic_filter,
                                                                      client):
    port = broker.port
    admin_publishes(port, ("public/secret/ret", b"SECRET", True),
                    ("public/news/ret", b"NEWS", True))
    # Both brokers queue a subscription's retained messages while they handle the SUBSCRIBE,
    # so they come before the marker alice publishes after its SUBACK.
    if client == "paho":
        with paho(port, "alice-sub", "alice") as alice:
            alice.subscribe("alice/marker")
            alice.subscribe(topic_filter)
            got = [(topic, payload) for topic, payload, _ in alice.until_marker("alice/marker")]
    else:
        with ours(port, "alice-sub", "alice") as alice:
            alice.connect()
            assert alice.subscribe("alice/marker", qos=1) == (1,)
            assert alice.subscribe(topic_filter, qos=1) == (1,)
            got = ours_until_marker(alice, "alice/marker")
    assert got == [("public/news/ret", b"NEWS")]


def test_will_on_bobs_topic_never_reaches_bob(broker):
    kind, port = broker.kind, broker.port
    with paho(port, "bob", "bob") as bob:
        bob.subscribe("bob/#")
        alice = BlockingClient("127.0.0.1", port, client_id="alice", username="alice",
                               password=PASSWORDS["alice"],
                               will=Will("bob/cmd", b"ALICE-WILL", 1, True))
        try:
            if kind == "mqttsim":  # refused at CONNECT: the client learns why at once
                with pytest.raises(ConnectionRefused) as refused:
                    alice.connect()
                assert refused.value.reason_code == 5
            else:  # mosquitto 2.0.11 accepts it and drops it at publication
                alice.connect()
                alice._loop.call_soon_threadsafe(alice.client.abort)  # no DISCONNECT: will due
        finally:
            alice.close()
        # Once the broker has handled the end of alice's connection, a will, had it been
        # published, is queued for bob before the broker reads bob's marker.
        broker.wait_connection_over("alice")
        assert bob.until_marker("bob/marker") == []
    with paho(port, "bob-2", "bob") as bob:  # and it was not stored as retained either
        bob.subscribe("bob/#")  # (retained messages are queued with the SUBACK, as above)
        assert bob.until_marker("bob/marker") == []


@pytest.mark.parametrize("client", ["paho", "mqttsim"])
def test_bob_resuming_alices_persistent_session_receives_nothing_of_hers(broker, client):
    kind, port = broker.kind, broker.port
    with paho(port, "alice-persist", "alice", clean=False) as alice:
        alice.subscribe("alice/#")
    admin_publishes(port, ("alice/private", b"ALICE-ONLY", False))
    # A resumed session's messages are queued while the broker handles the CONNECT, so
    # before the SUBACK of bob's first SUBSCRIBE and the marker after it.
    if client == "paho":
        with paho(port, "alice-persist", "bob", clean=False) as bob:
            bob.subscribe("bob/marker")
            got, present = bob.until_marker("bob/marker"), bob.session_present
    else:
        with ours(port, "alice-persist", "bob", clean_session=False) as bob:
            present = bob.connect().session_present
            assert bob.subscribe("bob/marker", qos=1) == (1,)
            got = ours_until_marker(bob, "bob/marker")
    assert got == []
    # mqttsim: the session was alice's, bob gets a fresh one; mosquitto resumes it, filtered
    assert present is (kind == "mosquitto")
