"""Failures that must stay local, and the client's side of MQTT 5 server limits.

A broker serves many clients: an authenticator or store that fails while one client's
packet is processed must close that connection only [MQTT-4.8.0-2], and nobody else may
notice. The client half checks what an MQTT 5 client does with limits the server announced
in CONNACK, including topic aliases across reconnects [MQTT-3.3.2-7].
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerStore
from mqttsim.protocol.client import ClientConfig
from mqttsim.protocol.errors import ProtocolError
from mqttsim.protocol.packets import Connect, Publish, Subscribe, Subscription
from mqttsim.protocol.properties import Properties
from support.peer import Peer, Server, of, online, payloads
from support.pipe import Pipe


class FlakyAuth:
    """Accepts everyone except client ids starting with 'flaky', where the backend fails."""

    def authenticate(self, client_id, username, password) -> int:
        if client_id.startswith("flaky"):
            raise OSError("password database unreachable")
        return 0


class FlakyStore(BrokerStore):
    """A store whose disk is full when a retained message arrives."""

    def retained_changed(self, topic, message) -> None:
        raise OSError("disk full")


def test_v311_MQTT_4_8_0_2_transient_error_closes_only_that_connection():
    broker = BrokerEngine(auth=FlakyAuth())
    sub = online(broker, "sub")
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    flaky = Peer(broker, "flaky-conn")
    assert flaky.send(Connect("flaky-1")) == []  # no CONNACK: the connection just closes
    [closed] = flaky.closes()
    assert (closed.reason, closed.rule) == ("transient_error", "MQTT-4.8.0-2")
    assert "OSError: password database unreachable" in closed.detail
    assert flaky.closed
    # Everyone else carries on.
    pub = online(broker, "pub")
    pub.send(Publish("t", b"still here", 1, packet_id=3))
    assert payloads(sub.read()) == [b"still here"]
    assert not sub.closes() and not pub.closes()


def test_v311_store_failure_on_a_retained_publish_closes_the_publisher_only():
    broker = BrokerEngine(store=FlakyStore())
    sub = online(broker, "sub")
    sub.send(Subscribe(1, (Subscription("t", 0),)))
    bad = online(broker, "bad", will=None)
    bad.send(Publish("t", b"kept?", 1, retain=True, packet_id=1))
    [closed] = bad.closes()
    assert closed.reason == "transient_error" and "disk full" in closed.detail
    good = online(broker, "good")
    good.send(Publish("t", b"plain", 0))
    assert payloads(sub.read())[-1] == b"plain" and not sub.closes()


def test_v5_transient_error_sends_disconnect_0x80_before_closing():
    broker = BrokerEngine(store=FlakyStore())
    peer = online(broker, "c", version=5)
    replies = peer.send(Publish("t", b"x", 0, retain=True))
    assert [type(p).__name__ for p in replies] == ["Disconnect"]
    assert replies[0].reason_code == 0x80 and peer.closed


# -- the client and what the server announced in CONNACK ----------------------------------

def test_v5_MQTT_3_3_2_7_aliases_shorten_the_topic_and_do_not_outlive_the_connection():
    srv = Server(clean_session=False, session_expiry=60)
    srv.start()
    srv.accept(topic_alias_maximum=2)
    c = srv.client
    c.publish("sensors/kitchen/temperature", b"21", 1, properties=Properties(topic_alias=1))
    c.publish("", b"22", 1, properties=Properties(topic_alias=1))  # the alias alone
    first, second = srv.read()
    assert (first.topic, first.properties.topic_alias) == ("sensors/kitchen/temperature", 1)
    assert (second.topic, second.properties.topic_alias) == ("", 1)
    # The connection breaks before the PUBACKs: the resends carry the full topic, no alias.
    srv.lose(1.0)
    srv.start(2.0)
    resent = srv.accept(session_present=True, topic_alias_maximum=2)
    assert [(p.topic, p.dup, p.properties.topic_alias) for p in resent] == [
        ("sensors/kitchen/temperature", True, None)] * 2


def test_v5_alias_without_a_known_topic_is_refused_at_publish():
    srv = Server()
    srv.start()
    srv.accept(topic_alias_maximum=4)
    with pytest.raises(ProtocolError) as err:
        srv.client.publish("", b"x", 0, properties=Properties(topic_alias=3))
    assert err.value.rule == "MQTT-3.3.2-9"


def test_v5_messages_queued_before_connack_above_the_servers_limits_are_dropped_with_reasons():
    srv = Server()
    srv.start()
    srv.client.publish("t", b"two", 2)
    srv.client.publish("t", b"kept", 1, retain=True)
    srv.client.publish("t", b"fine", 1)
    sent = srv.accept(maximum_qos=1, retain_available=0)
    assert [p.payload for p in sent] == [b"fine"]
    assert [d.reason for d in of(srv.events, ev.MessageDropped)] == [
        "qos_not_supported", "retain_not_supported"]


def test_clean_publisher_reconnecting_after_pubrec_reports_no_loss():
    """A QoS 2 message past PUBREC belongs to the broker: discarding the client's session
    (clean session) must not report it lost — the subscriber still gets it once."""
    pipe = Pipe()
    sub = pipe.add_client("sub", ClientConfig("sub", clean_session=False))
    pub = pipe.add_client("pub", ClientConfig("pub"))
    pipe.run(0)
    sub.subscribe("t", 0, qos=2)
    pipe.run(0)
    pub.publish("t", b"once", 2, now=1)
    while not any(isinstance(e, ev.PacketReceived) and type(e.packet).__name__ == "Pubrec"
                  for e in pipe.of(ev.PacketReceived, "pub")):
        assert pipe.step(1)
    pipe.cut("pub", 1)
    pipe.connect("pub", 2)
    pipe.run(2)
    assert [m.payload for m in pipe.of(ev.MessageReceived, "sub")] == [b"once"]
    assert pipe.of(ev.MessageDropped, "pub") == []


def test_v311_MQTT_3_1_3_6_assigned_ids_never_collide_with_a_restored_session():
    """A broker restarted from disk numbers assigned ids from 1 again: it must skip ids
    that stored sessions hold, or a new anonymous client would take one over."""
    broker = BrokerEngine()
    first = online(broker, "", clean_start=True)
    [connected] = [e for e in first.events if isinstance(e, ev.Connected)]
    assert connected.client_id == "auto-1"
    restarted = BrokerEngine()
    stored = broker.sessions["auto-1"]
    restarted.restore([stored], [])
    newcomer = online(restarted, "")
    [again] = [e for e in newcomer.events if isinstance(e, ev.Connected)]
    assert again.client_id != "auto-1"
