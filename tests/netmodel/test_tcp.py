"""The TCP model over the link model: loss becomes delay, until TCP gives up.

A tiny event loop carries segments over two ``LinkDirection``s (data one way, ACKs back),
so these tests are small stories with exact times, the way the simulator will use the model.
"""

from __future__ import annotations

import heapq
import random

import pytest

from mqttsim.netmodel import (HEADER_BYTES, LinkDirection, LinkParams, Outage, Segment,
                              TcpReceiver, TcpSender, syn_schedule)
from mqttsim.protocol import Decoder

from support.peer import V5, broker, online, publishes


class Wire:
    """Sender -> forward link -> receiver, ACKs -> back link -> sender."""

    def __init__(self, forward: LinkParams, back: LinkParams | None = None, drop=(), **sender):
        rng = random.Random(5)
        self.forward = LinkDirection(forward, rng)
        self.back = LinkDirection(back or LinkParams(latency=forward.latency), rng)
        self.sender, self.receiver = TcpSender(**sender), TcpReceiver()
        self.drop = set(drop)  # indexes of data transmissions to lose, counted from 0
        self.sent = 0
        self.events: list = []
        self.got = bytearray()
        self.arrivals: list[tuple[float, int]] = []  # (time, total bytes delivered)

    def put(self, now: float, segments: list[Segment]) -> None:
        for seg in segments:
            index, self.sent = self.sent, self.sent + 1
            fate = self.forward.send(now, seg.wire_size)
            if index not in self.drop and fate.arrival is not None:
                heapq.heappush(self.events, (fate.arrival, index, "data", seg))

    def run(self, until: float = 1e9) -> float:
        now = 0.0
        while True:
            timer = self.sender.next_deadline()
            nxt = self.events[0][0] if self.events else None
            if nxt is None and timer is None:
                return now
            if timer is not None and (nxt is None or timer < nxt):
                now = timer
                if now > until:
                    return now
                self.put(now, self.sender.on_timer(now))
                continue
            now, _, kind, item = heapq.heappop(self.events)
            if kind == "data":
                data, ack = self.receiver.on_segment(item)
                if data:
                    self.got += data
                    self.arrivals.append((now, len(self.got)))
                fate = self.back.send(now, HEADER_BYTES)
                if fate.arrival is not None:
                    heapq.heappush(self.events, (fate.arrival, -1, "ack", ack))
            else:
                self.put(now, self.sender.on_ack(item, now))


def test_lossless_stream_arrives_in_order_in_mss_segments():
    wire = Wire(LinkParams(latency=0.05), mss=1000)
    payload = bytes(range(256)) * 20  # 5120 bytes -> 6 segments
    wire.sender.write(payload)
    wire.put(0.0, wire.sender.poll(0.0))
    wire.run()
    assert bytes(wire.got) == payload
    assert wire.sent == 6 and wire.sender.retransmissions == 0 and wire.sender.idle
    assert wire.arrivals[-1][0] == pytest.approx(0.05)


def test_a_lost_segment_is_resent_after_the_initial_one_second_rto_as_delay_not_loss():
    wire = Wire(LinkParams(latency=0.05), drop={0})
    wire.sender.write(b"PUBLISH")
    wire.put(0.0, wire.sender.poll(0.0))
    wire.run()
    assert bytes(wire.got) == b"PUBLISH"
    assert wire.arrivals == [(pytest.approx(1.05), 7)]  # RTO 1 s, then 50 ms on the wire
    assert wire.sender.retransmissions == 1


def test_three_duplicate_acks_trigger_fast_retransmit_before_the_timer():
    wire = Wire(LinkParams(latency=0.05), drop={0}, mss=100)
    wire.sender.write(bytes(500))  # segment 0 lost, 1-4 arrive and each is dup-ACKed
    wire.put(0.0, wire.sender.poll(0.0))
    wire.run()
    assert len(wire.got) == 500
    done_at = wire.arrivals[-1][0]
    assert done_at == pytest.approx(0.15)  # third dup ACK at 0.1, resent segment lands 0.15
    assert wire.sender.retransmissions == 1


