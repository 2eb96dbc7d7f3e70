"""Read a scenario from TOML (or a dict), check every key and value, build a ``Scenario``.

The file format, in short (data/scenarios/*.toml are worked examples)::

    name, description, duration = 60, transport = "tcp" | "datagram"
    version = 4, qos = 0, keepalive = 60, clean = true, retain = false   # defaults for all
    [link]          access link of every client; [link.up] / [link.down] per direction
    [tcp]           the transport model (TcpSpec)
    [broker]        BrokerSpec, restarts = [{at =, down =}]
    routers = [..]  and [[links]] a =, b =, plus link keys: the network behind the clients
    [[clients]]     ClientSpec keys, count = N, link = {...}, subscribe, [[clients.publish]]
    [[brokers]]     instead of [broker]: several brokers (the first is the default one);
                    a client says which with broker = "name"
    [[bridges]]     BridgeSpec: name, broker, remote, topics = [{pattern, direction, qos,
                    local_prefix, remote_prefix}], and mosquitto.conf's bridge options
    [middlebox]     idle_timeout =, on_idle = "drop" | "reset", at = node: a NAT, firewall or
                    load balancer on every client's route; a client's middlebox = {...} is
                    a layer over it, middlebox = false takes the client out from behind it

A client's link is built in layers, each overriding the keys it sets: the scenario's
``[link]``, its ``up``/``down`` table, the client's ``link``, and the client's ``link.up``/
``link.down``. So a client that says ``link = {bandwidth = 1e8}`` gets that bandwidth both
ways even when ``[link.up]`` sets another: what is said about the client wins.

Every mistake raises :class:`ScenarioError` naming the file, the dotted key, the value and
what is allowed, before anything runs (see ``checks.py``).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple


from ..netmodel.link import Bernoulli, GilbertElliott, LinkParams
from ..protocol.topics import validate_topic_filter, validate_topic_name
from ..world.topology import build as build_topology
from .checks import (BYTES, Bad, KEEPALIVE, MAX_COUNT, MAX_PAYLOAD, POSITIVE_SECONDS, PROBABILITY,
                     QOS, SECONDS, SIZE_KEYS, ScenarioError, Table, Where, bandwidth, boolean,
                     check_at, check_depth, check_workload, choice, client_identifier, integer,
                     mqtt_version, name, node_in, node_names, number, outages, show, text,
                     topic_rule)
from ..protocol.bridge import BridgeError, BridgeTopic
from ..world.middlebox import ON_IDLE
from .model import (PATTERNS, SIZE_DISTRIBUTIONS, TRANSPORTS, BridgeSpec, BrokerSpec,
                    ClientSpec, Crash, EdgeSpec, LinkSpec, MiddleboxSpec, PublishSpec, Scenario,
                    SizeSpec, SubscriptionSpec, TcpSpec, WillSpec)
from .overrides import parse_set, with_dotted_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ScenarioError", "load_file", "from_dict", "apply_overrides", "parse_set", "SCHEMA"]


# --- The format: every table and its keys. None is a value, a dict a table, [dict] an array
# of tables. The loader checks keys against it and overrides (overrides.py) walk it.

def _keys(*names: str, **tables: Any) -> dict[str, Any]:
    return {**dict.fromkeys(names), **tables}


GILBERT = _keys("p_good_to_bad", "p_bad_to_good", "loss_good", "loss_bad")
DIRECTION = _keys("bandwidth", "latency", "jitter", "queue", "loss", "outages", gilbert=GILBERT)
LINK = {**DIRECTION, "up": DIRECTION, "down": DIRECTION}
CRASH = _keys("at", "down")
SIZE = _keys("dist", "mean", "low", "high")
PUBLISH = _keys("topic", "pattern", "interval", "burst", "start", "stop", "count", "message",
                "qos", "retain", "message_expiry", "topic_alias", size=SIZE)
MIDDLEBOX = _keys("idle_timeout", "on_idle", "at")
# The Topic Alias Maximum of mqttsim's broker (BrokerConfig) and Mosquitto's default
# max_topic_alias: an alias above it would be a protocol error once connected.
BROKER_TOPIC_ALIAS_MAXIMUM = 10
SUBSCRIPTION = _keys("topic", "qos", "no_local", "retain_as_published")
WILL = _keys("topic", "message", "qos", "retain")
CLIENT = _keys("name", "client_id", "count", "version", "keepalive", "clean", "session_expiry",
               "attach", "connect_at", "disconnect_at", "reconnect", "reconnect_delay",
               "reconnect_max_delay", "max_queued", "queue_qos0_offline", "retry_policy",
               "retry_interval", "ping_timeout", "max_inflight", "stop_reading_at", "broker",
               "receive_maximum", "topic_alias_maximum", subscribe=[SUBSCRIPTION],
               publish=[PUBLISH], link=LINK, crashes=[CRASH], will=WILL, middlebox=MIDDLEBOX)
BROKER = _keys("name", "max_inflight", "max_queued", "max_queued_bytes", "queue_qos0",
               "hold_acks_when_congested",
               "persistence", "retry_policy", "retry_interval", "sys_interval",
               restarts=[CRASH])
TCP = _keys("mss", "window", "initial_rto", "min_rto", "max_rto", "max_retransmits",
            "syn_retries", "syn_linear_timeouts", "header_bytes", "delayed_ack", "congestion",
            "sack", "timestamps", "tail_loss_probe", "frto")
EDGE = {**LINK, "a": None, "b": None}
BRIDGE_TOPIC = _keys("pattern", "direction", "qos", "local_prefix", "remote_prefix")
BRIDGE = _keys("name", "broker", "remote", "version", "clean", "keepalive", "try_private",
               "restart_timeout", "remote_client_id", "max_inflight", "max_queued",
               topics=[BRIDGE_TOPIC])
SCHEMA = _keys("name", "description", "duration", "transport", "version", "qos", "keepalive",
               "clean", "retain", "routers", link=LINK, tcp=TCP, broker=BROKER, links=[EDGE],
               middlebox=MIDDLEBOX, clients=[CLIENT], brokers=[BROKER], bridges=[BRIDGE])


# --- Tables, one function each.

class _Defaults(NamedTuple):
    """Top-level values every client, publish and subscription starts from."""

    version: int
    qos: int
    keepalive: int
    clean: bool
    retain: bool


class _Client(NamedTuple):
    spec: ClientSpec
    where: Where  # the [[clients]] entry it came from
    written: str  # the name as written (before count expansion)


_LinkLayer = tuple[dict, dict, dict]  # LinkParams fields set for both / up / down


def _direction(t: Table | None) -> dict[str, Any]:
    """The LinkParams fields one table sets (only those: it is a layer over others)."""
    if t is None:
        return {}
    if "loss" in t and "gilbert" in t:
        t.fail("gilbert", "set either loss (independent losses) or gilbert (bursts), not both")
    fields = {key: t.get(key, check) for key, check in (
        ("bandwidth", bandwidth), ("latency", SECONDS), ("jitter", SECONDS),
        ("queue", integer(lo=1, unit="packets; omit for no limit")), ("outages", outages))
        if key in t}
    if "loss" in t:
        fields["loss"] = Bernoulli(t.get("loss", PROBABILITY))
    gilbert = t.sub("gilbert", GILBERT, "a Gilbert-Elliott table")
    if gilbert is not None:
        good_to_bad, bad_to_good = (gilbert.get(k, PROBABILITY)
                                    for k in ("p_good_to_bad", "p_bad_to_good"))
        if bad_to_good == 0 and good_to_bad > 0:
            gilbert.fail("p_bad_to_good", "expected a probability above 0 when p_good_to_bad "
                         "> 0: once bad, the link would never recover")
        fields["loss"] = GilbertElliott(good_to_bad, bad_to_good,
                                        gilbert.get("loss_good", PROBABILITY, 0.0),
                                        gilbert.get("loss_bad", PROBABILITY, 1.0))
    return fields


def _link_layer(t: Table | None) -> _LinkLayer:
    if t is None:
        return {}, {}, {}
    return (_direction(t), _direction(t.sub("up", DIRECTION, "a link direction table")),
            _direction(t.sub("down", DIRECTION, "a link direction table")))


def _link(*layers: _LinkLayer) -> LinkSpec:
    def params(direction: int) -> LinkParams:
        fields: dict[str, Any] = {}
        for layer in layers:
            fields.update(layer[0])
            fields.update(layer[direction])
        return LinkParams(**fields)

    return LinkSpec(up=params(1), down=params(2))


def _crashes(t: Table, key: str) -> tuple[Crash, ...]:
    crashes: list[Crash] = []
    for data, where in t.items(key):
        c = Table(data, where, CRASH, "a crash table {at = ..., down = ...}")
        crash = Crash(c.get("at", SECONDS), c.get("down", POSITIVE_SECONDS))
        if crashes and crash.at < crashes[-1].at + crashes[-1].down:
            end = crashes[-1].at + crashes[-1].down
            c.fail("at", f"expected a time >= {end}: crashes must be in time order and this "
                         f"one would come before the previous one is over")
        crashes.append(crash)
    return tuple(crashes)


def _tcp(t: Table | None) -> TcpSpec:
    d = TcpSpec()
    if t is None:
        return d
    mss = t.get("mss", integer(1, 65495, unit="bytes"), d.mss)
    min_rto = t.get("min_rto", POSITIVE_SECONDS, d.min_rto)
    initial_rto = t.get("initial_rto", number(lo=min_rto, unit="seconds, at least min_rto"),
                        max(d.initial_rto, min_rto))
    return TcpSpec(
        mss=mss,
        window=t.get("window", integer(lo=mss, unit="bytes, at least mss"), max(d.window, mss)),
        initial_rto=initial_rto,
        min_rto=min_rto,
        max_rto=t.get("max_rto", number(lo=initial_rto, unit="seconds, at least initial_rto"),
                      max(d.max_rto, initial_rto)),
        max_retransmits=t.get("max_retransmits", integer(lo=0), d.max_retransmits),
        syn_retries=t.get("syn_retries", integer(lo=0), d.syn_retries),
        syn_linear_timeouts=t.get("syn_linear_timeouts", integer(lo=0), d.syn_linear_timeouts),
        header_bytes=t.get("header_bytes", integer(lo=0, unit="bytes"), d.header_bytes),
        delayed_ack=t.get("delayed_ack", number(lo=0, unit="seconds, 0 = ACK at once"),
                          d.delayed_ack),
        congestion=t.get("congestion", choice("cubic", "reno", "bbr"), d.congestion),
        sack=t.get("sack", boolean, d.sack), timestamps=t.get("timestamps", boolean, d.timestamps),
        tail_loss_probe=t.get("tail_loss_probe", boolean, d.tail_loss_probe),
        frto=t.get("frto", boolean, d.frto))


def _broker(t: Table | None) -> BrokerSpec:
    d = BrokerSpec()
    if t is None:
        return d
    return BrokerSpec(
        name=t.get("name", name, d.name),
        max_inflight=t.get("max_inflight", integer(1, 65535), d.max_inflight),
        max_queued=t.get("max_queued", integer(lo=0, unit="messages"), d.max_queued),
        max_queued_bytes=t.get("max_queued_bytes", integer(lo=1, unit="bytes"),
                               d.max_queued_bytes),
        queue_qos0=t.get("queue_qos0", boolean, d.queue_qos0),
        hold_acks_when_congested=t.get("hold_acks_when_congested", boolean,
                                       d.hold_acks_when_congested),
        persistence=t.get("persistence", boolean, d.persistence),
        retry_policy=t.get("retry_policy", choice("on_reconnect", "timer"), None),
        retry_interval=t.get("retry_interval", POSITIVE_SECONDS, d.retry_interval),
        restarts=_crashes(t, "restarts"),
        sys_interval=t.get("sys_interval", SECONDS, d.sys_interval))


def _size(value: Any, where: Where) -> SizeSpec:
    if not isinstance(value, dict):
        count = integer(0, MAX_PAYLOAD, unit="bytes; or a table {dist = ..., ...}")
        return SizeSpec("fixed", mean=check_at(where, value, count))
    dist = Table(value, where, SIZE).get("dist", choice(*SIZE_DISTRIBUTIONS), "fixed")
    t = Table(value, where, SIZE_KEYS[dist], f"a size table with dist = {dist!r}")
    if dist == "fixed":
        return SizeSpec("fixed", mean=t.get("mean", BYTES))
    if dist == "uniform":
        low = t.get("low", BYTES)
        high = t.get("high", integer(low, MAX_PAYLOAD, unit="bytes, at least low"))
        return SizeSpec("uniform", mean=(low + high) / 2, low=low, high=high)
    return SizeSpec("exponential", mean=t.get("mean", number(above=0, unit="bytes")),
                    low=t.get("low", BYTES, 0))


def _only_v5(t: Table, keys: tuple[str, ...], version: int, what: str) -> None:
    for key in keys:
        if key in t and version != 5:
            t.fail(key, f"{what} of MQTT 5; set version = 5 for this client, or leave it out")


def _publish(t: Table, version: int, d: _Defaults) -> PublishSpec:
    pattern = t.get("pattern", choice(*PATTERNS), "periodic")
    interval_check = SECONDS if pattern == "once" else number(
        above=0, unit=f"seconds between {'bursts' if pattern == 'burst' else 'messages'}")
    start = t.get("start", SECONDS, 0.0)
    message = t.get("message", text, None)
    if message is not None and "size" in t:
        t.fail("size", "a publish with a fixed message sends the message's own size; "
                       "set either message or size, not both")
    _only_v5(t, ("message_expiry", "topic_alias"), version, "a PUBLISH property")
    return PublishSpec(
        topic=t.get("topic", topic_rule(validate_topic_name, version, "topic name")),
        pattern=pattern,
        interval=t.get("interval", interval_check, 1.0),
        burst=t.get("burst", integer(lo=1, unit="messages per burst"), 1),
        start=start,
        stop=t.get("stop", number(above=start, unit="seconds, after start"), None),
        count=t.get("count", integer(lo=1, unit="messages"), None),
        message=message,
        size=_size(t.data["size"], t.where.at("size")) if "size" in t else SizeSpec(),
        qos=t.get("qos", QOS, d.qos),
        retain=t.get("retain", boolean, d.retain),
        message_expiry=t.get("message_expiry", integer(0, 2**32 - 1, unit=(
            "seconds the broker may keep the message before delivering it")), None),
        topic_alias=t.get("topic_alias", integer(1, BROKER_TOPIC_ALIAS_MAXIMUM, unit=(
            "the alias number, within the broker's Topic Alias Maximum [MQTT-3.3.2-9]: "
            "mqttsim's broker and Mosquitto allow 10")), None))


def _subscriptions(t: Table, version: int, qos: int) -> tuple[SubscriptionSpec, ...]:
    topic_filter = topic_rule(validate_topic_filter, version, "topic filter")
    value = t.data.get("subscribe")
    if isinstance(value, str):  # one filter
        return (SubscriptionSpec(check_at(t.where.at("subscribe"), value, topic_filter), qos),)
    subscriptions = []
    for item, where in t.items("subscribe"):
        if isinstance(item, str):
            subscriptions.append(SubscriptionSpec(check_at(where, item, topic_filter), qos))
            continue
        s = Table(item, where, SUBSCRIPTION, "a topic filter (string) or a table")
        for option in ("no_local", "retain_as_published"):
            if option in s and version != 5:
                s.fail(option, "a subscription option of MQTT 5; set version = 5 for this "
                               "client, or leave it out")
        subscriptions.append(SubscriptionSpec(
            s.get("topic", topic_filter), s.get("qos", QOS, qos),
            no_local=s.get("no_local", boolean, False),
            retain_as_published=s.get("retain_as_published", boolean, False)))
    return tuple(subscriptions)


def _will(t: Table | None, version: int) -> WillSpec | None:
    if t is None:
        return None
    return WillSpec(topic=t.get("topic", topic_rule(validate_topic_name, version, "topic name")),
                    message=t.get("message", text, ""), qos=t.get("qos", QOS, 0),
                    retain=t.get("retain", boolean, False))


MIDDLEBOX_TABLE = "a middlebox table {idle_timeout = ..., on_idle = ..., at = ...}"


def _middlebox(t: Table, top: Table | None) -> MiddleboxSpec | None:
    """The client's middlebox: the scenario's ``[middlebox]`` with the client's own table
    over it; ``middlebox = false`` puts the client behind none."""
    value = t.data.get("middlebox")
    if value is False:
        return None
    if value is True:
        t.fail("middlebox", f"expected {MIDDLEBOX_TABLE}, or false for none")
    layers = [x for x in (top, t.sub("middlebox", MIDDLEBOX, MIDDLEBOX_TABLE)) if x is not None]
    if not layers:
        return None
    values: dict[str, Any] = {}
    for layer in layers:
        for key, check in (("idle_timeout", number(above=0, unit=(
                "seconds a flow may stay idle before the middlebox forgets it"))),
                ("on_idle", choice(*ON_IDLE)), ("at", name)):
            if key in layer:
                values[key] = layer.get(key, check)
    if "idle_timeout" not in values:
        layers[-1].where.at("idle_timeout").missing(
            "expected a number > 0 (seconds a flow may stay idle before it is forgotten)")
    return MiddleboxSpec(**values)


def _client(t: Table, d: _Defaults, base: _LinkLayer, broker: str,
            brokers: tuple[str, ...], box: Table | None = None) -> ClientSpec:
    client_name = t.get("name", name)
    own = t.get("broker", choice(*brokers), broker)
    version = t.get("version", mqtt_version, d.version)
    _only_v5(t, ("receive_maximum", "topic_alias_maximum"), version, "a CONNECT property")
    clean = t.get("clean", boolean, d.clean)
    if "client_id" in t:
        client_id = t.get("client_id", client_identifier(version))
    else:  # the name is the client id: it must be one MQTT can carry
        client_id = t.get("name", client_identifier(version))
    if not client_id and not clean and version < 5:
        t.fail("client_id", "expected a non-empty client_id, because clean = false: before "
                            "MQTT 5 an empty id requires a clean session (MQTT-3.1.3-7)")
    connect_at = t.get("connect_at", SECONDS, 0.0)
    reconnect_delay = t.get("reconnect_delay", POSITIVE_SECONDS, 1.0)
    return ClientSpec(
        name=client_name, client_id=client_id, version=version,
        keepalive=t.get("keepalive", KEEPALIVE, d.keepalive), clean=clean,
        session_expiry=t.get("session_expiry", integer(0, 2**32 - 1, unit="seconds"), 0),
        subscribe=_subscriptions(t, version, d.qos),
        publish=tuple(_publish(Table(data, where, PUBLISH, "a publish table"), version, d)
                      for data, where in t.items("publish", single=True)),
        attach=t.get("attach", name, own),
        broker="" if own == broker else own,
        link=_link(base, _link_layer(t.sub("link", LINK, "a link table"))),
        connect_at=connect_at,
        disconnect_at=t.get("disconnect_at", number(above=connect_at,
                                                    unit="seconds, after connect_at"), None),
        reconnect=t.get("reconnect", boolean, True),
        reconnect_delay=reconnect_delay,
        reconnect_max_delay=t.get("reconnect_max_delay", number(
            lo=reconnect_delay, unit="seconds, at least reconnect_delay"),
            max(30.0, reconnect_delay)),
        max_queued=t.get("max_queued", integer(lo=1, unit="messages"), None),
        queue_qos0_offline=t.get("queue_qos0_offline", boolean, False),
        crashes=_crashes(t, "crashes"),
        retry_policy=t.get("retry_policy", choice("on_reconnect", "timer"), None),
        retry_interval=t.get("retry_interval", POSITIVE_SECONDS, 20.0),
        ping_timeout=t.get("ping_timeout", POSITIVE_SECONDS, None),
        max_inflight=t.get("max_inflight", integer(1, 65535, unit="messages"), 20),
        receive_maximum=t.get("receive_maximum", integer(1, 65535, unit=(
            "QoS 1/2 messages in flight towards the client; 0 is a Protocol Error, "
            "MQTT 5 3.1.2.11.3")), None),
        topic_alias_maximum=t.get("topic_alias_maximum", integer(0, 65535, unit=(
            "aliases the broker may use towards the client")), None),
        will=_will(t.sub("will", WILL, "a will table"), version),
        middlebox=_middlebox(t, box),
        stop_reading_at=t.get("stop_reading_at", number(
            lo=connect_at, unit="seconds, at least connect_at; the client never reads again"),
            None))


def _clients(top: Table, d: _Defaults, base: _LinkLayer, broker: str,
             brokers: tuple[str, ...]) -> list[_Client]:
    box = top.sub("middlebox", MIDDLEBOX, MIDDLEBOX_TABLE)
    entries = top.items("clients")
    if not entries:
        top.where.at("clients").missing("a scenario needs at least one [[clients]] table")
    clients = []
    for data, where in entries:
        t = Table(data, where, CLIENT, "a client table")
        spec = _client(t, d, base, broker, brokers, box)
        count = t.get("count", integer(1, MAX_COUNT, unit="clients"), None)
        if count is None:
            clients.append(_Client(spec, where, spec.name))
            continue
        for i in range(1, count + 1):
            client_id = f"{spec.client_id}-{i}" if spec.client_id else ""  # "": broker picks
            clients.append(_Client(replace(spec, name=f"{spec.name}-{i}", client_id=client_id),
                                   where, spec.name))
    return clients


def _edges(top: Table, nodes: list[str]) -> tuple[EdgeSpec, ...]:
    node = node_in(nodes)
    edges: dict[frozenset[str], str] = {}
    result = []
    for data, where in top.items("links"):
        t = Table(data, where, EDGE, "a [[links]] table")
        a, b = t.get("a", node), t.get("b", node)
        if a == b:
            t.fail("b", f"expected a node other than a ({a!r}): a link joins two nodes")
        pair = frozenset((a, b))
        if pair in edges:
            t.fail("b", f"a second link between {a!r} and {b!r}; {edges[pair]} joins them")
        edges[pair] = where.path
        result.append(EdgeSpec(a, b, _link(_link_layer(t))))
    return tuple(result)


def _check_topology(top: Table, brokers: tuple[BrokerSpec, ...], routers: tuple[str, ...],
                    edges: tuple[EdgeSpec, ...], clients: list[_Client],
                    bridges: tuple[tuple[BridgeSpec, Where], ...] = ()) -> None:
    """Names unique across all nodes; every router linked; every client reaches its broker;
    every bridge's broker reaches the remote one."""
    broker = brokers[0]
    owner = {b.name: "the broker" if len(brokers) == 1 else "a broker" for b in brokers}
    for i, router in enumerate(routers):
        if router in owner:
            top.where.at("routers").index(i).fail(router, f"the name is already used by "
                                                          f"{owner[router]}; names must be unique")
        owner[router] = "a router"
    for b, where in bridges:
        for leg in (b.name, b.local_name):
            if leg in owner:
                where.at("name").fail(b.name, f"the name {leg!r} is already used by "
                                              f"{owner[leg]}; names must be unique")
            owner[leg] = f"the bridge at {where.path}"
    # Two clients may share a client_id on purpose: that is how a takeover is staged
    # [MQTT-3.1.4-2], the classic "two devices flashed with one id" fault.
    for c in clients:
        label = f"{c.spec.name!r}" + (" (from count)" if c.spec.name != c.written else "")
        if c.spec.name in owner:
            c.where.at("name").fail(c.written, f"the client name {label} is already used by "
                                               f"{owner[c.spec.name]}; names must be unique")
        owner[c.spec.name] = f"the client at {c.where.path}"
    topology = build_topology(broker.name, routers, [(e.a, e.b, e.link) for e in edges],
                              brokers=[b.name for b in brokers[1:]])
    graph = topology.graph
    for i, router in enumerate(routers):
        if graph.degree(router) == 0:
            top.where.at("routers").index(i).fail(router, "no [[links]] entry joins this router "
                                                          "to anything; add one with a = "
                                                          f"{router!r}, or remove the router")
    for c in clients:
        attach, own = c.spec.attach, c.spec.broker or broker.name
        if attach not in graph:
            known = ", ".join(map(repr, routers)) or "none defined"
            what = (f"the broker ({broker.name!r})" if len(brokers) == 1 else
                    "a broker (" + ", ".join(repr(b.name) for b in brokers) + ")")
            c.where.at("attach").fail(attach, f"no such node; expected {what} or a router "
                                              f"({known})")
        if not topology.reaches_broker(attach, own):
            c.where.at("attach").fail(attach, f"no path from {attach!r} to the broker "
                                              f"{own!r} through [[links]]; add a link")
        box = c.spec.middlebox
        if box is not None and box.at is not None:
            route = topology.route(attach, own)
            if box.at not in route:
                c.where.at("middlebox").at("at").fail(
                    box.at, f"not on the route of {c.spec.name!r} to the broker "
                            f"({' -> '.join([c.spec.name, *route])}); name one of its nodes")
    for b, where in bridges:
        if not topology.reaches_broker(b.broker, b.remote):
            where.at("remote").fail(b.remote, f"no path from the broker {b.broker!r} to "
                                              f"{b.remote!r} through [[links]]; add a link")


