"""The sans-IO bridge (mqttsim.protocol.bridge) between two broker engines, in memory.

Topic remapping follows the table in mosquitto.conf(5) ("topic pattern [[[ out | in | both ]
qos-level] local-prefix remote-prefix]"); loop prevention follows Mosquitto's src/bridge.c
and src/handle_subscribe.c (No Local locally; try_private's 0x80 bit or MQTT 5 No Local
remotely).
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.bridge import Bridge, BridgeConfig, BridgeError, BridgeTopic
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.decoder import Decoder
from mqttsim.protocol.encoder import encode
from mqttsim.protocol.packets import Connect


# -- topic remapping: mosquitto.conf(5)'s table ------------------------------------------------
@pytest.mark.parametrize("line, local, remote", [
    (BridgeTopic("pattern", "both", 0, "L/", "R/"), "L/pattern", "R/pattern"),
    (BridgeTopic("pattern", "both", 0, "L/", ""), "L/pattern", "pattern"),
    (BridgeTopic("pattern", "both", 0, "", "R/"), "pattern", "R/pattern"),
    (BridgeTopic("pattern", "both", 0, "", ""), "pattern", "pattern"),
    (BridgeTopic("", "both", 0, "local", "remote"), "local", "remote"),
])
def test_remapping_table_of_mosquitto_conf(line, local, remote):
    assert line.local_filter == local and line.remote_filter == remote
    assert line.to_remote(local) == remote
    assert line.to_local(remote) == local


@pytest.mark.parametrize("pattern, lp, rp", [("", "local", ""), ("", "", "remote"), ("", "", "")])
def test_invalid_remappings_of_the_table_are_refused(pattern, lp, rp):
    with pytest.raises(BridgeError, match="needs both"):
        BridgeTopic(pattern, "both", 0, lp, rp)


def test_wildcard_remapping_strips_one_prefix_and_adds_the_other():
    line = BridgeTopic("sensors/#", "both", 1, "edge/", "site1/")
    assert line.to_remote("edge/sensors/t1") == "site1/sensors/t1"
    assert line.to_local("site1/sensors/t1") == "edge/sensors/t1"
    assert line.to_remote("sensors/t1") is None  # not under the local prefix
    assert BridgeTopic("a/#", "in").to_remote("a/b") is None  # an "in" line exports nothing
    assert BridgeTopic("a/#", "out").to_local("a/b") is None


def test_bad_settings_are_one_line_errors():
    with pytest.raises(BridgeError, match="direction"):
        BridgeTopic("a", "sideways")
    with pytest.raises(BridgeError, match="QoS"):
        BridgeTopic("a", "in", 3)
    with pytest.raises(BridgeError, match="wildcard"):
        BridgeTopic("a", "in", 0, "x/#/", "")
    with pytest.raises(BridgeError, match="no topic"):
        BridgeConfig("b", "b.edge")


# -- the try_private bit on the wire ----------------------------------------------------------
def test_try_private_sets_the_protocol_levels_top_bit_and_the_broker_reads_it():
    wire = encode(Connect("edge.cloud", False, 60, bridge=True), 4)
    assert wire[8] == 0x84  # protocol level byte after "\x00\x04MQTT"
    packet, = Decoder().feed(wire)
    assert packet.bridge and packet.client_id == "edge.cloud"
    assert encode(Connect("x", bridge=True), 5)[8] == 5  # MQTT 5 bridges use No Local instead


# -- two brokers and a bridge, wired in memory ------------------------------------------------
class World:
    """Broker engines ``edge`` and ``cloud``, a bridge from edge to cloud, and clients; every
    byte is moved by ``pump`` (no IO, no clock: time is the ``now`` we pass)."""

    def __init__(self, bridge_config: BridgeConfig, cloud: BrokerEngine | None = None):
        self.edge = BrokerEngine(BrokerConfig())
        self.cloud = cloud or BrokerEngine(BrokerConfig())
        self.bridge = Bridge(bridge_config)
        self.clients: dict[str, tuple[ClientEngine, BrokerEngine, str]] = {}
        self.received: dict[str, list] = {}
        self.remote_up = False
        self.now = 0.0
        self.edge.connection_made("bridge-local", 0.0)
        self.bridge.connect_local(0.0)
        self.connect_remote()

    def connect_remote(self) -> None:
        self.cloud.connection_made("bridge-remote", self.now)
        self.bridge.connect_remote(self.now)
        self.remote_up = True
        self.pump()

    def break_remote(self) -> None:
        self.remote_up = False
        self.cloud.connection_lost("bridge-remote", self.now)
        self.bridge.remote_lost(self.now)
        self.pump()

    def client(self, name: str, broker: str, version: int = 4, subscribe=()) -> ClientEngine:
        engine = ClientEngine(ClientConfig(client_id=name, version=version))
        b = getattr(self, broker)
        b.connection_made(name, self.now)
        engine.connect(self.now)
        self.clients[name] = (engine, b, name)
        self.received[name] = []
        self.pump()
        if subscribe:
            engine.subscribe(list(subscribe), self.now)
            self.pump()
        return engine

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            data = self.bridge.data_for_local()
            if data:
                moved = True
                self.edge.receive("bridge-local", data, self.now)
            if self.remote_up:
                data = self.bridge.data_for_remote()
                if data:
                    moved = True
                    self.cloud.receive("bridge-remote", data, self.now)
            for name, (engine, broker, conn) in self.clients.items():
                data = engine.data_to_send()
                if data:
                    moved = True
                    broker.receive(conn, data, self.now)
            for broker in (self.edge, self.cloud):
                for conn in broker.pending():
                    data, _close = broker.take_output(conn)
                    if not data:
                        continue
                    moved = True
                    if conn == "bridge-local":
                        self.bridge.receive_local(data, self.now)
                    elif conn == "bridge-remote":
                        if self.remote_up:
                            self.bridge.receive_remote(data, self.now)
                    else:
                        engine = self.clients[conn][0]
                        for e in engine.receive(data, self.now):
                            if isinstance(e, ev.MessageReceived):
                                self.received[conn].append((e.topic, e.packet.payload,
                                                            e.packet.qos))
            if not moved:
                return
        raise AssertionError("messages still moving after 50 rounds: a loop?")


def both_ways(version: int = 4, try_private: bool = True) -> BridgeConfig:
    return BridgeConfig("cloud", "edge.cloud", topics=(
        BridgeTopic("sensors/#", "out", 1, "", "site1/"),
        BridgeTopic("commands/#", "in", 1, "", "site1/"),
        BridgeTopic("chat/#", "both", 1)), version=version, try_private=try_private)


def test_out_and_in_topics_travel_remapped():
    w = World(both_ways())
    dash = w.client("dash", "cloud", subscribe=[("site1/sensors/#", 1)])
    sensor = w.client("sensor", "edge", subscribe=[("commands/#", 1)])
    sensor.publish("sensors/t1", b"21.5", 1, now=w.now)
    dash.publish("site1/commands/reset", b"now", 1, now=w.now)
    w.pump()
    assert w.received["dash"] == [("site1/sensors/t1", b"21.5", 1)]
    assert w.received["sensor"] == [("commands/reset", b"now", 1)]


@pytest.mark.parametrize("version, try_private", [(4, True), (5, False)])
def test_a_both_bridge_does_not_echo(version, try_private):
    """A message on a ``both`` topic crosses once and never comes back: locally the bridge's
    subscription has No Local; remotely try_private (3.1.1) or No Local (MQTT 5)."""
    w = World(both_ways(version, try_private))
    edge_app = w.client("edge_app", "edge", subscribe=[("chat/#", 1)])
    cloud_app = w.client("cloud_app", "cloud", subscribe=[("chat/#", 1)])
    edge_app.publish("chat/a", b"from edge", 1, now=w.now)
    w.pump()
    cloud_app.publish("chat/b", b"from cloud", 1, now=w.now)
    w.pump()
    assert w.received["cloud_app"] == [("chat/a", b"from edge", 1), ("chat/b", b"from cloud", 1)]
    assert w.received["edge_app"] == [("chat/a", b"from edge", 1), ("chat/b", b"from cloud", 1)]
    assert (w.bridge.forwarded_out, w.bridge.forwarded_in) == (1, 1)


def test_without_try_private_a_311_both_bridge_echoes_once():
    """The contrast that shows what try_private buys: a 3.1.1 bridge the remote broker does
    not know as a bridge is sent its own message back, and publishes it locally again (the
    local No Local then stops the loop there)."""
    w = World(both_ways(4, try_private=False))
    edge_app = w.client("edge_app", "edge", subscribe=[("chat/#", 1)])
    edge_app.publish("chat/a", b"x", 1, now=w.now)
    w.pump()
    assert w.received["edge_app"] == [("chat/a", b"x", 1), ("chat/a", b"x", 1)]


def test_qos1_waits_for_the_remote_broker_and_qos0_is_dropped_while_it_is_away():
    w = World(both_ways())
    dash = w.client("dash", "cloud", subscribe=[("site1/#", 1)])
    sensor = w.client("sensor", "edge")
    w.break_remote()
    sensor.publish("sensors/t1", b"kept", 1, now=w.now)
    sensor.publish("sensors/t1", b"gone", 0, now=w.now)
    w.pump()
    dropped = [e for e in w.bridge.take_events().remote if isinstance(e, ev.MessageDropped)]
    assert [(e.payload, e.reason) for e in dropped] == [(b"gone", "qos0_offline")]
    w.now = 5.0
    w.connect_remote()
    assert w.received["dash"] == [("site1/sensors/t1", b"kept", 1)]


def test_restart_delay_is_decorrelated_jitter_between_base_and_cap():
    bridge = Bridge(BridgeConfig("b", "b.x", (BridgeTopic("#"),), restart_base=5,
                                 restart_cap=30))
    waits = [bridge.restart_delay() for _ in range(50)]
    assert all(5 <= w <= 30 for w in waits) and max(waits) == 30
    constant = Bridge(BridgeConfig("b", "b.x", (BridgeTopic("#"),), restart_base=20,
                                   restart_cap=None))
    assert {constant.restart_delay() for _ in range(5)} == {20}


def test_a_remote_broker_refusing_the_bridge_bit_is_tried_again_without_it():
    """Mosquitto's src/handle_connack.c: CONNACK 1 (unacceptable protocol version) to a
    try_private bridge clears try_private_accepted; the next CONNECT is plain 0x04."""
    bridge = Bridge(both_ways())
    bridge.connect_remote(0.0)
    assert bridge.data_for_remote()[8] == 0x84
    bridge.receive_remote(bytes((0x20, 2, 0, 1)), 0.1)  # CONNACK, return code 1
    bridge.remote_lost(0.1)
    bridge.connect_remote(5.0)
    assert bridge.data_for_remote()[8] == 0x04
