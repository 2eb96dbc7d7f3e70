"""The client engine's connection state is an explicit machine: ``ClientState`` and one
``TRANSITIONS`` table, and every change of state goes through the table.

CONNACK bytes are the spec's (MQTT 3.1.1 section 3.2: 0x20, remaining length 2, flags,
return code), not produced by our encoder.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import client as client_module
from mqttsim.protocol.client import (TRANSITIONS, ClientConfig, ClientEngine, ClientState)
from mqttsim.protocol.errors import InvalidTopic
from mqttsim.protocol.events import Connected, ConnectionClosed, ConnectionRefused

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
CONNACK_NOT_AUTHORIZED = b"\x20\x02\x00\x05"


def engine() -> ClientEngine:
    return ClientEngine(ClientConfig(client_id="c", keepalive=10))


def test_the_table_reaches_every_state_and_every_connection_can_end():
    targets = set(TRANSITIONS.values())
    assert targets == set(ClientState)
    for state in (ClientState.CONNECTING, ClientState.CONNECTED):
        assert TRANSITIONS[(state, "closed")] is ClientState.DISCONNECTED
    assert (ClientState.DISCONNECTED, "connack_accepted") not in TRANSITIONS
    assert (ClientState.DISCONNECTED, "closed") not in TRANSITIONS


def test_connect_connack_and_a_lost_transport_walk_the_table():
    c = engine()
    assert c.state is ClientState.DISCONNECTED and c.state == "disconnected"
    c.connect(0.0)
    assert c.state is ClientState.CONNECTING and c.data_to_send()[:1] == b"\x10"
    [connected] = c.receive(CONNACK_ACCEPTED, 0.1)
    assert isinstance(connected, Connected) and c.state is ClientState.CONNECTED
    [closed] = c.connection_lost(5.0)
    assert isinstance(closed, ConnectionClosed) and c.state is ClientState.DISCONNECTED
    assert c.connection_lost(6.0) == []  # already disconnected: nothing happens twice
    c.connect(7.0)
    assert c.state is ClientState.CONNECTING and f"{c.state}" == "connecting"


def test_a_refused_connack_and_a_late_one_end_in_disconnected_with_should_close():
    c = engine()
    c.connect(0.0)
    refused, closed = c.receive(CONNACK_NOT_AUTHORIZED, 0.1)
    assert isinstance(refused, ConnectionRefused) and closed.reason == "refused"
    assert c.state is ClientState.DISCONNECTED and c.should_close
    late = engine()
    late.connect(0.0)
    [closed] = late.on_timer(late.next_deadline())
    assert closed.reason == "connect_timeout" and late.state is ClientState.DISCONNECTED


def test_every_change_of_state_goes_through_the_table(monkeypatch):
    without = {k: v for k, v in TRANSITIONS.items() if k[1] != "connack_accepted"}
    monkeypatch.setattr(client_module, "TRANSITIONS", without)
    c = engine()
    c.connect(0.0)
    with pytest.raises(RuntimeError, match="'connack_accepted' in state connecting"):
        c.receive(CONNACK_ACCEPTED, 0.1)


def test_topic_names_an_engine_checked_are_its_own():
    first, second = engine(), engine()
    first.publish("a/b", b"1", now=0.0)
    assert "a/b" in first._checked_topics and not second._checked_topics
    for c in (first, second):
        with pytest.raises(InvalidTopic):
            c.publish("a/+", b"1", now=0.0)