def _brokers(top: Table) -> tuple[BrokerSpec, ...]:
    """``[broker]``, or ``[[brokers]]`` (each named; the first is the default one)."""
    if "brokers" not in top:
        return (_broker(top.sub("broker", BROKER, "the [broker] table")),)
    if "broker" in top:
        top.fail("broker", "set either [broker] (one broker) or [[brokers]] (several), not both")
    brokers: list[BrokerSpec] = []
    for data, where in top.items("brokers"):
        t = Table(data, where, BROKER, "a [[brokers]] table")
        spec = _broker(t)
        if "name" not in t:
            where.at("name").missing("each of several brokers needs a name")
        if any(b.name == spec.name for b in brokers):
            t.fail("name", "a second broker with this name; names must be unique")
        brokers.append(spec)
    if not brokers:
        top.where.at("brokers").missing("expected at least one [[brokers]] table")
    return tuple(brokers)


def _restart_timeout(value: Any) -> tuple[float, float | None]:
    """mosquitto.conf's ``restart_timeout BASE [CAP]``: a number, or [base] / [base, cap]."""
    seconds = number(above=0, unit="seconds")
    if isinstance(value, list) and len(value) in (1, 2):
        base = seconds(value[0])
        if len(value) == 1:
            return base, None
        cap = number(lo=base, unit="seconds, at least the base")(value[1])
        return base, cap
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return seconds(value), None
    raise Bad("expected seconds (a constant wait) or [base, cap] (Mosquitto's back-off)")


