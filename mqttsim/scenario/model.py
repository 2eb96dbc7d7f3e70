"""What an experiment is, as plain frozen data: topology, links, clients, workloads, duration.

A ``Scenario`` is built from a TOML file or a dict by ``mqttsim.scenario.load`` (which checks
every key and value and says which one is wrong), or in code, and read by the backends.
Nothing here runs anything. Times are seconds of scenario time from the start of the run;
bandwidths are bits per second. Client tables with ``count = N`` are already expanded into N
clients here.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from ..netmodel.link import Bernoulli, LinkParams
from ..protocol.bridge import BridgeTopic

TRANSPORTS = ("tcp", "datagram")
PATTERNS = ("once", "periodic", "poisson", "burst")
SIZE_DISTRIBUTIONS = ("fixed", "uniform", "exponential")


@dataclass(frozen=True)
class LinkSpec:
    """Both directions of one link. ``up`` carries traffic towards the broker."""

    up: LinkParams = field(default_factory=LinkParams)
    down: LinkParams = field(default_factory=LinkParams)


@dataclass(frozen=True)
class SizeSpec:
    """Payload size in bytes: ``fixed`` (``mean``), ``uniform`` (``low``..``high``) or
    ``exponential`` (``mean``, at least ``low``)."""

    dist: str = "fixed"
    mean: float = 16
    low: int = 0
    high: int = 0


@dataclass(frozen=True)
class MiddleboxSpec:
    """A NAT, stateful firewall or load balancer on a client's route that forgets a flow
    idle for more than ``idle_timeout`` seconds (mqttsim.world.middlebox). ``on_idle``:
    ``"drop"`` its packets silently from then on, or ``"reset"`` it (a RST to each end).
    ``at``: the node it stands in front of, on the client's side (None: the node the client
    attaches to -- its home router, or the broker's load balancer)."""

    idle_timeout: float
    on_idle: str = "drop"
    at: str | None = None


@dataclass(frozen=True)
class PublishSpec:
    """One publishing workload of a client.

    ``once``: one message at ``start``. ``periodic``: every ``interval`` s. ``poisson``:
    exponential gaps with mean ``interval``. ``burst``: ``burst`` messages back to back every
    ``interval`` s. Publishing stops at ``stop`` (None: the scenario's end) or after ``count``
    messages. ``message`` is a fixed payload like ``pub -m``; without it each payload is
    generated with ``size`` bytes and starts with a tag naming publisher and sequence number,
    so every copy can be traced to its message even through a real broker.
    """

    topic: str
    pattern: str = "periodic"
    interval: float = 1.0
    burst: int = 1
    start: float = 0.0
    stop: float | None = None
    count: int | None = None
    message: str | None = None
    size: SizeSpec = field(default_factory=SizeSpec)
    qos: int = 0
    retain: bool = False
    # MQTT 5: seconds after which the broker no longer delivers the message (Message Expiry
    # Interval, 3.3.2.3.3 [MQTT-3.3.2-5]); None: it never expires.
    message_expiry: int | None = None
    # MQTT 5: the topic alias (1..65535) this workload's messages use: the first PUBLISH on
    # a connection carries topic and alias, the later ones the alias alone (3.3.2.3.4),
    # when the broker's Topic Alias Maximum allows it.
    topic_alias: int | None = None


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: str
    qos: int = 0
    no_local: bool = False  # MQTT 5: not sent our own messages back [MQTT-3.8.3-3]
    retain_as_published: bool = False  # MQTT 5: forwarded copies keep RETAIN [MQTT-3.3.1-12]


@dataclass(frozen=True)
class WillSpec:
    topic: str
    message: str = ""
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True)
class Crash:
    """The client process dies at ``at`` (no DISCONNECT, the TCP connection is reset) and
    starts again ``down`` seconds later, keeping its configuration but losing all state.
    For a broker: same, and with ``persistence`` its sessions and retained messages survive."""

    at: float
    down: float


