"""The broker engine's ``$SYS/broker/...`` tree (broker_sys.py), on the engine's own clock.

Names and meanings follow mosquitto 2.0 (src/sys_tree.c, mosquitto(8) "Broker Status");
tests/net/test_sys_interop.py checks the names against Debian's mosquitto itself.
"""

from __future__ import annotations

import math

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import TopicRules
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig, BrokerStore
from mqttsim.protocol.packets import Puback, Publish

from support.peer import V5, Peer, advance, broker, of, online, persistent, publishes

S = "$SYS/broker/"


def tree(packets) -> dict[str, str]:
    return {p.topic: p.payload.decode() for p in publishes(packets)}


def started(**config):
    b = broker(**config)
    b.begin(0.0, "mqttsim version test")
    return b


def test_begin_publishes_the_version_and_the_tree_retained_at_qos_2():
    b = started()
    s = online(b, "watcher", ("$SYS/#", 0), now=1)
    got = {p.topic: p for p in s.after_suback}
    assert got[S + "version"].payload == b"mqttsim version test"
    assert got[S + "uptime"].payload == b"0 seconds"
    assert all(p.retain for p in got.values())
    [version] = online(b, "w2", (S + "version", 2), now=1).after_suback
    assert version.qos == 2  # as mosquitto's SYS_TREE_QOS
    assert S + "clients/maximum" not in got  # as mosquitto: only once a client came
    for name in ("clients/connected", "clients/total", "clients/disconnected",
                 "messages/received", "messages/sent", "messages/stored",
                 "publish/messages/dropped", "publish/messages/received",
                 "publish/messages/sent", "bytes/received", "bytes/sent",
                 "load/messages/received/1min", "load/bytes/received/15min",
                 "store/messages/count", "store/messages/bytes", "subscriptions/count",
                 "retained messages/count"):
        assert S + name in got, name


def test_MQTT_4_7_2_1_hash_does_not_see_sys_and_without_sys_interval_there_is_no_tree():
    b = started()
    everything = online(b, "all", ("#", 2), now=1)
    assert everything.after_suback == []
    advance(b, 30)
    assert publishes(everything.read()) == []
    quiet = broker(sys_interval=0)
    assert quiet.begin(0.0) == [] and quiet.next_deadline() is None
    assert online(quiet, "w", ("$SYS/#", 0)).after_suback == []


def test_counters_count_packets_and_bytes_as_mosquitto_does():
    b = started(sys_interval=10)
    pub = Peer(b, "pub", now=2)
    pub.connect("pub")
    pub.publish("a", b"12345", qos=1, packet_id=7)
    pub.publish("a", b"xy", qos=0)
    sub = online(b, "sub", ("a", 1), now=3)
    pub.publish("a", b"hello", qos=1, packet_id=8)
    sub.send(Puback(1))
    [update] = of(advance(b, 10), ev.SysTreeUpdated)
    values = update.as_dict()
    # packets in: pub CONNECT + 3 PUBLISH, sub CONNECT + SUBSCRIBE + PUBACK
    assert values[S + "messages/received"] == "7"
    assert values[S + "publish/messages/received"] == "3"
    # out: 2 CONNACK, 1 SUBACK, 2 PUBACK to pub, 1 PUBLISH to sub (the $SYS messages of
    # begin() went to no one: nobody had subscribed yet)
    assert values[S + "messages/sent"] == "6"
    assert values[S + "publish/messages/sent"] == "1"
    assert values[S + "clients/connected"] == "2" and values[S + "clients/total"] == "2"
    assert values[S + "subscriptions/count"] == "1"
    assert values[S + "load/sockets/1min"] != "0.00"


def test_bytes_received_and_sent_are_every_byte_on_the_wire():
    b = started()
    pub = Peer(b, "pub", now=1)
    pub.connect("pub")
    pub.publish("t", b"x" * 100, qos=1)
    advance(b, 10)
    values = b.sys_values(10)
    connect_bytes = 2 + 10 + 2 + len("pub")  # fixed header, variable header, client id
    publish_bytes = 2 + 2 + 1 + 2 + 100
    assert values[S + "bytes/received"] == str(connect_bytes + publish_bytes)
    assert values[S + "bytes/sent"] == str(sum(pub.sizes)) == "8"  # CONNACK + PUBACK


def test_uptime_and_only_changed_values_are_published_again():
    b = started(sys_interval=5)
    s = online(b, "w", ("$SYS/#", 0), now=1)
    advance(b, 5)
    first = tree(s.read())
    assert first[S + "uptime"] == "5 seconds"
    advance(b, 10)
    second = tree(s.read())
    assert second[S + "uptime"] == "10 seconds"  # every time
    assert S + "clients/total" not in second  # unchanged since the last update
    assert S + "version" not in second  # once, at start


