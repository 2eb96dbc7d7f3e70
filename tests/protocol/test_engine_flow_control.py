"""Flow control and slow subscribers: one stuck subscriber never stalls the others.

By default (as mosquitto) each subscriber has a bounded queue (``max_queued_messages``,
``max_queued_bytes``): when it is full, the message is dropped for *that* subscriber only,
reported (``MessageDropped`` "queue_full") and counted (``BrokerEngine.drops``), while the
publisher keeps receiving its acks and the other subscribers their messages. ``set_writable``
lets a driver say a socket buffer is full, so messages wait in that bounded queue rather
than in an unbounded socket buffer.

``hold_acks_when_congested`` (opt-in, for the lab's experiments) holds a publisher's acks
while a connected subscriber it feeds is congested, so the publisher's own in-flight window
slows it down instead of the subscriber's queue overflowing; bounded in time and count, so a
subscriber that never reads cannot stall a publisher for ever (issue 13).
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
    b = broker(max_queued_messages=8, max_inflight=2,  # holds at 4 queued, releases at 2
               hold_acks_when_congested=True)
    got, drops = fast_publisher_slow_subscriber(b)
    assert drops == []
    assert got == list(range(1, 41))  # everything, once, in order
    assert not b._held_acks and not b._congested


def test_by_default_the_same_publisher_overflows_the_queue_like_mosquitto():
    b = broker(max_queued_messages=8, max_inflight=2)
    got, drops = fast_publisher_slow_subscriber(b)
    assert drops and {d.reason for d in drops} == {"queue_full"}
    assert len(got) == 40 - len(drops)


def test_an_offline_subscriber_never_holds_publishers_back():
    b = broker(max_queued_messages=4, hold_acks_when_congested=True)
    sub = online(b, "sub", clean_start=False)
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    sub.lose()
    pub = online(b, "pub")
    assert publish_many(pub, 6) == list(range(1, 7))  # queued 4, dropped 2, all acknowledged
    drops = [e for e in pub.events + sub.events if isinstance(e, ev.MessageDropped)]
    assert [d.reason for d in drops] == ["queue_full"] * 2


def test_a_subscriber_going_offline_releases_the_acks_it_held():
    b = broker(max_queued_messages=8, max_inflight=2, hold_acks_when_congested=True)
    sub = online(b, "sub", clean_start=False)
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    pub = online(b, "pub")
    assert publish_many(pub, 8) == [1, 2, 3, 4, 5]
    sub.lose()  # its session keeps the messages; publishers no longer wait for it
    assert [p.packet_id for p in pub.read() if isinstance(p, Puback)] == [6, 7, 8]


def test_a_publisher_that_disconnects_with_acks_held_resends_without_duplicates_at_qos2():
    b = broker(max_queued_messages=4, max_inflight=1, hold_acks_when_congested=True)
    sub = slow_subscriber(b, qos=2)
    pub = online(b, "pub", clean_start=False)
    for n in range(4):
        pub.send(Publish("t", b"%d" % n, 2, packet_id=n + 1))
    pub.lose()
    again = online(b, "pub", clean_start=False)
    replies = again.send(Publish("t", b"3", 2, dup=True, packet_id=4))
    assert [type(p).__name__ for p in replies] in ([], ["Pubrec"])
    routed = [e for e in b.take_events() + again.events if isinstance(e, ev.MessageReceived)]
    assert routed == []  # the resent PUBLISH is recognised, not routed again [MQTT-4.3.3-2]


def test_a_full_socket_buffer_keeps_messages_in_the_bounded_queue():
    b = broker(max_queued_messages=3)
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


# -- one stuck subscriber (issue 13) ---------------------------------------------------------

def stuck_and_good(b: BrokerEngine, count: int, qos: int = 1):
    """A subscriber to # that never acknowledges (its window fills, then its queue), a good
    one on the same topic that acknowledges everything, and a publisher that never waits for
    its acks. Returns (acks the publisher got, payloads the good one got, stuck peer)."""
    stuck = online(b, "stuck")
    stuck.send(Subscribe(1, (Subscription("#", qos),)))
    good = online(b, "good")
    good.send(Subscribe(1, (Subscription("t", qos),)))
    pub = online(b, "pub")
    acked, got = [], []
    for n in range(count):
        replies = pub.send(Publish("t", b"%d" % n, 1, packet_id=n % 65535 + 1), now=n * 0.01)
        acked += [p.packet_id for p in replies if isinstance(p, Puback)]
        for msg in publishes(good.read()):
            got.append(int(msg.payload))
            good.send(Puback(msg.packet_id), now=n * 0.01)
    return acked, got, stuck


def test_one_stuck_subscriber_drops_its_own_copies_and_stalls_no_one():
    b = broker(max_inflight=20, max_queued_messages=100)
    acked, got, stuck = stuck_and_good(b, 1000)
    assert len(acked) == 1000  # the publisher flows: every PUBACK, at once
    assert got == list(range(1000))  # the good subscriber: everything, in order
    assert len(publishes(stuck.read())) == 20  # its window; then 100 queued; the rest dropped
    assert b.drop_counts("queue_full") == {"stuck": 1000 - 20 - 100}
    assert sum(b.drop_counts().values()) == 880
    assert len(b.sessions["stuck"].flow.queue) == 100


def test_max_queued_bytes_bounds_the_queue_by_payload_size():
    b = broker(max_inflight=1, max_queued_messages=None, max_queued_bytes=1000)
    sub = slow_subscriber(b)
    pub = online(b, "pub")
    for n in range(50):
        pub.send(Publish("t", b"x" * 100, 1, packet_id=n + 1))
    flow = b.sessions["sub"].flow
    # one in flight, then 10 x 100 bytes queued (a message joins while fewer than 1000
    # bytes wait, as in mosquitto), the other 39 dropped for this subscriber
    assert len(publishes(sub.read())) == 1
    assert (len(flow.queue), flow.queued_bytes) == (10, 1000)
    assert b.drop_counts() == {"sub": 39}
    sub.send(Puback(1))
    assert flow.queued_bytes == 900  # the count follows the queue as it drains


def test_held_acks_are_bounded_in_count():
    b = broker(max_inflight=20, max_queued_messages=100, hold_acks_when_congested=True,
               hold_acks_max_count=10, hold_acks_max_time=1000.0)
    acked, got, _ = stuck_and_good(b, 1000)
    assert 1000 - len(acked) == 10  # never more than 10 waiting, whatever the publisher does
    assert len(b._held_acks[next(iter(b._held_acks))]) == 10
    assert got == list(range(1000))


def test_held_acks_are_bounded_in_time():
    b = broker(max_inflight=2, max_queued_messages=8, hold_acks_when_congested=True,
               hold_acks_max_time=2.0)
    slow_subscriber(b)  # never acknowledges: congested as soon as its queue reaches 4
    pub = online(b, "pub")
    assert publish_many(pub, 8) == [1, 2, 3, 4, 5]  # congested at 4 queued: 6..8 wait
    assert b.next_deadline() == 2.0
    b.on_timer(1.9)
    assert pub.read() == []
    b.on_timer(2.0)
    assert [p.packet_id for p in pub.read() if isinstance(p, Puback)] == [6, 7, 8]
    assert not b._held_acks


def test_next_to_send_keeps_to_the_window_but_lets_qos0_pass():
    """The queue is sent in order while the window has room: a QoS 0 message is never held
    by a full window [MQTT-3.3.4-7/9], a QoS 1 one is, and its bytes leave the count."""
    from mqttsim.protocol.flows import OutgoingFlow, OutMessage
    flow = OutgoingFlow(window=1, max_queued_bytes=100)
    for topic, qos in (("a", 1), ("b", 0), ("c", 1), ("d", 0)):
        assert flow.hold(OutMessage(topic, b"xyz", qos), online=True) is None
    first = flow.next_to_send()
    assert first.topic == "a" and flow.queued_bytes == 9
    flow.admit(first, 0.0)  # the window of one is now full
    assert flow.next_to_send().topic == "b"
    assert flow.next_to_send() is None  # "c" (QoS 1) waits, and "d" behind it
    assert [m.topic for m in flow.queue] == ["c", "d"] and flow.queued_bytes == 6
    flow.on_puback(first.packet_id)
    assert [flow.next_to_send().topic, flow.next_to_send().topic] == ["c", "d"]
    assert flow.next_to_send() is None and flow.queued_bytes == 0
