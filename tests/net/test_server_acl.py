"""Issue 13's three ways to reach the wrong user, on real sockets, beside mosquitto 2.0.

The issue's exact setup (``allow_anonymous false``, a password file with admin/alice/bob, its
ACL) runs on ``mqttsim.net.server`` (read through mosquitto.conf parsing, as ``mqttsim broker
-c`` does) and on Debian's mosquitto with the same files, with paho-mqtt and our own client.
Neither broker may deliver anything in the three stories. Where they differ the test says so:
mqttsim refuses a will it may not publish at CONNECT (return code 5), mosquitto 2.0.11 accepts
it and drops it when it would be published; mqttsim gives another user a fresh session
(session present 0), mosquitto resumes it and filters its queue through the new user's ACL.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from mqttsim.net.client import BlockingClient, ConnectionRefused
from mqttsim.net.config import load_config
from mqttsim.net.server import ServerThread
from mqttsim.protocol.packets import Will
from support.classroom_acl import PASSWORDS, classroom_files
from support.mosquitto import mosquitto_broker

mqtt = pytest.importorskip("paho.mqtt.client")

QUIET = 0.6  # seconds a subscriber listens for what must not arrive


@pytest.fixture(params=["mqttsim", "mosquitto"])
def broker(request, tmp_path):
    """(kind, port) of a broker with the issue's password file and ACL."""
    files = classroom_files(tmp_path)
    if request.param == "mosquitto":
        with mosquitto_broker(tmp_path / "mosquitto", files) as running:
            yield "mosquitto", running.port
        return
    conf = tmp_path / "mqttsim.conf"
    conf.write_text("listener 0 127.0.0.1\n" + files)
    settings = load_config(conf)
    with ServerThread(settings.config, auth=settings.auth, authz=settings.authz) as (_, port):
        yield "mqttsim", port


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
        assert self.subscribed.wait(5)

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


def admin_publishes(port, *messages) -> None:
    with ours(port, "admin-pub", "admin") as admin:
        admin.connect()
        for topic, payload, retain in messages:
            admin.publish(topic, payload, qos=1, retain=retain)


@pytest.mark.parametrize("client", ["paho", "mqttsim"])
@pytest.mark.parametrize("topic_filter", ["public/#", "public/+/ret", "public/+/+"])
def test_retained_message_alice_may_not_read_is_not_sent_on_subscribe(broker, topic_filter,
                                                                      client):
    _, port = broker
    admin_publishes(port, ("public/secret/ret", b"SECRET", True),
                    ("public/news/ret", b"NEWS", True))
    if client == "paho":
        with paho(port, "alice-sub", "alice") as alice:
            alice.subscribe(topic_filter)
            time.sleep(QUIET)
            got = [(topic, payload) for topic, payload, _ in alice.messages]
    else:
        with ours(port, "alice-sub", "alice") as alice:
            alice.connect()
            assert alice.subscribe(topic_filter, qos=1) == (1,)
            got = [(m.topic, m.payload) for m in alice.messages(timeout=QUIET)]
    assert got == [("public/news/ret", b"NEWS")]


def test_will_on_bobs_topic_never_reaches_bob(broker):
    kind, port = broker
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
        time.sleep(QUIET)
        assert bob.messages == []
    with paho(port, "bob-2", "bob") as bob:  # and it was not stored as retained either
        bob.subscribe("bob/#")
        time.sleep(QUIET)
        assert bob.messages == []


@pytest.mark.parametrize("client", ["paho", "mqttsim"])
def test_bob_resuming_alices_persistent_session_receives_nothing_of_hers(broker, client):
    kind, port = broker
    with paho(port, "alice-persist", "alice", clean=False) as alice:
        alice.subscribe("alice/#")
    admin_publishes(port, ("alice/private", b"ALICE-ONLY", False))
    if client == "paho":
        with paho(port, "alice-persist", "bob", clean=False) as bob:
            time.sleep(QUIET)
            got, present = bob.messages, bob.session_present
    else:
        with ours(port, "alice-persist", "bob", clean_session=False) as bob:
            present = bob.connect().session_present
            got = bob.messages(timeout=QUIET)
    assert got == []
    # mqttsim: the session was alice's, bob gets a fresh one; mosquitto resumes it, filtered
    assert present is (kind == "mosquitto")