def _bridges(top: Table, brokers: tuple[str, ...]) -> tuple[tuple[BridgeSpec, Where], ...]:
    found = []
    for data, where in top.items("bridges"):
        t = Table(data, where, BRIDGE, "a [[bridges]] table")
        local = t.get("broker", choice(*brokers), brokers[0])
        remote = t.get("remote", choice(*brokers))
        if remote == local:
            t.fail("remote", "expected another broker than the bridge's own")
        version = t.get("version", mqtt_version, 4)
        topics = []
        for item, at in t.items("topics"):
            u = Table(item, at, BRIDGE_TOPIC, "a bridge topic table {pattern = ..., ...}")
            try:
                topics.append(BridgeTopic(
                    u.get("pattern", text), u.get("direction", choice("in", "out", "both"),
                                                  "out"),
                    u.get("qos", QOS, 0), u.get("local_prefix", text, ""),
                    u.get("remote_prefix", text, "")))
            except BridgeError as error:
                at.fail(item, str(error))
        if not topics:
            where.at("topics").missing("a bridge needs at least one topic: it would carry "
                                       "nothing")
        base, cap = t.get("restart_timeout", _restart_timeout, (5.0, 30.0))
        found.append((BridgeSpec(
            name=t.get("name", name), broker=local, remote=remote, topics=tuple(topics),
            version=version, clean=t.get("clean", boolean, False),
            keepalive=t.get("keepalive", integer(5, 65535, unit="seconds"), 60),
            try_private=t.get("try_private", boolean, True), restart_base=base,
            restart_cap=cap,
            remote_client_id=t.get("remote_client_id", client_identifier(version), ""),
            max_inflight=t.get("max_inflight", integer(1, 65535, unit="messages"), 20),
            max_queued=t.get("max_queued", integer(lo=0, unit="messages"), 1000)), where))
    names = [b.name for b, _ in found]
    for b, where in found:
        if names.count(b.name) > 1:
            where.at("name").fail(b.name, "a second bridge with this name; names must be "
                                          "unique")
    return tuple(found)


