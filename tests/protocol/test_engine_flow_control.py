"""Flow control: slow subscribers slow publishers down instead of losing their messages.

Two mechanisms, both engine-level so every driver gets them: ``set_writable`` lets a driver
say a socket buffer is full (messages then wait in the bounded session queue, not in an
unbounded socket buffer), and acks to publishers are held back while a connected subscriber
they feed is congested (``BrokerConfig.hold_acks_when_congested``) — the publisher's own
in-flight window then stops it, so no acknowledged QoS 1/2 message is dropped for a
subscriber that is merely slower than its publisher.
"""

from __future__ import annotations

from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import Puback, Publish, Subscribe, Subscription
from support.peer import online, payloads, publishes


def broker(**config) -> BrokerEngine:
    return BrokerEngine(BrokerConfig(**config))


def slow_subscriber(b: BrokerEngine, qos: int = 1):
    sub = online(b, "sub")
    sub.send(Subscribe(1, (Subscription("t", qos),)))
    return sub


def publish_many(pub, count: int, qos: int = 1) -> list:
    """Publish ``count`` messages; returns the packet ids the broker acknowledged."""
    acked = []
    for n in range(count):
        replies = pub.send(Publish("t", b"%d" % n, qos, packet_id=n + 1))
        acked += [p.packet_id for p in replies if isinstance(p, Puback)]
    return acked


def fast_publisher_slow_subscriber(b: BrokerEngine, count: int = 40, window: int = 4):
    """A publisher that keeps ``window`` QoS 1 messages unacknowledged (as every MQTT client
    does) feeding a subscriber that acknowledges one message per round. Returns what the
    subscriber received and every drop the broker reported."""
    sub = slow_subscriber(b)
    pub = online(b, "pub")
    sent, unacked, got, todo = 0, set(), [], []
    for _ in range(20 * count):
        while sent < count and len(unacked) < window:
            sent += 1
            unacked.add(sent)
            replies = pub.send(Publish("t", b"%d" % sent, 1, packet_id=sent))
            unacked -= {p.packet_id for p in replies if isinstance(p, Puback)}
        todo += publishes(sub.read())
        if todo:
            msg = todo.pop(0)
            got.append(int(msg.payload))
            todo += publishes(sub.send(Puback(msg.packet_id)))
        unacked -= {p.packet_id for p in pub.read() if isinstance(p, Puback)}
        if sent == count and not unacked and not todo and len(got) >= count:
            break
    drops = [e for e in pub.events + sub.events if isinstance(e, ev.MessageDropped)]
    return got, drops


def test_acks_wait_while_a_connected_subscriber_is_congested_and_nothing_is_dropped():
    b = broker(max_queued_messages=8, max_inflight=2)  # holds at 4 queued, releases at 2
    got, drops = fast_publisher_slow_subscriber(b)
    assert drops == []
    assert got == list(range(1, 41))  # everything, once, in order
    assert not b._held_acks and not b._congested


def test_without_flow_control_the_same_publisher_overflows_the_queue_like_mosquitto():
    b = broker(max_queued_messages=8, max_inflight=2, hold_acks_when_congested=False)
    got, drops = fast_publisher_slow_subscriber(b)
    assert drops and {d.reason for d in drops} == {"queue_full"}
    assert len(got) == 40 - len(drops)


def test_an_offline_subscriber_never_holds_publishers_back():
    b = broker(max_queued_messages=4)
    sub = online(b, "sub", clean_session=False)
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    sub.lose()
    pub = online(b, "pub")
    assert publish_many(pub, 6) == list(range(1, 7))  # queued 4, dropped 2, all acknowledged
    drops = [e for e in pub.events + sub.events if isinstance(e, ev.MessageDropped)]
    assert [d.reason for d in drops] == ["queue_full"] * 2


def test_a_subscriber_going_offline_releases_the_acks_it_held():
    b = broker(max_queued_messages=8, max_inflight=2)
    sub = online(b, "sub", clean_session=False)
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    pub = online(b, "pub")
    assert publish_many(pub, 8) == [1, 2, 3, 4, 5]
    sub.lose()  # its session keeps the messages; publishers no longer wait for it
    assert [p.packet_id for p in pub.read() if isinstance(p, Puback)] == [6, 7, 8]


def test_a_publisher_that_disconnects_with_acks_held_resends_without_duplicates_at_qos2():
    b = broker(max_queued_messages=4, max_inflight=1)
    sub = slow_subscriber(b, qos=2)
    pub = online(b, "pub", clean_session=False)
    for n in range(4):
        pub.send(Publish("t", b"%d" % n, 2, packet_id=n + 1))
    pub.lose()
    again = online(b, "pub", clean_session=False)
    replies = again.send(Publish("t", b"3", 2, dup=True, packet_id=4))
    assert [type(p).__name__ for p in replies] in ([], ["Pubrec"])
    routed = [e for e in b.take_events() + again.events if isinstance(e, ev.MessageReceived)]
    assert routed == []  # the resent PUBLISH is recognised, not routed again [MQTT-4.3.3-2]


def test_a_full_socket_buffer_keeps_messages_in_the_bounded_queue():
    b = broker(max_queued_messages=3, hold_acks_when_congested=False)
    sub = slow_subscriber(b, qos=0)
    b.set_writable(sub.conn, False, 0.0)
    pub = online(b, "pub")
    for n in range(5):
        pub.send(Publish("t", b"%d" % n, 0))
    assert sub.read() == []  # nothing written while the socket is full
    drops = [e for e in pub.events if isinstance(e, ev.MessageDropped)]
    assert [d.reason for d in drops] == ["queue_full"] * 2
    b.set_writable(sub.conn, True, 1.0)
    assert payloads(sub.read()) == [b"0", b"1", b"2"]