@dataclass(frozen=True)
class ClientSpec:
    """One MQTT client. Defaults are mosquitto_sub/pub's: MQTT 3.1.1, keepalive 60, clean."""

    name: str
    client_id: str
    version: int = 4
    keepalive: int = 60
    clean: bool = True
    session_expiry: int = 0  # MQTT 5 only
    subscribe: tuple[SubscriptionSpec, ...] = ()
    publish: tuple[PublishSpec, ...] = ()
    attach: str = "broker"  # the node its access link leads to: the broker or a router
    broker: str = ""  # the broker it connects to, with several; "": the scenario's (first)
    link: LinkSpec = field(default_factory=LinkSpec)  # its access link
    connect_at: float = 0.0
    disconnect_at: float | None = None  # sends DISCONNECT then (like pub after -m)
    # After a broken connection the client connects again (reconnect_delay() in
    # mqttsim.protocol.client_config: the same schedule as Client(reconnect=True)); a refused
    # CONNACK ends it, as it ends mosquitto_sub. reconnect = false: it stays away.
    reconnect: bool = True
    reconnect_delay: float = 1.0  # first wait after a broken connection; doubles each try
    reconnect_max_delay: float = 30.0
    # The client's own queue, behind its in-flight window and while it has no connection
    # (the offline buffer; Client(max_queued=...)): None = no limit. A message that finds
    # it full is dropped (drops table: side client, reason queue_full); QoS 0 published
    # without a connection is dropped (qos0_offline) unless queue_qos0_offline.
    max_queued: int | None = None
    queue_qos0_offline: bool = False
    crashes: tuple[Crash, ...] = ()
    retry_policy: str | None = None  # "on_reconnect" | "timer"; None: by version
    retry_interval: float = 20.0
    ping_timeout: float | None = None  # None: one keepalive
    max_inflight: int = 20
    # MQTT 5 CONNECT properties: how many QoS 1/2 PUBLISHes the broker may have
    # unacknowledged towards this client (Receive Maximum, 3.1.2.11.3; None: 65535), and
    # how many topic aliases the broker may use towards it (3.1.2.11.5; None: 0, none).
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    will: WillSpec | None = None
    middlebox: MiddleboxSpec | None = None  # a NAT/firewall/load balancer on its route
    # From then on the application never reads its connection again: a stuck subscriber.
    # The bytes keep arriving (the TCP model has no receive window), but its MQTT side never
    # sees them, so it acknowledges nothing: QoS 1/2 copies fill the broker's in-flight
    # window, then the session's queue, then are dropped for it (queue_full). QoS 0 copies
    # are never queued for a connected client, so they are sent and ignored, not dropped.
    stop_reading_at: float | None = None


@dataclass(frozen=True)
class BrokerSpec:
    name: str = "broker"
    max_inflight: int = 20
    max_queued: int = 1000
    max_queued_bytes: int | None = None  # payload bytes per client; None: no limit
    queue_qos0: bool = False
    hold_acks_when_congested: bool = False  # opt-in and bounded: BrokerConfig says how
    persistence: bool = True  # sessions and retained messages survive a restart
    # How the broker resends unacknowledged QoS 1/2 messages to subscribers; None: by the
    # subscriber's version (MQTT 3.1: on a timer, every retry_interval; later: on reconnect).
    retry_policy: str | None = None
    retry_interval: float = 20.0
    restarts: tuple[Crash, ...] = ()
    # Seconds between updates of the broker's $SYS/broker/... tree (mosquitto's
    # sys_interval); 0, the default here: no tree, so the tables of existing scenarios stay
    # as they were. With it, Results.sys has every update's values.
    sys_interval: float = 0.0


@dataclass(frozen=True)
class BridgeSpec:
    """A bridge of broker ``broker`` to broker ``remote`` (Mosquitto's ``connection``):
    ``topics`` as mosquitto.conf's ``topic`` lines; the rest as its bridge options, with
    its defaults (mqttsim.protocol.bridge.BridgeConfig). The remote client id defaults to
    ``<broker>.<name>`` (Mosquitto's ``hostname.name``), the local one to ``local.`` + it."""

    name: str
    broker: str
    remote: str
    topics: tuple[BridgeTopic, ...]
    version: int = 4
    clean: bool = False
    keepalive: int = 60
    try_private: bool = True
    restart_base: float = 5.0
    restart_cap: float | None = 30.0  # None: a constant restart_base
    remote_client_id: str = ""
    max_inflight: int = 20
    max_queued: int = 1000

    @property
    def client_id(self) -> str:
        return self.remote_client_id or f"{self.broker}.{self.name}"

    @property
    def local_name(self) -> str:
        """The bridge's local leg, as a client of ``broker`` in the tables."""
        return f"local.{self.name}"