def from_dict(data: Mapping[str, Any], source: str | None = None) -> Scenario:
    """Check ``data`` (a parsed TOML document) and build the Scenario it describes."""
    where = Where("<dict>" if source is None else str(source))
    if not isinstance(data, Mapping):
        where.fail(data, "expected a table (dict) describing a scenario")
    check_depth(data, where)  # before deepcopy, which would overflow the stack
    raw = copy.deepcopy(dict(data))
    if raw.get("name") is None:
        raw["name"] = Path(source).stem if source is not None else "scenario"
    top = Table(raw, where, SCHEMA, "a scenario")
    d = _Defaults(version=top.get("version", mqtt_version, 4), qos=top.get("qos", QOS, 0),
                  keepalive=top.get("keepalive", KEEPALIVE, 60),
                  clean=top.get("clean", boolean, True), retain=top.get("retain", boolean, False))
    brokers = _brokers(top)
    broker, names = brokers[0], tuple(b.name for b in brokers)
    routers = top.get("routers", node_names, ())
    edges = _edges(top, [*names, *routers])
    clients = _clients(top, d, _link_layer(top.sub("link", LINK, "the [link] table")),
                       broker.name, names)
    bridges = _bridges(top, names)
    _check_topology(top, brokers, routers, edges, clients, bridges)
    duration = top.get("duration", POSITIVE_SECONDS, 60.0)
    check_workload(((c.spec, c.where.path) for c in clients), duration, where.source)
    scenario = Scenario(
        name=top.get("name", name), clients=tuple(c.spec for c in clients),
        description=top.get("description", text, ""),
        duration=duration,
        transport=top.get("transport", choice(*TRANSPORTS), "tcp"),
        tcp=_tcp(top.sub("tcp", TCP, "the [tcp] table")), broker=broker, routers=routers,
        links=edges, other_brokers=brokers[1:], bridges=tuple(b for b, _ in bridges), source=source if source is None else str(source))
    object.__setattr__(scenario, "raw", raw)  # frozen; the loader alone sets it
    return scenario


