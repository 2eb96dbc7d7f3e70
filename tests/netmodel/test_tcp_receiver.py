"""The receiving half: SACK blocks (RFC 2018), D-SACK (RFC 2883), the timestamp to echo
(RFC 7323 4.3), and Linux's delayed-ACK machine (tcp_input.c, tcp_output.c, tcp_timer.c)."""

from __future__ import annotations

import pytest

from mqttsim.netmodel import DelayedAck, Segment, TcpReceiver


def test_sack_blocks_name_the_latest_arrival_first_then_the_others():
    r = TcpReceiver()
    r.on_segment(Segment(100, bytes(100)))
    r.on_segment(Segment(300, bytes(100)))
    r.on_segment(Segment(200, bytes(100)))  # joins the two: one block 100-400
    r.on_segment(Segment(600, bytes(100)))
    assert r.sack_blocks() == ((600, 700), (100, 400))
    r.on_segment(Segment(800, bytes(50)))
    assert r.sack_blocks() == ((800, 850), (600, 700), (100, 400))
    r.on_segment(Segment(1000, bytes(50)))
    assert len(r.sack_blocks()) == 3 and r.sack_blocks()[0] == (1000, 1050)  # 3 beside TS
    assert r.on_segment(Segment(0, bytes(100)))[1] == 400
    assert r.sack_blocks() == ((1000, 1050), (800, 850), (600, 700))


def test_a_duplicate_is_reported_once_as_a_dsack_block():
    r = TcpReceiver()
    r.on_segment(Segment(0, b"abc"))
    assert r.dsack is None
    r.on_segment(Segment(0, b"abc"))
    assert r.dsack == (0, 3)


def test_ts_recent_echoes_the_segment_that_advanced_the_window_not_out_of_order_ones():
    r = TcpReceiver()
    r.on_segment(Segment(0, b"a" * 10, tsval=1.0))
    r.ack_sent()
    assert r.ts_recent == 1.0
    r.on_segment(Segment(20, b"c" * 10, tsval=3.0))  # out of order: not taken
    assert r.ts_recent == 1.0
    r.on_segment(Segment(10, b"b" * 10, tsval=5.0))  # the retransmission filling the hole
    assert r.ts_recent == 5.0  # so the ACK measures the retransmission's own round trip


def test_a_delayed_ack_echoes_the_earliest_unacknowledged_segment():
    r = TcpReceiver()
    r.on_segment(Segment(0, b"a" * 10, tsval=1.0))
    r.on_segment(Segment(10, b"b" * 10, tsval=1.2))  # no ACK was sent in between
    assert r.ts_recent == 1.0  # RFC 7323 4.3: the RTT covers the delay


def test_quick_acks_at_the_start_then_delayed_acks_in_an_interactive_exchange():
    d = DelayedAck(mss=1460)
    # First data: quick-ACK mode (tcp_incr_quickack: min(window / 2 MSS, 16) = 16).
    assert d.on_data(0.0, True, 50, 50, None, 1.0) == 0.0
    d.on_ack_sent()
    assert d.quick == 15
    d.on_data_sent(0.001)  # the application answered within ato: ping-pong mode
    assert d.pingpong
    wait = d.on_data(0.5, True, 50, 50, 0.1, 0.3)
    assert wait == pytest.approx(0.04)  # TCP_ATO_MIN: wait for the answer to carry it
    # The delayed-ACK timer fires with no answer: leave ping-pong, quick ACKs again.
    d.on_timer(0.3)
    assert not d.pingpong
    assert d.on_data(1.0, True, 50, 50, 0.1, 0.3) == 0.0


def test_out_of_order_data_and_two_full_segments_are_acked_at_once():
    d = DelayedAck(mss=1460)
    d.quick, d.ato, d.pingpong, d.last_received = 0, 0.04, True, 0.0
    assert d.on_data(0.1, False, 100, 100, 0.1, 0.3) == 0.0  # a gap: duplicate ACK now
    d.quick, d.pingpong = 0, True
    assert d.on_data(0.2, True, 1460, 1460, 0.1, 0.3) > 0  # one full segment: may wait
    assert d.on_data(0.2, True, 2920, 1460, 0.1, 0.3) == 0.0  # more than one: at once


def test_the_delay_never_exceeds_200_ms_in_ping_pong_nor_the_srtt_floor_of_40_ms():
    # tcp_send_delayed_ack: ato bounded by TCP_DELACK_MAX in ping-pong mode and by the
    # smoothed RTT (at least TCP_DELACK_MIN).
    d = DelayedAck(mss=1460)
    d.quick, d.ato, d.pingpong, d.last_received = 0, 0.3, True, 0.0
    assert d.on_data(1.0, True, 10, 10, None, 1.0) == pytest.approx(0.2)
    d.ato = 0.3
    assert d.on_data(2.0, True, 10, 10, 0.01, 1.0) == pytest.approx(0.04)


def test_a_needless_retransmission_below_the_last_ack_keeps_the_old_echo_as_linux_does():
    # tcp_validate_incoming drops a segment ending before rcv_wup (tcp_sequence) before
    # tcp_replace_ts_recent: its duplicate ACK echoes the copy that last advanced the
    # window. (A copy that ends exactly at the last ACK still passes, and updates it.)
    r = TcpReceiver()
    r.on_segment(Segment(0, b"a" * 10, tsval=1.0))
    r.on_segment(Segment(10, b"b" * 10, tsval=1.1))
    r.ack_sent()  # ACK 20 sent (and lost, say)
    r.on_segment(Segment(10, b"b" * 10, tsval=3.0))  # ends at 20: passes
    assert r.ts_recent == 3.0
    r.on_segment(Segment(0, b"a" * 10, tsval=7.0))  # wholly below: dropped first
    assert r.ts_recent == 3.0 and r.dsack == (0, 10)
