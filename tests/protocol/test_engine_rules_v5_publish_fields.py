"""MQTT 5.0 rules for the PUBLISH fixed header and variable header (3.3.1, 3.3.2, 3.3.4),
both engines.

DUP on redelivery (client and broker, on reconnect and on the retry timer), the topic name
leading the variable header as UTF-8, the UTF-8 properties (Response Topic, Content Type),
the request/response properties forwarded unchanged on every path, and one Subscription
Identifier per separate copy. Retained messages, expiry and the reason codes are in
``test_engine_rules_v5_broker_publish.py``; topic aliases in
``test_engine_rules_v5_topic_aliases.py``.
"""

from __future__ import annotations

import dataclasses

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import Disconnect, Publish
from mqttsim.protocol.properties import Properties

from support.peer import (OVERLONG_SLASH, V5, Peer, Server, advance, broker, connected, of, online,
                          persistent, publishes, resume, swap)


# --------------------------------------------------------------------------------------
# 3.3 PUBLISH: DUP, the topic name, UTF-8 and forwarded properties, subscription ids
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["on_reconnect", "timer"])
def test_v5_MQTT_3_3_1_1_client_sets_dup_when_it_redelivers(policy):
    srv = Server(client_id="c", version=V5, clean_session=False, session_expiry=100,
                 keepalive=0, retry_policy=policy, retry_interval=5)
    srv.start()
    srv.accept()
    srv.client.publish("t", b"x", 1, properties=Properties(content_type="a/b"))
    [first] = srv.read()
    assert first.dup is False
    if policy == "timer":
        resent = srv.tick(6)
    else:
        srv.lose(1)
        srv.start(2)
        resent = srv.accept(session_present=True)
    assert resent == [dataclasses.replace(first, dup=True)]


@pytest.mark.parametrize("policy", ["on_reconnect", "timer"])
def test_v5_MQTT_3_3_1_1_broker_sets_dup_when_it_redelivers(policy):
    b = broker(retry_policy=policy, retry_interval=5)
    s = persistent(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 2, correlation_data=b"\x01")
    [first] = publishes(s.read())
    assert first.dup is False
    if policy == "timer":
        advance(b, 6)
        resent = s.read()
    else:
        s.lose(1)
        resent = resume(b, "s", now=2, version=V5).after_connack
    assert resent == [dataclasses.replace(first, dup=True)]


def test_v5_MQTT_3_3_2_1_topic_name_leads_the_publish_variable_header_as_utf8():
    topic = "capteur/température/€😀"
    wire_topic = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    b = broker()
    s = online(b, "s", (topic, 1), version=V5)
    srv = connected(client_id="c", version=V5)
    srv.client.publish(topic, b"1", 1)
    data = srv.client.data_to_send()
    assert data[2:2 + len(wire_topic)] == wire_topic  # right after the 2-byte fixed header
    Peer(b, "c", version=V5).connect("c")
    b.receive("c", data, 0)
    forwarded, _ = b.take_output(s.conn)
    assert forwarded[2:2 + len(wire_topic)] == wire_topic
    assert Decoder(V5).feed(forwarded)[0].topic == topic
    bad = swap(encode(Publish("tXY", b"", 0), V5), b"XY", OVERLONG_SLASH)
    s.write_bytes(bad)
    assert s.read() == [Disconnect(0x81)] and s.closed


def publish_with_bad_utf8(prop: str) -> bytes:
    data = encode(Publish("t", b"x", 1, False, False, 1, Properties(**{prop: "vXY"})), V5)
    return swap(data, b"XY", OVERLONG_SLASH)


def check_utf8_property(prop: str, value: str) -> None:
    """A well-formed value arrives intact; an ill-formed one is a malformed packet at both
    engines (DISCONNECT 0x81) and is never forwarded."""
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    p = online(b, "p", version=V5)
    p.publish("t", b"x", 1, **{prop: value})
    [msg] = publishes(s.read())
    assert getattr(msg.properties, prop) == value
    p.write_bytes(publish_with_bad_utf8(prop))
    assert p.read() == [Disconnect(0x81)] and p.closed
    assert publishes(s.read()) == []
    srv = connected(client_id="c", version=V5)
    events = srv.client.receive(publish_with_bad_utf8(prop), 1)
    assert srv.read() == [Disconnect(0x81)] and srv.client.should_close
    assert of(events, ev.MessageReceived) == []


def test_v5_MQTT_3_3_2_13_response_topic_is_a_utf8_string():
    check_utf8_property("response_topic", "réponse/à/moi")


def test_v5_MQTT_3_3_2_19_content_type_is_a_utf8_string():
    check_utf8_property("content_type", "text/plain; charset=utf-8; note=€")


def test_v5_MQTT_3_3_2_15_16_20_request_response_properties_forwarded_unchanged():
    """Live, queued for an offline session, and retained: the three paths a message takes."""
    props = dict(response_topic="réponse/client-7", correlation_data=b"\x00\xff\x00req-7",
                 content_type="application/vnd.x+json; v=2")
    b = broker()
    live = online(b, "live", ("t", 1), version=V5)
    persistent(b, "away", ("t", 2), version=V5).lose(0)
    online(b, "p", version=V5).publish("t", b"{}", 2, retain=True, **props)
    later = online(b, "later", version=V5)
    received = (publishes(live.read()) + publishes(resume(b, "away", 1, version=V5).after_connack)
                + publishes(later.subscribe(("t", 1))))
    assert len(received) == 3
    for msg in received:
        assert (msg.properties.response_topic, msg.properties.correlation_data,
                msg.properties.content_type) == tuple(props.values())
    empty = online(b, "p2", version=V5)
    empty.publish("t", b"", 1, packet_id=2, correlation_data=b"", content_type="")
    [msg] = publishes(live.read())
    assert (msg.properties.correlation_data, msg.properties.content_type) == (b"", "")


def test_v5_MQTT_3_3_4_5_separate_copies_each_carry_their_own_identifier():
    """A retained message sent for each of two overlapping subscriptions goes out twice;
    each copy names the subscription it was sent for."""
    b = broker()
    online(b, "p", version=V5).publish("r/a", b"kept", 0, retain=True)
    s = Peer(b, "s", version=V5)
    s.connect("s")
    [first] = publishes(s.subscribe(("r/#", 1), identifier=1))
    [second] = publishes(s.subscribe(("r/+", 1), identifier=2, packet_id=2))
    assert first.properties.subscription_identifiers == (1,)
    assert second.properties.subscription_identifiers == (2,)


def test_v5_MQTT_3_3_4_6_client_refuses_to_send_a_subscription_identifier():
    srv = connected()
    try:
        srv.client.publish("t", b"x", 1,
                           properties=Properties(subscription_identifiers=(4,)))
    except MQTTError as exc:
        assert exc.rule == "MQTT-3.3.4-6"
    assert all(not p.properties.subscription_identifiers for p in publishes(srv.read()))
