"""Every path on which the broker sends an MQTT 5 DISCONNECT uses a code DISCONNECT allows.

MQTT 5 table 3-10 lists the reason codes a DISCONNECT may carry (reason_codes.DISCONNECT_V5);
the encoder refuses any other, so a wrong code used to surface as a traceback instead of a
DISCONNECT (issue 13: a second CONNECT at protocol level 4 made the broker try 0x84, a
CONNACK-only code). The broker builds DISCONNECT in one place (``_disconnect``); this file
enumerates every call of it, by reading the source, and drives each one.
"""

from __future__ import annotations

import ast
import inspect

import pytest

from mqttsim.protocol import broker as broker_module
from mqttsim.protocol import broker_packets, broker_routing, broker_sessions
from mqttsim.protocol import encode
from mqttsim.protocol.auth import AllowAll
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.decoder import Decoder
from mqttsim.protocol.errors import ProtocolError
from mqttsim.protocol.packets import (Auth, Connect, Disconnect, Publish, Subscribe,
                                      Subscription)
from mqttsim.protocol.properties import Properties
from mqttsim.protocol.reason_codes import DISCONNECT_V5

from support.peer import online

V5 = 5


class FailingAuthorizer(AllowAll):
    """An ACL backend that is down: the broker closes with 0x80 [MQTT-4.8.0-2]."""

    def authorize(self, client_id, username, topic, access):
        raise OSError("ACL backend unreachable")


def _second_connect(level):
    def act(b, peer):
        return peer.send_bytes(encode(Connect("again"), level))
    return act


def _publish(**fields):
    return lambda b, peer: peer.send(Publish(**fields))


def _takeover(b, peer):
    online(b, "c", version=V5)
    return peer.read()


def _keepalive(b, peer):
    b.on_timer(100.0)
    return peer.read()


def _shutdown(b, peer):
    b.shutdown(1.0)
    return peer.read()


# (what happens, broker config, authorizer, action, expected reason code, call site)
CASES = [
    ("second CONNECT at level 4", {}, None, _second_connect(4), 0x82, "violation"),
    ("second CONNECT at level 5", {}, None, _second_connect(5), 0x82, "violation"),
    ("malformed packet", {}, None, lambda b, p: p.send_bytes(b"\x30\x02\x00\x05"), 0x81,
     "violation"),
    ("packet too large", {"max_packet_size": 64}, None,
     _publish(topic="t", payload=b"x" * 100), 0x95, "violation"),
    ("topic name with a wildcard", {}, None,  # raw: our encoder refuses to write it
     lambda b, p: p.send_bytes(b"\x30\x06\x00\x03a/+\x00"), 0x90, "violation"),
    ("topic alias above the maximum", {"topic_alias_maximum": 2}, None,
     _publish(topic="t", payload=b"", properties=Properties(topic_alias=9)), 0x94,
     "violation"),
    ("retain when retain is not available", {"retain_available": False}, None,
     _publish(topic="t", payload=b"", retain=True), 0x9A, "violation"),
    ("QoS 2 beyond Receive Maximum", {"receive_maximum": 1}, None,
     lambda b, p: p.send(Publish("t", b"", 2, packet_id=1), Publish("t", b"", 2, packet_id=2)),
     0x93, "violation"),
    ("invalid topic filter", {}, None,
     lambda b, p: p.send_bytes(b"\x82\x0b\x00\x01\x00\x00\x05a/#/b\x00"), 0x8F,
     "violation"),
    ("AUTH without a method", {}, None, lambda b, p: p.send(Auth(0x18)), 0x82, "violation"),
    ("an authorizer that fails", {}, FailingAuthorizer(), _publish(topic="t", payload=b""),
     0x80, "failed"),
    ("client id taken over", {}, None, _takeover, 0x8E, "takeover"),
    ("keepalive expired", {}, None, _keepalive, 0x8D, "keepalive"),
    ("server shutting down", {}, None, _shutdown, 0x8B, "shutdown"),
]


@pytest.mark.parametrize("config, authz, act, code", [case[1:5] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_v5_MQTT_3_14_2_1_every_broker_disconnect_uses_a_disconnect_reason_code(config, authz,
                                                                                 act, code):
    b = BrokerEngine(BrokerConfig(**config), authz=authz)
    peer = online(b, "c", version=V5, keepalive=10)
    replies = act(b, peer)  # raises if the broker tried to encode a code DISCONNECT forbids
    disconnects = [p for p in replies if isinstance(p, Disconnect)]
    assert [d.reason_code for d in disconnects] == [code]
    assert code in DISCONNECT_V5
    assert peer.closed  # the broker asked for the close after the DISCONNECT


def _calls(module, name: str) -> list[str]:
    """Names of the functions in ``module`` that call ``name`` (self.name or name)."""
    tree = ast.parse(inspect.getsource(module))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                target = node.func
                called = target.attr if isinstance(target, ast.Attribute) else getattr(
                    target, "id", None)
                if called == name:
                    found.append(function.name)
    return found


def test_the_cases_above_cover_every_place_the_broker_sends_disconnect():
    sources = (broker_module, broker_sessions, broker_routing, broker_packets)
    assert [f for m in sources for f in _calls(m, "Disconnect")] == ["_disconnect"]
    callers = sorted(f for m in sources for f in _calls(m, "_disconnect"))
    assert callers == ["_failed", "_on_connect", "_timer_keepalive", "_violation", "shutdown"]
    covered = {case[5] for case in CASES}
    assert covered == {"violation", "failed", "takeover", "keepalive", "shutdown"}


# -- the work one packet may cost is bounded (issue 13: 200,000 User Properties) -------------

def _props(count: int) -> Properties:
    return Properties(user_properties=(("k", "v"),) * count)


def test_user_properties_past_the_limit_end_that_connection_only():
    b = BrokerEngine(BrokerConfig(max_user_properties=100))
    sub = online(b, "sub", version=V5)
    sub.send(Subscribe(1, (Subscription("t", 0),)))
    pub = online(b, "pub", version=V5)
    assert pub.send(Publish("t", b"ok", 0, properties=_props(100))) == []
    (got,) = sub.read()
    assert len(got.properties.user_properties) == 100  # at the limit: forwarded whole
    replies = pub.send(Publish("t", b"too many", 0, properties=_props(200_000)))
    assert [(type(p), p.reason_code) for p in replies] == [(Disconnect, 0x83)]
    assert pub.closed and sub.read() == []
    other = online(b, "other", version=V5)  # everyone else carries on
    other.send(Publish("t", b"next", 0))
    assert [p.payload for p in sub.read()] == [b"next"]


def test_the_user_property_limit_stops_decoding_early():
    """The decoder gives up at the first property past the limit: the cost of a packet is
    bounded by the limit, whatever its size (each property decoded is counted here)."""
    from mqttsim.protocol import _wire

    data = encode(Publish("t", b"", 0, properties=_props(50_000)), V5)
    calls = 0
    original = _wire.decode_string

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    _wire.decode_string = counting
    try:
        with pytest.raises(ProtocolError) as refused:
            Decoder(V5, None, 10).feed(data)
    finally:
        _wire.decode_string = original
    assert refused.value.reason_code == 0x83
    assert calls <= 2 * 11  # a name and a value per property, 11 properties at most