def test_rtt_samples_shape_the_rto_and_retransmissions_do_not_count():
    wire = Wire(LinkParams(latency=0.3), drop={1})
    for i in range(2):
        wire.sender.write(b"x" * 10)
        wire.put(i * 5.0, wire.sender.poll(i * 5.0))
        wire.run()
    assert wire.sender.rto.srtt == pytest.approx(0.6)  # only the first, clean round trip
    assert len(wire.got) == 20


def test_an_outage_longer_than_the_retry_budget_makes_tcp_give_up():
    # Linux reads tcp_retries2 as a time budget (tcp_timer.c, tcp_model_timeout): with 3,
    # (2^4 - 1) x 200 ms = 3 s after the first retransmission. Expiries at 1 s (the first
    # retransmission), 3 s (2 s on), 7 s (6 s on: over the budget, give up).
    wire = Wire(LinkParams(latency=0.01, outages=(Outage(0.0, 10_000.0),)), max_retransmits=3,
                tail_loss_probe=False)
    wire.sender.write(b"lost cause")
    wire.put(0.0, wire.sender.poll(0.0))
    end = wire.run()
    assert wire.sender.failed and wire.got == bytearray()
    assert end == pytest.approx(1 + 2 + 4)


def test_an_outage_shorter_than_the_budget_only_delays_the_data():
    wire = Wire(LinkParams(latency=0.01, outages=(Outage(0.0, 5.0),)), tail_loss_probe=False)
    wire.sender.write(b"late")
    wire.put(0.0, wire.sender.poll(0.0))
    wire.run()
    assert bytes(wire.got) == b"late" and not wire.sender.failed
    assert wire.arrivals[0][0] == pytest.approx(7.01)  # resends at 1, 3 and 7 s


def test_window_limits_unacknowledged_bytes():
    sender = TcpSender(mss=100, window=300)
    sender.write(bytes(1000))
    assert [len(s.data) for s in sender.poll(0.0)] == [100, 100, 100]
    assert sender.poll(0.0) == []
    assert [s.seq for s in sender.on_ack(100, 0.1)] == [300]


def test_only_pure_acks_count_as_duplicates_for_fast_retransmit():
    # RFC 5681, 2: a duplicate ACK carries no data. The peer's own data segments repeat the
    # same ACK while it talks; three of them must not resend anything.
    sender = TcpSender(mss=100)
    sender.write(bytes(400))
    sender.poll(0.0)
    assert sender.on_ack(100, 0.01) == []  # new data acknowledged
    for _ in range(3):
        assert sender.on_ack(100, 0.02, carries_data=True) == []
    assert sender.on_ack(100, 0.03) == [] and sender.on_ack(100, 0.03) == []
    [again] = sender.on_ack(100, 0.03)  # the third pure duplicate ACK
    assert again.seq == 100 and again.retransmission


def test_receiver_reassembles_overlapping_and_out_of_order_segments():
    receiver = TcpReceiver()
    assert receiver.on_segment(Segment(4, b"efgh")) == (b"", 0)
    assert receiver.on_segment(Segment(2, b"cdef")) == (b"", 0)
    assert receiver.on_segment(Segment(0, b"abc")) == (b"abcdefgh", 8)
    assert receiver.on_segment(Segment(0, b"abc")) == (b"", 8)  # an old duplicate


def test_syn_retries_follow_linux_defaults():
    # Linux 6.5+: four linear timeouts, then doubling; 6 + 4 retransmissions, then failure
    assert syn_schedule() == ([0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67], 131)
    # older kernels (tcp_syn_linear_timeouts absent, i.e. 0): tcp_model_timeout(6, 1 s)
    assert syn_schedule(linear_timeouts=0) == ([0, 1, 3, 7, 15, 31, 63], 127)
    assert syn_schedule(1.0, 2, 1) == ([0, 1, 2, 4], 8)


def test_close_sends_a_fin_after_the_data_and_the_receiver_sees_eof_in_order():
    wire = Wire(LinkParams(latency=0.05), drop={1}, mss=4)  # the FIN itself is lost once
    wire.sender.write(b"DISC")
    wire.sender.close()
    segments = wire.sender.poll(0.0)
    assert [(s.seq, s.data, s.fin) for s in segments] == [(0, b"DISC", False), (4, b"", True)]
    wire.put(0.0, segments)
    wire.run()
    assert bytes(wire.got) == b"DISC" and wire.receiver.eof
    assert wire.receiver.expected == 5  # the FIN took one sequence number
    assert wire.sender.closed and wire.sender.retransmissions == 1


