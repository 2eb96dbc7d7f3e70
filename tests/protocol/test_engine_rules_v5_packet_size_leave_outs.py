"""MQTT 5.0: a Reason String or User Property is left out rather than exceed the
receiver's Maximum Packet Size, for every packet either engine sends.

Statements 3.2.2-19/20 (CONNACK), 3.4.2-2/3 (PUBACK), 3.5.2-2/3 (PUBREC), 3.6.2-2/3
(PUBREL), 3.7.2-2/3 (PUBCOMP), 3.9.2-1/2 (SUBACK), 3.11.2-1/2 (UNSUBACK) and 3.14.2-3/4
(DISCONNECT). Each scenario makes an engine send one packet of the kind; it runs once
without a limit, then with the limit set to that packet's size without any Reason String
or User Property, where adding either would exceed it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from mqttsim.protocol import encode
from mqttsim.protocol.auth import StaticUsers, TopicRules
from mqttsim.protocol.packets import (Auth, Connack, Connect, Disconnect, Puback, Pubcomp, Publish,
                                      Pubrec, Pubrel, Suback, Subscribe, Subscription, Unsuback,
                                      Unsubscribe)
from mqttsim.protocol.properties import Properties

from support.peer import V5, Peer, Server, broker


Wire = list[tuple[object, int]]  # (packet, size on the wire)
ACL = {None: [("ok/#", "readwrite")]}


def bare_size(packet) -> int:
    props = dataclasses.replace(packet.properties, reason_string=None, user_properties=())
    return len(encode(dataclasses.replace(packet, properties=props), V5))


def broker_wire(peer: Peer) -> Wire:
    """What the broker wrote to ``peer`` since the last read, with sizes (Peer.read honours
    a close request as a driver would)."""
    before = len(peer.sizes)
    packets = peer.read()
    return list(zip(packets, peer.sizes[before:]))


def limited(limit: int | None) -> dict:
    return {} if limit is None else {"maximum_packet_size": limit}


def on_broker(action: Callable[[Peer], None], *, auth=None, **connect):
    """A scenario: connect a peer to a broker (ACL: ok/# only) with the limit, then act."""
    def run(limit: int | None) -> Wire:
        b = broker(authz=TopicRules(ACL), auth=auth)
        p = Peer(b, "c", version=V5)
        p.write(Connect("c", True, 0, properties=Properties(**limited(limit), **connect)))
        out = broker_wire(p)
        if not p.closed:
            action(p)
            out += broker_wire(p)
        return out
    return run


def on_client(action: Callable[[Server], None], before: Callable[[Server], None] | None = None):
    """A scenario: a client engine whose server announced the limit in CONNACK, then act.
    With ``before``, that runs on an earlier connection of a persistent session, and the
    limit comes with the CONNACK that resumes it."""
    def run(limit: int | None) -> Wire:
        srv = Server(client_id="c", version=V5, keepalive=0, clean_session=before is None,
                     session_expiry=0 if before is None else 100)
        srv.start()
        if before is not None:
            srv.accept()
            before(srv)
            srv.read()
            srv.lose(1)
            srv.start(2)
        srv.write(Connack(before is not None, 0, Properties(**limited(limit))))
        action(srv)
        data = srv.client.data_to_send()
        packets = srv.decoder.feed(data) if data else []
        return list(zip(packets, srv.decoder.sizes if data else []))
    return run


def _qos2_in(srv: Server) -> None:
    srv.write(Publish("t", b"x", 2, False, False, 7))
    srv.write(Pubrel(7))


def _qos2_out(srv: Server) -> None:
    """QoS 2 out and PUBREC back: the PUBREL is then resent when the session resumes (the
    PUBLISH itself would not fit under a limit as small as a PUBREL)."""
    srv.client.publish("t", b"x", 2)
    [sent] = srv.read()
    srv.write(Pubrec(sent.packet_id))


def _takeover(p: Peer) -> None:
    Peer(p.broker, "c2", version=V5).connect("c")


SCENARIOS: dict[str, tuple[type, Callable[[int | None], Wire]]] = {
    "connack_ok": (Connack, on_broker(lambda p: None)),
    "connack_refused": (Connack, on_broker(lambda p: None, auth=StaticUsers({"u": "pw"}))),
    "broker_puback_ok": (Puback, on_broker(lambda p: p.write(Publish("ok/x", b"", 1, False,
                                                                    False, 1)))),
    "broker_puback_87": (Puback, on_broker(lambda p: p.write(Publish("no", b"", 1, False,
                                                                    False, 1)))),
    "client_puback": (Puback, on_client(lambda s: s.write(Publish("t", b"x", 1, False, False,
                                                                 7)))),
    "broker_pubrec_87": (Pubrec, on_broker(lambda p: p.write(Publish("no", b"", 2, False,
                                                                    False, 1)))),
    "client_pubrec": (Pubrec, on_client(lambda s: s.write(Publish("t", b"x", 2, False, False,
                                                                 7)))),
    "broker_pubrel_92": (Pubrel, on_broker(lambda p: p.write(Pubrec(9)))),
    "client_pubrel": (Pubrel, on_client(lambda s: None, before=_qos2_out)),
    "client_pubrel_92": (Pubrel, on_client(lambda s: s.write(Pubrec(9)))),
    "broker_pubcomp_92": (Pubcomp, on_broker(lambda p: p.write(Pubrel(9)))),
    "client_pubcomp": (Pubcomp, on_client(_qos2_in)),
    "client_pubcomp_92": (Pubcomp, on_client(lambda s: s.write(Pubrel(9)))),
    "suback_87": (Suback, on_broker(lambda p: p.write(Subscribe(1, (Subscription("no", 1),))))),
    "suback_ok": (Suback, on_broker(lambda p: p.write(Subscribe(1, (Subscription("ok/a", 1),))))),
    "unsuback_11": (Unsuback, on_broker(lambda p: p.write(Unsubscribe(1, ("x",))))),
    "broker_disconnect_82": (Disconnect, on_broker(lambda p: p.write(Auth(0x19)))),
    "broker_disconnect_8e": (Disconnect, on_broker(_takeover)),
    "client_disconnect_04": (Disconnect, on_client(lambda s: s.client.disconnect(1, 0x04))),
    "client_disconnect_82": (Disconnect, on_client(lambda s: s.write(Connack(False, 0)))),
}


def check_left_out_rather_than_exceed(scenario: str) -> None:
    kind, run = SCENARIOS[scenario]
    [(free, _)] = [(p, n) for p, n in run(None) if isinstance(p, kind)]
    limit = bare_size(free)
    [(packet, size)] = [(p, n) for p, n in run(limit) if isinstance(p, kind)]
    assert (getattr(packet, "reason_code", None), getattr(packet, "reason_codes", None)) == \
        (getattr(free, "reason_code", None), getattr(free, "reason_codes", None))
    assert size <= limit, f"{packet} is {size} bytes; the receiver accepts {limit}"
    assert packet.properties.reason_string is None
    assert packet.properties.user_properties == ()


@pytest.mark.parametrize("scenario", ["connack_ok", "connack_refused"])
def test_v5_MQTT_3_2_2_19_20_connack_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_puback_ok", "broker_puback_87", "client_puback"])
def test_v5_MQTT_3_4_2_2_3_puback_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubrec_87", "client_pubrec"])
def test_v5_MQTT_3_5_2_2_3_pubrec_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubrel_92", "client_pubrel", "client_pubrel_92"])
def test_v5_MQTT_3_6_2_2_3_pubrel_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubcomp_92", "client_pubcomp",
                                      "client_pubcomp_92"])
def test_v5_MQTT_3_7_2_2_3_pubcomp_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["suback_87", "suback_ok"])
def test_v5_MQTT_3_9_2_1_2_suback_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


def test_v5_MQTT_3_11_2_1_2_unsuback_reason_string_and_user_property_left_out():
    check_left_out_rather_than_exceed("unsuback_11")


@pytest.mark.parametrize("scenario", ["broker_disconnect_82", "broker_disconnect_8e",
                                      "client_disconnect_04", "client_disconnect_82"])
def test_v5_MQTT_3_14_2_3_4_disconnect_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)