def test_load_averages_follow_mosquittos_damped_rate():
    b = started(sys_interval=10)
    pub = Peer(b, "pub", now=0)
    pub.connect("pub")
    for n in range(30):
        pub.publish("t", b"x", now=1 + n * 0.1)
    advance(b, 10)
    values = b.sys_values(10)
    rate = 30 * 60 / 10  # PUBLISH packets per minute over the interval
    for suffix, period in (("1min", 60), ("5min", 300), ("15min", 900)):
        expected = rate * (1 - math.exp(-10 / period))
        assert values[S + f"load/publish/received/{suffix}"] == f"{expected:.2f}"
    advance(b, 20)  # a quiet interval: the 1-minute load decays by exp(-10/60)
    expected = rate * (1 - math.exp(-10 / 60)) * math.exp(-10 / 60)
    assert float(b.sys_values(20)[S + "load/publish/received/1min"]) == pytest.approx(
        expected, abs=0.01)


def test_queue_full_drops_show_in_publish_messages_dropped():
    b = started(max_queued_messages=2)
    persistent(b, "slow", ("q", 1)).lose(1)  # offline: its copies queue, at most 2
    pub = online(b, "pub", now=2)
    for n in range(5):
        pub.publish("q", b"%d" % n, qos=1, packet_id=n + 1)
    advance(b, 10)
    values = b.sys_values(10)
    assert values[S + "publish/messages/dropped"] == "3"
    retained = [m for _, m in b.retained.items()]  # the $SYS tree's own, as in mosquitto
    assert values[S + "retained messages/count"] == str(len(retained))
    assert values[S + "messages/stored"] == str(2 + len(retained))
    assert values[S + "store/messages/bytes"] == str(2 + sum(len(m.payload) for m in retained))
    assert values[S + "clients/disconnected"] == "1"


def test_the_tree_update_is_an_event_with_every_value():
    b = broker(sys_interval=10)
    events = b.begin(0.0)
    [update] = of(events, ev.SysTreeUpdated)
    assert update.as_dict()[S + "clients/total"] == "0"
    [later] = of(advance(b, 10), ev.SysTreeUpdated)
    assert later.t == 10 and later.as_dict()[S + "uptime"] == "10 seconds"


RULES = {"admin": [("#", "readwrite"), ("$SYS/#", "read")], "alice": [("alice/#", "readwrite")],
         "carol": [("$SYS/broker/clients/#", "read")]}


def test_sys_is_acl_checked_on_subscribe_live_and_retained():
    b = started(authz=TopicRules(RULES))
    admin = online(b, "admin", ("$SYS/#", 0), username="admin", version=V5, now=1)
    assert S + "uptime" in tree(admin.after_suback)
    alice = online(b, "alice", version=V5, username="alice", now=1)
    [suback] = alice.subscribe(("$SYS/#", 0), ("alice/#", 0))
    assert suback.reason_codes == (0x87, 0)
    carol = online(b, "carol", ("$SYS/#", 0), username="carol", version=V5, now=1)
    # carol may subscribe to nothing under $SYS/#; her one filter she may read:
    reply = carol.subscribe(("$SYS/broker/clients/#", 0), packet_id=2)
    assert reply[0].reason_codes == (0,)
    retained = tree(reply[1:])
    assert retained and all(t.startswith(S + "clients/") for t in retained)
    advance(b, 10)
    assert all(t.startswith(S + "clients/") for t in tree(carol.read()))
    assert publishes(alice.read()) == []


def test_clients_may_not_publish_under_sys():
    b = started(authz=TopicRules(RULES))
    watcher = online(b, "admin", ("$SYS/#", 0), username="admin", now=1, version=V5)
    faker = online(b, "faker", username="admin", version=V5, now=1)
    assert faker.publish(S + "uptime", b"fake", qos=1, retain=True) == [Puback(1, 0x87)]
    assert publishes(watcher.read()) == []
    assert b.retained.get(S + "uptime").payload != b"fake"


def test_sys_messages_are_never_written_to_the_store():
    class Recording(BrokerStore):
        def __init__(self):
            self.topics = []

        def retained_changed(self, topic, message):
            self.topics.append(topic)

    store = Recording()
    b = BrokerEngine(BrokerConfig(), store=store)
    b.begin(0.0)
    pub = online(b, "p", now=1)
    pub.publish("kept", b"1", retain=True)
    advance(b, 20)
    assert store.topics == ["kept"]


def test_sys_publish_is_a_publish_to_subscribers():
    b = started()
    s = online(b, "w", ("$SYS/broker/uptime", 1), now=1)
    [retained] = s.after_suback
    assert isinstance(retained, Publish) and retained.qos == 1 and retained.retain
