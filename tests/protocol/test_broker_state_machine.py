"""The broker connection's life as an explicit state machine (issue 14 item 6).

``broker_state.ConnState`` and ``CONN_TRANSITIONS`` say all of it in one screen; these tests
walk the engine through each transition with real packets and check that nothing else is
possible.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.auth import StaticUsers
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import CONN_TRANSITIONS, BrokerConfig, ConnState, Timer
from mqttsim.protocol.packets import Connect, Disconnect

AWAITING, CONNECTED, CLOSING, CLOSED = (ConnState.AWAITING_CONNECT, ConnState.CONNECTED,
                                        ConnState.CLOSING, ConnState.CLOSED)


def test_the_table_is_the_whole_life_of_a_connection():
    assert {state for state, _ in CONN_TRANSITIONS} == {AWAITING, CONNECTED, CLOSING}
    assert set(CONN_TRANSITIONS.values()) == {CONNECTED, CLOSING, CLOSED}
    assert not any(state is CLOSED for state, _ in CONN_TRANSITIONS)  # CLOSED is final


def story(b: BrokerEngine, conn: str = "c") -> list:
    """The state of ``conn`` after each step: made, CONNECT, DISCONNECT, transport gone."""
    seen = []
    b.connection_made(conn, 0.0)
    seen.append(b.connections[conn].state)
    b.receive(conn, encode(Connect(conn), 4), 0.0)
    seen.append(b.connections[conn].state)
    b.receive(conn, encode(Disconnect(), 4), 1.0)
    seen.append(b.connections[conn].state)
    data, close = b.take_output(conn)
    assert close and Decoder(4).feed(data)[0].reason_code == 0  # CONNACK, then the close
    connection = b.connections[conn]
    b.connection_lost(conn, 1.0)
    seen.append(connection.state)
    assert conn not in b.connections
    return seen


def test_connect_disconnect_and_transport_gone():
    assert story(BrokerEngine()) == [AWAITING, CONNECTED, CLOSING, CLOSED]


def test_a_refused_connect_goes_straight_to_closing_and_ignores_what_follows():
    b = BrokerEngine(auth=StaticUsers({}, anonymous=False))
    b.connection_made("c", 0.0)
    b.receive("c", encode(Connect("c"), 4), 0.0)
    assert b.connections["c"].state is CLOSING
    b.take_output("c")
    assert b.receive("c", encode(Connect("c"), 4), 0.1) == []  # [MQTT-3.1.4-5]
    assert b.take_output("c") == (b"", True)


def test_no_connect_in_time_and_a_transport_lost_while_waiting():
    b = BrokerEngine(BrokerConfig(connect_timeout=5.0))
    b.connection_made("slow", 0.0)
    b.connection_made("gone", 0.0)
    gone = b.connections["gone"]
    b.connection_lost("gone", 1.0)
    assert gone.state is CLOSED
    b.on_timer(5.0)
    assert b.connections["slow"].state is CLOSING


def test_an_impossible_transition_is_a_bug_and_says_so():
    b = BrokerEngine()
    b.connection_made("c", 0.0)
    with pytest.raises(RuntimeError, match="no transition from AWAITING_CONNECT on 'lost!'"):
        b.connections["c"].move("lost!")
    b.connection_lost("c", 0.0)


def test_every_kind_of_timer_has_its_handler():
    from mqttsim.protocol import broker

    assert set(broker._TIMERS) == set(Timer)