def test_a_fin_that_overtakes_lost_data_waits_for_the_gap():
    receiver = TcpReceiver()
    assert receiver.on_segment(Segment(3, b"", fin=True)) == (b"", 0)
    assert not receiver.eof
    assert receiver.on_segment(Segment(0, b"abc")) == (b"abc", 4)
    assert receiver.eof


def test_nothing_can_be_written_after_close():
    sender = TcpSender()
    sender.close()
    with pytest.raises(ValueError, match="after close"):
        sender.write(b"x")


def test_after_a_timeout_the_other_lost_segments_follow_in_slow_start_not_one_timeout_each():
    # Three segments lost in a row (a full queue drops a burst): one timeout, then the
    # Loss state resends from snd_una as cwnd grows from 1 (tcp_enter_loss marks every
    # segment lost): 1 segment, then 2 -- not three timeouts each longer than the last.
    wire = Wire(LinkParams(latency=0.05), drop={0, 1, 2}, mss=10, tail_loss_probe=False)
    wire.sender.write(b"a" * 30)
    wire.put(0.0, wire.sender.poll(0.0))
    end = wire.run()
    assert bytes(wire.got) == b"a" * 30
    assert wire.sender.retransmissions == 3
    # 1 s timeout, resend the first (0.05 s there, its ACK 0.05 s back: cwnd 2), then
    # the other two together: they arrive 0.05 s later, their ACK is back 0.05 s after.
    assert wire.arrivals[-1][0] == pytest.approx(1.0 + 0.1 + 0.05)
    assert end == pytest.approx(1.0 + 0.1 + 0.1)


def test_send_makes_the_same_segments_as_write_then_poll():
    fast, slow = TcpSender(mss=10, window=25), TcpSender(mss=10, window=25)
    for chunk in (b"a" * 4, b"b" * 10, b"c" * 12, b"d" * 3):
        got = fast.send(chunk, 0.0)
        slow.write(chunk)
        assert [(s.seq, s.data) for s in got] == [(s.seq, s.data) for s in slow.poll(0.0)]
    # The window stopped both alike: the last 2 bytes do not fit the 1 byte left, and
    # Linux sends a segment only when it fits whole (tcp_output.c, tcp_snd_wnd_test).
    assert fast.in_flight == slow.in_flight == 24
    assert fast.next_deadline() == slow.next_deadline() == 1.0


# --------------------------------------------------------------------------------------
# MQTT-4.2.0-1: the transport the engines are given is an ordered, lossless byte stream
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_2_0_1_the_tcp_model_gives_the_engines_an_ordered_lossless_stream():
    """The simulator's transport (mqttsim.netmodel.tcp) over a channel that loses a third of
    the segments and reorders the rest: the subscriber's decoder still reads exactly the
    packets the broker wrote, in order."""
    b = broker()
    s = online(b, "s", ("t", 0), version=V5)
    pub = online(b, "p", version=V5)
    for n in range(200):
        pub.publish("t", b"m%03d" % n * (1 + n % 7))  # QoS 0: no window holds any back
    data, _ = b.take_output(s.conn)
    sent = Decoder(V5).feed(data)
    sender, receiver, rng = TcpSender(mss=100, window=1000), TcpReceiver(), random.Random(7)
    sender.write(data)
    got, now, in_flight = bytearray(), 0.0, sender.poll(0.0)
    while len(got) < len(data) and now < 10_000:
        rng.shuffle(in_flight)
        acks = []
        for segment in in_flight:
            if rng.random() < 1 / 3:
                continue  # lost
            delivered, ack = receiver.on_segment(segment)
            got += delivered
            acks.append(ack)
        in_flight = []
        for ack in acks:
            in_flight += sender.on_ack(ack, now)
        now = sender.next_deadline() or now + 1
        in_flight += sender.on_timer(now) + sender.poll(now)
    assert sender.retransmissions > 0  # segments really were lost
    assert bytes(got) == data
    assert Decoder(V5).feed(bytes(got)) == sent and len(publishes(sent)) == 200