def load_file(path: str | Path) -> Scenario:
    """Read and check a TOML scenario file; its name defaults to the file's stem.

    A file that cannot be read, is not UTF-8 text (TOML 1.0: "A TOML file must be a valid
    UTF-8 encoded Unicode document") or nests deeper than the parser's stack raises
    ScenarioError naming the file, like every other mistake.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the file: "
                            f"{error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{path}: not a TOML file: byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start} is not UTF-8 text (TOML files are UTF-8; is it a binary "
            "file?)") from None
    except RecursionError:
        raise ScenarioError(f"{path}: not a usable TOML file: arrays or tables are nested "
                            "too deeply to parse (a scenario nests 5 levels)") from None
    return from_dict(data, str(path))


# --- Overrides (the machinery is in overrides.py): edit a copy of the raw dict, check again.

def apply_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """A new Scenario with each dotted key of ``overrides`` set in ``scenario.to_dict()``.

    A path element picks an array entry by index, or a client by its name:
    ``clients.sub.keepalive``, ``clients.0.publish.0.qos``. Missing tables are created.
    """
    source = scenario.source or "<dict>"
    raw = with_dotted_keys(scenario.to_dict(), overrides, SCHEMA, source)
    try:
        return from_dict(raw, scenario.source)
    except ScenarioError as error:
        applied = ", ".join(f"{k}={show(v)}" for k, v in overrides.items())
        raise ScenarioError(f"{error} (after the overrides {applied})") from None