@dataclass(frozen=True)
class EdgeSpec:
    """A link between two routers, or a router and the broker."""

    a: str
    b: str
    link: LinkSpec = field(default_factory=LinkSpec)


@dataclass(frozen=True)
class TcpSpec:
    """The transport model's parameters; defaults are Linux's."""

    mss: int = 1460
    window: int = 65535
    initial_rto: float = 1.0
    min_rto: float = 0.2
    max_rto: float = 120.0
    max_retransmits: int = 15  # tcp_retries2: a time budget, 924.6 s (netmodel.rto.give_up_after)
    syn_retries: int = 6  # tcp_syn_retries
    # tcp_syn_linear_timeouts (Linux 6.5 and later: 4): SYNs resent 1 s apart that many times
    # before the doubling starts (netmodel.tcp.syn_schedule); 0 for older kernels
    syn_linear_timeouts: int = 4
    header_bytes: int = 40
    # A receiver with nothing to send back waits this long before a pure ACK, unless more
    # than one MSS is unacknowledged (Linux: 40 ms minimum, RFC 1122 4.2.3.2); 0: at once.
    delayed_ack: float = 0.04
    # "cubic" (the kernel backend's per-route default, so that the two backends compare like
    # with like) or "reno"; "bbr" only on the kernel backend: the simulator's TCP model has
    # Reno and CUBIC (mqttsim/netmodel/congestion.py) and refuses it before the run.
    congestion: str = "cubic"
    # Linux's defaults, switchable to see what each buys (net.ipv4.tcp_sack,
    # tcp_timestamps, tcp_early_retrans for the tail loss probe, tcp_frto).
    sack: bool = True
    timestamps: bool = True
    tail_loss_probe: bool = True
    frto: bool = True


