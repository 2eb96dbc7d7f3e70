"""What an experiment is, as plain frozen data: topology, links, clients, workloads, duration.

A ``Scenario`` is built from a TOML file or a dict by ``mqttsim.scenario.load`` (which checks
every key and value and says which one is wrong), and read by the backends. Nothing here runs
anything. Times are seconds of scenario time from the start of the run; bandwidths are bits
per second. Client tables with ``count = N`` are already expanded into N clients here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..netmodel.link import LinkParams

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


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: str
    qos: int = 0


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
    link: LinkSpec = field(default_factory=LinkSpec)  # its access link
    connect_at: float = 0.0
    disconnect_at: float | None = None  # sends DISCONNECT then (like pub after -m)
    reconnect_delay: float = 1.0  # first wait after a broken connection; doubles each try
    reconnect_max_delay: float = 30.0
    crashes: tuple[Crash, ...] = ()
    retry_policy: str | None = None  # "on_reconnect" | "timer"; None: by version
    retry_interval: float = 20.0
    ping_timeout: float | None = None  # None: one keepalive
    max_inflight: int = 20
    will: WillSpec | None = None


@dataclass(frozen=True)
class BrokerSpec:
    name: str = "broker"
    max_inflight: int = 20
    max_queued: int = 1000
    queue_qos0: bool = False
    hold_acks_when_congested: bool = True
    persistence: bool = True  # sessions and retained messages survive a restart
    # How the broker resends unacknowledged QoS 1/2 messages to subscribers; None: by the
    # subscriber's version (MQTT 3.1: on a timer, every retry_interval; later: on reconnect).
    retry_policy: str | None = None
    retry_interval: float = 20.0
    restarts: tuple[Crash, ...] = ()


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
    max_retransmits: int = 15  # tcp_retries2
    syn_retries: int = 6  # tcp_syn_retries
    header_bytes: int = 40
    # A receiver with nothing to send back waits this long before a pure ACK, unless more
    # than one MSS is unacknowledged (Linux: 40 ms minimum, RFC 1122 4.2.3.2); 0: at once.
    delayed_ack: float = 0.04


@dataclass(frozen=True)
class Scenario:
    """One experiment. Build it with ``Scenario.load(path)`` or ``Scenario.from_dict(d)``;
    change it with ``with_(**{"link.loss": 0.1})``."""

    name: str
    clients: tuple[ClientSpec, ...]
    description: str = ""
    duration: float = 60.0
    transport: str = "tcp"
    tcp: TcpSpec = field(default_factory=TcpSpec)
    broker: BrokerSpec = field(default_factory=BrokerSpec)
    routers: tuple[str, ...] = ()
    links: tuple[EdgeSpec, ...] = ()
    source: str | None = None  # the file it came from, for error messages
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

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

    def to_dict(self) -> dict[str, Any]:
        """The scenario as the dict it was built from (overrides applied)."""
        import copy
        return copy.deepcopy(self.raw)
