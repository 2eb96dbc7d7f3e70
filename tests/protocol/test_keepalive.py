"""Keep alive, to the exact instant: the broker's 1.5 x deadline, the client's PINGREQ
schedule, the client's PINGRESP timeout, and the will that a dead connection leaves.

Broker-side rules are checked with exact packets fed to a bare ``BrokerEngine`` (time is
whatever the test says). Client behaviour uses ``support.pipe.Pipe`` with ``advance`` to
fire timers in order and ``half_cut`` for a silent outage, where bytes vanish and nobody
is told — the only way a keep alive timer is ever the thing that notices.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig, ConnState
from mqttsim.protocol.client import ClientConfig
from mqttsim.protocol.events import (ConnectionClosed, MessageReceived, PacketSent,
                                     WillPublished)
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp,
                                      Publish, Subscribe, Subscription, Will)

from support.pipe import Pipe

KEEPALIVE_RULE = {3: "MQTT-3.1.2-24", 4: "MQTT-3.1.2-24", 5: "MQTT-3.1.2-22"}


# ------------------------------------------------------------------- broker, exact bytes

def connected_broker(version: int, keepalive: int, config: BrokerConfig | None = None):
    """A broker with one connection "c" whose CONNECT arrived at t=0."""
    b = BrokerEngine(config or BrokerConfig())
    b.connection_made("c", 0.0)
    b.receive("c", encode(Connect("c", keepalive=keepalive), version), 0.0)
    data, close = b.take_output("c")
    assert Decoder(version).feed(data)[0].reason_code == 0 and not close
    b.take_events()
    return b


def closes(events) -> list[ConnectionClosed]:
    return [e for e in events if isinstance(e, ConnectionClosed)]


def assert_closed_for_keepalive(b: BrokerEngine, version: int, at: float) -> None:
    events = b.on_timer(at)
    [closed] = closes(events)
    assert (closed.t, closed.reason, closed.rule, closed.client_id) == (
        at, "keepalive", KEEPALIVE_RULE[version], "c")
    data, close = b.take_output("c")
    assert close is True
    # MQTT 5 says why before closing (0x8D Keep Alive timeout); 3.x just closes.
    expected = [Disconnect(0x8D)] if version == 5 else []
    assert Decoder(version).feed(data) == expected


def assert_open(b: BrokerEngine, at: float) -> None:
    assert closes(b.on_timer(at)) == []
    assert "c" not in b.pending()
    assert b.connections["c"].state is ConnState.CONNECTED


def check_broker_closes_at_one_and_a_half_keepalive(version: int) -> None:
    b = connected_broker(version, keepalive=10)
    assert_open(b, 10.0)  # the CONNECT timer fires, finding the CONNECT long arrived
    assert b.next_deadline() == 15.0
    assert_open(b, 14.999)
    assert_closed_for_keepalive(b, version, 15.0)


def test_v311_MQTT_3_1_2_24_broker_closes_at_one_and_a_half_keepalive_not_before():
    check_broker_closes_at_one_and_a_half_keepalive(4)


def test_v5_MQTT_3_1_2_22_broker_closes_at_one_and_a_half_keepalive_not_before():
    check_broker_closes_at_one_and_a_half_keepalive(5)


def test_v31_broker_closes_at_one_and_a_half_keepalive_citing_the_311_rule():
    check_broker_closes_at_one_and_a_half_keepalive(3)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("packet", [Pingreq(), Publish("a/b", b"x"),
                                    Subscribe(1, (Subscription("a/#", 0),))],
                         ids=["pingreq", "publish", "subscribe"])
def test_any_packet_from_the_client_restarts_the_broker_keepalive_clock(version, packet):
    b = connected_broker(version, keepalive=10)
    b.receive("c", encode(packet, version), 7.0)
    b.take_output("c")
    assert_open(b, 15.0)  # the first deadline passes: the timer looks again later
    assert b.next_deadline() == 22.0  # 7 + 1.5 x 10
    assert_open(b, 21.999)
    assert_closed_for_keepalive(b, version, 22.0)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_keepalive_zero_means_the_broker_never_times_out(version):
    b = connected_broker(version, keepalive=0)
    b.on_timer(10.0)  # the CONNECT timer, already satisfied
    assert b.next_deadline() is None
    assert_open(b, 1e9)


def test_v5_MQTT_3_2_2_21_broker_imposes_server_keep_alive_and_enforces_it():
    """The broker lowers the client's 60 s to its max_keepalive 20 s in CONNACK, and then
    holds the client to 1.5 x 20 s."""
    b = BrokerEngine(BrokerConfig(max_keepalive=20))
    b.connection_made("c", 0.0)
    b.receive("c", encode(Connect("c", keepalive=60), 5), 0.0)
    [connack] = Decoder(5).feed(b.take_output("c")[0])
    assert isinstance(connack, Connack) and connack.properties.server_keep_alive == 20
    assert_open(b, 29.999)
    assert_closed_for_keepalive(b, 5, 30.0)


# -------------------------------------------------------------------- client, in a pipe

def pings(p: Pipe, who: str = "c") -> list[float]:
    return [e.t for e in p.of(PacketSent, who) if isinstance(e.packet, Pingreq)]


def pipe_with(version: int = 4, **client) -> Pipe:
    p = Pipe(BrokerEngine())
    p.add_client("c", ClientConfig("c", version=version, **client), now=0)
    p.run(0)
    return p


def check_client_pings_after_one_idle_keepalive(version: int) -> None:
    p = pipe_with(version, keepalive=10)
    assert p.clients["c"].next_deadline() == 10.0
    p.advance(9.999)
    assert pings(p) == []
    p.advance(10.0)
    assert pings(p) == [10.0]
    assert [type(e.packet) for e in p.of(PacketSent, "broker")][-1] is Pingresp
    p.advance(19.999)
    assert pings(p) == [10.0]
    p.advance(20.0)
    assert pings(p) == [10.0, 20.0]
    p.clients["c"].publish("a/b", b"x", qos=0, now=25.0)  # sending anything resets it
    p.run(25.0)
    p.advance(34.999)
    assert pings(p) == [10.0, 20.0]
    p.advance(35.0)
    assert pings(p) == [10.0, 20.0, 35.0]
    assert p.of(ConnectionClosed) == []


def test_v311_MQTT_3_1_2_23_client_sends_pingreq_after_a_keepalive_of_silence():
    check_client_pings_after_one_idle_keepalive(4)


def test_v5_MQTT_3_1_2_20_client_sends_pingreq_after_a_keepalive_of_silence():
    check_client_pings_after_one_idle_keepalive(5)


@pytest.mark.parametrize("qos, expected", [(0, [10.0]), (1, [15.0])])
def test_client_keepalive_counts_what_it_sends_not_what_it_receives(qos, expected):
    """A QoS 0 message arriving at t=5 makes the client send nothing, so it still pings at
    10; a QoS 1 message makes it send a PUBACK at 5, so the next ping is due at 15."""
    p = Pipe(BrokerEngine())
    sub = p.add_client("c", ClientConfig("c", keepalive=10), now=0)
    p.add_client("pub", ClientConfig("pub", keepalive=0), now=0)
    p.run(0)
    sub.subscribe("t", qos=1, now=0)  # at t=0, so the subscriber's clock starts at 0
    p.run(0)
    p.clients["pub"].publish("t", b"x", qos=qos, now=5.0)
    p.run(5.0)
    assert len(p.of(MessageReceived, "c")) == 1
    p.advance(15.5)
    assert pings(p) == expected


def test_pingresp_clears_the_wait_so_a_healthy_idle_connection_lives_forever():
    p = pipe_with(keepalive=10)
    p.advance(100.0)
    assert pings(p) == [10.0 * k for k in range(1, 11)]
    assert p.of(ConnectionClosed) == []
    assert p.clients["c"].state == "connected"


@pytest.mark.parametrize("ping_timeout, dead_at", [(None, 20.0), (4.0, 14.0)])
def test_missing_pingresp_makes_the_client_declare_the_connection_dead(ping_timeout, dead_at):
    """A silent outage from t=0: PINGREQ at 10 vanishes, and the client gives up one
    ping_timeout later (default: one keepalive), not a moment before."""
    p = pipe_with(keepalive=10, ping_timeout=ping_timeout)
    p.half_cut("c")
    p.advance(10.0)
    assert pings(p) == [10.0]
    assert p.clients["c"].next_deadline() == dead_at
    p.advance(dead_at - 0.001)
    assert p.of(ConnectionClosed, "c") == []
    p.advance(dead_at)
    [closed] = p.of(ConnectionClosed, "c")
    assert (closed.t, closed.reason) == (dead_at, "pingresp_timeout")
    assert p.clients["c"].state == "disconnected"


def test_keepalive_zero_means_the_client_never_pings():
    p = pipe_with(keepalive=0)
    assert p.clients["c"].next_deadline() is None
    p.advance(10_000.0)
    assert pings(p) == []
    assert p.of(ConnectionClosed) == []


def test_client_adopts_server_keep_alive_for_its_pings():
    """[MQTT-3.2.2-21] (5.0): the client asked for 60 s, the server said 20 s."""
    p = Pipe(BrokerEngine(BrokerConfig(max_keepalive=20)))
    p.add_client("c", ClientConfig("c", version=5, keepalive=60), now=0)
    p.run(0)
    p.advance(45.0)
    assert pings(p) == [20.0, 40.0]


# ------------------------------------------------------------------------------ the will

def will_pipe(version: int) -> Pipe:
    p = Pipe(BrokerEngine())
    watcher = p.add_client("watcher", ClientConfig("watcher", version=version, keepalive=0),
                           now=0)
    p.add_client("dev", ClientConfig("dev", version=version, keepalive=10,
                                     will=Will("status/dev", b"gone", qos=1)), now=0)
    p.run(0)
    watcher.subscribe("status/#", qos=1, now=0)
    p.run(0)
    return p


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_published_when_the_keepalive_expires(version):
    p = will_pipe(version)
    p.half_cut("dev")  # the device loses power: nothing more from it, ever
    p.advance(14.999)
    assert p.of(WillPublished) == []
    p.advance(15.0)
    [will] = p.of(WillPublished, "broker")
    assert (will.t, will.client_id, will.topic) == (15.0, "dev", "status/dev")
    [closed] = [e for e in p.of(ConnectionClosed, "broker") if e.client_id == "dev"]
    assert (closed.t, closed.reason, closed.rule, closed.will_published) == (
        15.0, "keepalive", KEEPALIVE_RULE[version], True)
    [got] = p.of(MessageReceived, "watcher")
    assert (got.t, got.topic, got.payload) == (15.0, "status/dev", b"gone")


def test_v311_MQTT_3_14_4_3_will_is_discarded_after_disconnect():
    check_no_will_after_disconnect(4)


def test_v5_MQTT_3_14_4_3_will_is_discarded_after_disconnect_0x00():
    check_no_will_after_disconnect(5)


def check_no_will_after_disconnect(version: int) -> None:
    p = will_pipe(version)
    p.clients["dev"].disconnect(now=1.0)
    p.run(1.0)
    [closed] = [e for e in p.of(ConnectionClosed, "broker") if e.client_id == "dev"]
    assert (closed.reason, closed.will_published) == ("clean", False)
    p.advance(1000.0)
    assert p.of(WillPublished) == []
    assert p.of(MessageReceived, "watcher") == []