@dataclass(frozen=True)
class Scenario:
    """One experiment. Build it with ``Scenario.load(path)``, ``Scenario.from_dict(d)`` or in
    code (``Scenario("name", clients=(ClientSpec(...), ...))``); change any of them with
    ``with_(**{"link.loss": 0.1})``; ``to_dict()`` gives it in the file's keys."""

    name: str
    clients: tuple[ClientSpec, ...]
    description: str = ""
    duration: float = 60.0
    transport: str = "tcp"
    tcp: TcpSpec = field(default_factory=TcpSpec)
    broker: BrokerSpec = field(default_factory=BrokerSpec)
    routers: tuple[str, ...] = ()
    links: tuple[EdgeSpec, ...] = ()
    # More brokers (``[[brokers]]`` after the first, which is ``broker``) and the bridges
    # between them; a client names its broker (ClientSpec.broker).
    other_brokers: tuple[BrokerSpec, ...] = ()
    bridges: tuple[BridgeSpec, ...] = ()
    # The file it came from, for error messages (not part of what the experiment is).
    source: str | None = field(default=None, compare=False)
    # The dict it was loaded from, as written (count tables, link layers), so overrides
    # address what the author wrote. Set by the loader only: a Scenario built in code, or
    # changed with dataclasses.replace, has none and to_dict() writes its fields out.
    raw: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def load(cls, path) -> "Scenario":
        """Read a TOML scenario file; every key and value is checked (ScenarioError)."""
        from .load import load_file
        return load_file(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> "Scenario":
        from .load import from_dict
        return from_dict(data, source)

    def with_(self, **overrides: Any) -> "Scenario":
        """A copy with dotted keys replaced: ``sc.with_(**{"link.loss": 0.1, "qos": 1})``."""
        from .load import apply_overrides
        return apply_overrides(self, overrides)

    @property
    def brokers(self) -> tuple[BrokerSpec, ...]:
        """Every broker, the first (``broker``) first."""
        return (self.broker, *self.other_brokers)

    def broker_of(self, client: ClientSpec) -> str:
        """The name of the broker ``client`` connects to."""
        return client.broker or self.broker.name

    def to_dict(self) -> dict[str, Any]:
        """The scenario in the file's keys: ``Scenario.from_dict(sc.to_dict()) == sc``.

        Loaded from a file or dict: that dict as written (overrides applied). Built in code:
        its fields written out, with what all clients share said once at the top (``[link]``,
        ``version``, ``qos``, ...) so that ``with_(**{"link.loss": 0.1})`` reaches them all.
        """
        return copy.deepcopy(self.raw) if self.raw else _scenario_dict(self)


# --- Writing a Scenario out in the file's keys (the inverse of load.from_dict). A key is
# written when its value differs from the default the loader would apply.

def _changed(spec: Any, default: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``spec`` (a frozen dataclass) that differ from ``default``'s."""
    return {f.name: getattr(spec, f.name) for f in fields(spec)
            if f.name not in skip and getattr(spec, f.name) != getattr(default, f.name)}


def _most_common(values: list[Any], default: Any) -> Any:
    return Counter(values).most_common(1)[0][0] if values else default


def _direction_dict(params: LinkParams) -> dict[str, Any]:
    d = _changed(params, LinkParams(), skip=("loss", "outages", "bandwidth"))
    if params.bandwidth is not None:
        d["bandwidth"] = params.bandwidth
    loss = params.loss
    if isinstance(loss, Bernoulli):
        if loss.p:
            d["loss"] = loss.p
    else:
        d["gilbert"] = {f.name: getattr(loss, f.name) for f in fields(loss)}
    if params.outages:
        d["outages"] = [[o.start, o.end] for o in params.outages]
    return d


def _link_dict(link: LinkSpec) -> dict[str, Any]:
    """A link layer saying exactly ``link`` (every key it leaves out is the model default)."""
    if link.up == link.down:
        return _direction_dict(link.up)
    return {"up": _direction_dict(link.up), "down": _direction_dict(link.down)}


def _size_value(size: SizeSpec) -> Any:
    if size.dist == "fixed":
        return int(size.mean) if float(size.mean).is_integer() else {"mean": size.mean}
    if size.dist == "uniform":
        return {"dist": "uniform", "low": size.low, "high": size.high}
    return {"dist": size.dist, "mean": size.mean, "low": size.low}


def _publish_dict(p: PublishSpec, qos: int, retain: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"topic": p.topic,
                         **_changed(p, PublishSpec(p.topic), skip=("size", "qos", "retain"))}
    if p.size != SizeSpec():
        d["size"] = _size_value(p.size)
    if p.qos != qos:
        d["qos"] = p.qos
    if p.retain != retain:
        d["retain"] = p.retain
    return d


def _crashes(crashes: tuple[Crash, ...]) -> list[dict[str, float]]:
    return [{"at": c.at, "down": c.down} for c in crashes]


def _client_dict(c: ClientSpec, top: dict[str, Any], link: LinkSpec | None,
                 broker: str, top_middlebox: MiddleboxSpec | None = None) -> dict[str, Any]:
    default = ClientSpec(c.name, c.name, version=top.get("version", 4),
                         keepalive=top.get("keepalive", 60), clean=top.get("clean", True),
                         attach=c.broker or broker,
                         reconnect_max_delay=max(30.0, c.reconnect_delay))
    d: dict[str, Any] = {"name": c.name, **_changed(c, default, skip=(
        "name", "subscribe", "publish", "link", "crashes", "will", "middlebox"))}
    if c.middlebox != top_middlebox:
        d["middlebox"] = (False if c.middlebox is None
                          else {f.name: getattr(c.middlebox, f.name) for f in fields(c.middlebox)
                                if getattr(c.middlebox, f.name) is not None})
    qos, retain = top.get("qos", 0), top.get("retain", False)
    if c.subscribe:
        d["subscribe"] = [s.topic if s == SubscriptionSpec(s.topic, qos)
                          else {"topic": s.topic, **_changed(s, SubscriptionSpec(s.topic, qos))}
                          for s in c.subscribe]
    if c.publish:
        d["publish"] = [_publish_dict(p, qos, retain) for p in c.publish]
    if link is None and c.link != LinkSpec():
        d["link"] = _link_dict(c.link)
    if c.crashes:
        d["crashes"] = _crashes(c.crashes)
    if c.will is not None:
        d["will"] = {"topic": c.will.topic, **_changed(c.will, WillSpec(c.will.topic))}
    return d


def _broker_dict(spec: BrokerSpec) -> dict[str, Any]:
    d = _changed(spec, BrokerSpec(), skip=("restarts",))
    if spec.restarts:
        d["restarts"] = _crashes(spec.restarts)
    return d


def _bridge_dict(b: BridgeSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": b.name, "broker": b.broker, "remote": b.remote}
    d.update(_changed(b, BridgeSpec(b.name, b.broker, b.remote, b.topics), skip=(
        "name", "broker", "remote", "topics", "restart_base", "restart_cap")))
    if (b.restart_base, b.restart_cap) != (5.0, 30.0):
        d["restart_timeout"] = ([b.restart_base] if b.restart_cap is None
                                else [b.restart_base, b.restart_cap])
    d["topics"] = [{"pattern": t.pattern, **_changed(t, BridgeTopic(t.pattern), skip=("pattern",))}
                   for t in b.topics]
    return d


def _scenario_dict(sc: Scenario) -> dict[str, Any]:
    clients = sc.clients
    top: dict[str, Any] = {"name": sc.name}
    if sc.description:
        top["description"] = sc.description
    top.update(_changed(sc, Scenario(sc.name, ()), skip=(
        "name", "clients", "description", "tcp", "broker", "routers", "links", "source",
        "other_brokers", "bridges")))
    shared = {
        "version": (_most_common([c.version for c in clients], 4), 4),
        "keepalive": (_most_common([c.keepalive for c in clients], 60), 60),
        "clean": (_most_common([c.clean for c in clients], True), True),
        "qos": (_most_common([x.qos for c in clients for x in (*c.subscribe, *c.publish)],
                             0), 0),
        "retain": (_most_common([p.retain for c in clients for p in c.publish], False), False),
    }
    top.update({key: value for key, (value, default) in shared.items() if value != default})
    # One [link] when every client has the same access link; otherwise each says its own
    # (a client's link layer is over [link], and "no queue limit" cannot be written over one).
    links = {c.link for c in clients}
    link = links.pop() if len(links) == 1 else None
    if link is not None and link != LinkSpec():
        top["link"] = _link_dict(link)
    if sc.tcp != TcpSpec():  # all keys: the loader's defaults for some depend on others
        top["tcp"] = {f.name: getattr(sc.tcp, f.name) for f in fields(sc.tcp)}
    broker = _changed(sc.broker, BrokerSpec(), skip=("restarts",))
    if sc.broker.restarts:
        broker["restarts"] = _crashes(sc.broker.restarts)
    if sc.other_brokers:
        top["brokers"] = [_broker_dict(b) | {"name": b.name} for b in sc.brokers]
    elif broker:
        top["broker"] = broker
    if sc.bridges:
        top["bridges"] = [_bridge_dict(b) for b in sc.bridges]
    if sc.routers:
        top["routers"] = list(sc.routers)
    if sc.links:
        top["links"] = [{"a": e.a, "b": e.b, **_link_dict(e.link)} for e in sc.links]
    # One [middlebox] when every client is behind the same one; a client that differs says so
    boxes = [c.middlebox for c in clients]
    middlebox = _most_common(boxes, None)
    if middlebox is not None:
        top["middlebox"] = {f.name: getattr(middlebox, f.name) for f in fields(middlebox)
                            if getattr(middlebox, f.name) is not None}
    top["clients"] = [_client_dict(c, top, link, sc.broker.name, middlebox) for c in clients]
    return top
