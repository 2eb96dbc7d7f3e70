"""Bridges: a broker's MQTT client of another broker, as Mosquitto's ``connection`` sections.

Theory of operation. A bridge lives inside the *local* broker and is a client of the
*remote* one. Here it is two client engines and the rule between them, sans-IO like every
engine (no clock, no sockets; time comes in as ``now``):

- ``local``: an MQTT 5 client of the local broker, over an in-process connection the driver
  provides (Mosquitto gives its bridge an internal session; a client connection to our own
  engine is the same thing without a second code path in the broker). It subscribes to the
  ``out`` and ``both`` topics with No Local and Retain As Published, as Mosquitto's bridge
  subscribes locally (src/bridge.c, ``sub__add`` with MQTT_SUB_OPT_NO_LOCAL |
  MQTT_SUB_OPT_RETAIN_AS_PUBLISHED): what the bridge itself publishes locally never comes
  back to it, so it never goes out again.
- ``remote``: a client of the remote broker (``version`` 3, 4 or 5). It subscribes to the
  ``in`` and ``both`` topics. Loop prevention on that side: with MQTT 5 the subscriptions
  carry No Local [MQTT-3.8.3-3]; with 3.1/3.1.1 and ``try_private`` the CONNECT's protocol
  level has its top bit set (0x84), which Mosquitto (and our broker) take to mean "a bridge":
  its subscriptions get No Local and Retain As Published (src/handle_subscribe.c). A remote
  broker that refuses that level (CONNACK 1, unacceptable protocol version) is tried again
  without it, as Mosquitto does (src/handle_connack.c, ``try_private_accepted``).

A message the local leg receives on an ``out`` topic is published on the remote leg, and one
the remote leg receives on an ``in`` topic is published on the local leg, each at the QoS it
arrived with (the subscription's QoS already capped it) and with its RETAIN flag. Topics are
remapped as mosquitto.conf(5) says: the pattern ``P`` is ``local_prefix + P`` locally and
``remote_prefix + P`` remotely; a message's topic loses one prefix and gains the other; the
first matching ``topic`` line wins (src/bridge_topic.c). A QoS 1/2 message handed to the
remote leg while it is down waits in that engine's session (``max_queued``, then
``queue_full`` drops, counted); QoS 0 while it is down is dropped (``qos0_offline``), as
Mosquitto does with ``queue_qos0_messages false``. With ``clean_session`` false (Mosquitto's
default) the remote broker keeps the bridge's subscriptions and unacknowledged messages
across reconnects, and the remote leg resends its own [MQTT-4.4.0-1].

Restarts: after the remote connection breaks, the driver waits ``restart_delay()`` and
connects again. Mosquitto's ``restart_timeout base cap`` is "decorrelated jitter" (each wait
uniform between ``base`` and three times the previous wait, at most ``cap``; back to
``base`` after a successful CONNACK: src/bridge.c ``bridge__backoff_step``); ``restart_timeout
N`` is a constant wait. The random numbers come from the ``rng`` the driver passes, so the
simulator stays deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import NamedTuple

from . import events as ev
from .client import ClientConfig, ClientEngine
from .errors import MQTTError
from .packets import MQTT_5, Subscription
from .topics import topic_matches, validate_topic_filter

IN, OUT, BOTH = "in", "out", "both"
DIRECTIONS = (IN, OUT, BOTH)
# Mosquitto gives a persistent local bridge session an infinite expiry (src/bridge.c).
NEVER_EXPIRES = 0xFFFFFFFF
UNACCEPTABLE_PROTOCOL_VERSION = 0x01  # MQTT 3.1.1 CONNACK return code


class BridgeError(ValueError):
    """A bridge setting that cannot work; the message names it."""


@dataclass(frozen=True)
class BridgeTopic:
    """One ``topic PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]`` line.

    ``pattern`` may be ``""`` (mosquitto.conf's ``""`` place marker) only when both prefixes
    are given: then the local topic ``local_prefix`` maps to the remote ``remote_prefix``."""

    pattern: str
    direction: str = OUT
    qos: int = 0
    local_prefix: str = ""
    remote_prefix: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise BridgeError(f"bridge topic direction must be in, out or both, not "
                              f"{self.direction!r}")
        if self.qos not in (0, 1, 2):
            raise BridgeError(f"bridge topic QoS must be 0, 1 or 2, not {self.qos!r}")
        if not self.pattern and not (self.local_prefix and self.remote_prefix):
            raise BridgeError('an empty bridge topic ("") needs both a local and a remote '
                              "prefix (mosquitto.conf(5): invalid remapping)")
        for name, prefix in (("local", self.local_prefix), ("remote", self.remote_prefix)):
            if "+" in prefix or "#" in prefix:
                raise BridgeError(f"bridge topic {name} prefix {prefix!r} contains a wildcard")
            full = prefix + self.pattern
            try:
                validate_topic_filter(full, 4)
            except MQTTError as exc:
                raise BridgeError(f"bridge topic {name} prefix and pattern make {full!r}, "
                                  f"not a valid topic filter: {exc}") from None

    @property
    def local_filter(self) -> str:
        return self.local_prefix + self.pattern

    @property
    def remote_filter(self) -> str:
        return self.remote_prefix + self.pattern

    @property
    def goes_out(self) -> bool:
        return self.direction in (OUT, BOTH)

    @property
    def comes_in(self) -> bool:
        return self.direction in (IN, BOTH)

    def to_remote(self, topic: str) -> str | None:
        """The remote topic of a local message on ``topic``; None if this line does not
        export it."""
        if not self.goes_out or not topic_matches(self.local_filter, topic):
            return None
        return self.remote_prefix + topic[len(self.local_prefix):]

    def to_local(self, topic: str) -> str | None:
        """The local topic of a remote message on ``topic``; None if this line does not
        import it."""
        if not self.comes_in or not topic_matches(self.remote_filter, topic):
            return None
        return self.local_prefix + topic[len(self.remote_prefix):]


@dataclass(frozen=True)
class BridgeConfig:
    """One ``connection NAME`` section. Defaults are Mosquitto 2.0's (mosquitto.conf(5)):
    MQTT 3.1.1, cleansession false, keepalive 60 s, try_private true, restart_timeout 5 30."""

    name: str
    remote_client_id: str
    topics: tuple[BridgeTopic, ...] = ()
    local_client_id: str = ""  # "": local.<remote_client_id>
    version: int = 4
    clean_session: bool = False
    local_clean_session: bool | None = None  # None: as clean_session
    keepalive: int = 60
    try_private: bool = True
    restart_base: float = 5.0
    restart_cap: float | None = 30.0  # None: always wait restart_base
    username: str | None = None
    password: bytes | None = None
    max_inflight: int = 20
    max_queued: int | None = 1000  # messages waiting for the remote broker (mosquitto's
    # max_queued_messages for the bridge's session)

    def __post_init__(self) -> None:
        if not self.topics:
            raise BridgeError(f"bridge {self.name!r} has no topic lines: it would carry "
                              "nothing")
        if self.version not in (3, 4, 5):
            raise BridgeError(f"bridge protocol version must be 3, 4 or 5, not "
                              f"{self.version!r}")
        if self.restart_base <= 0 or (self.restart_cap is not None
                                      and self.restart_cap < self.restart_base):
            raise BridgeError("restart_timeout needs base > 0 and cap >= base")
        if self.keepalive and self.keepalive < 5:
            raise BridgeError("keepalive_interval must be at least 5 s (mosquitto.conf(5))")

    @property
    def local_id(self) -> str:
        return self.local_client_id or f"local.{self.remote_client_id}"


def remote_topic(topics: tuple[BridgeTopic, ...], topic: str) -> str | None:
    """The remote topic of a local message: the first ``topic`` line that exports it."""
    for line in topics:
        mapped = line.to_remote(topic)
        if mapped is not None:
            return mapped
    return None


def local_topic(topics: tuple[BridgeTopic, ...], topic: str) -> str | None:
    """The local topic of a remote message: the first ``topic`` line that imports it."""
    for line in topics:
        mapped = line.to_local(topic)
        if mapped is not None:
            return mapped
    return None


class BridgeEvents(NamedTuple):
    """What each leg's engine reported since the last ``take_events``."""

    local: list
    remote: list


class Bridge:
    """Two client engines (``local``, ``remote``) and the forwarding rule between them.

    Driver interface, one set per leg: ``connect_local/connect_remote(now)`` when that
    transport is up, ``receive_local/receive_remote(data, now)``, ``data_for_local/
    data_for_remote()`` to write, ``local_lost/remote_lost(now, reason)`` when a transport
    broke (and after closing one whose engine ``should_close``); ``next_deadline()`` /
    ``on_timer(now)`` for both engines' timers; ``restart_delay()`` before reconnecting the
    remote leg; ``take_events()`` for what happened (the recorder's and the log's input).
    """

    def __init__(self, config: BridgeConfig, rng: random.Random | None = None,
                 trace: bool = False):
        self.config = config
        self.rng = rng or random.Random(0)
        self.trace = trace
        local_clean = (config.clean_session if config.local_clean_session is None
                       else config.local_clean_session)
        self.local = ClientEngine(ClientConfig(
            client_id=config.local_id, version=MQTT_5, keepalive=0, clean_session=local_clean,
            session_expiry=0 if local_clean else NEVER_EXPIRES,
            max_inflight=config.max_inflight, emit_packet_events=trace))
        self.private = config.try_private and config.version != MQTT_5
        self.remote = self._remote_engine()
        self._restart_wait = config.restart_base
        self._local_events: list = []
        self._remote_events: list = []
        self.forwarded_out = 0  # messages handed from the local to the remote leg
        self.forwarded_in = 0

    def _remote_engine(self) -> ClientEngine:
        c = self.config
        return ClientEngine(ClientConfig(
            client_id=c.remote_client_id, version=c.version, keepalive=c.keepalive,
            clean_session=c.clean_session, session_expiry=0 if c.clean_session else NEVER_EXPIRES,
            username=c.username, password=c.password, max_inflight=c.max_inflight,
            max_queued=c.max_queued, bridge=self.private, emit_packet_events=self.trace))

    # -- local leg -------------------------------------------------------------------------
    def connect_local(self, now: float) -> None:
        self.local.connect(now)
        self._after(self.local.take_events(), [], now)

    def receive_local(self, data: bytes, now: float) -> None:
        self._after(self.local.receive(data, now), [], now)

    def data_for_local(self) -> bytes:
        return self.local.data_to_send()

    def local_lost(self, now: float, reason: str = "transport") -> None:
        self._after(self.local.connection_lost(now, reason), [], now)

    # -- remote leg ------------------------------------------------------------------------
    def connect_remote(self, now: float) -> None:
        self.remote.connect(now)
        self._after([], self.remote.take_events(), now)

    def receive_remote(self, data: bytes, now: float) -> None:
        self._after([], self.remote.receive(data, now), now)

    def data_for_remote(self) -> bytes:
        return self.remote.data_to_send()

    def remote_lost(self, now: float, reason: str = "transport") -> None:
        self._after([], self.remote.connection_lost(now, reason), now)

    def restart_delay(self) -> float:
        """Seconds to wait before the next connection attempt to the remote broker."""
        c = self.config
        if c.restart_cap is None:
            return c.restart_base
        # Decorrelated jitter, Mosquitto's bridge__backoff_step
        self._restart_wait = min(c.restart_cap,
                                 self.rng.uniform(c.restart_base, self._restart_wait * 3))
        return self._restart_wait

    # -- both ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        a, b = self.local.next_deadline(), self.remote.next_deadline()
        return a if b is None else b if a is None else min(a, b)

    def on_timer(self, now: float) -> None:
        self._after(self.local.on_timer(now), self.remote.on_timer(now), now)

    def take_events(self) -> BridgeEvents:
        out = BridgeEvents(self._local_events, self._remote_events)
        self._local_events, self._remote_events = [], []
        return out

    def remote_topic(self, topic: str) -> str | None:
        """Where a local message on ``topic`` goes remotely (None: not exported)."""
        return remote_topic(self.config.topics, topic)

    def local_topic(self, topic: str) -> str | None:
        """Where a remote message on ``topic`` goes locally (None: not imported)."""
        return local_topic(self.config.topics, topic)

    # -- the rule between the legs ---------------------------------------------------------
    def _after(self, local_events: list, remote_events: list, now: float) -> None:
        for e in local_events:
            cls = e.__class__
            if cls is ev.MessageReceived:
                self.forwarded_out += self._forward(e, self.remote_topic(e.topic),
                                                    self.remote, now)
            elif cls is ev.Connected:
                subs = [Subscription(t.local_filter, t.qos, no_local=True,
                                     retain_as_published=True)
                        for t in self.config.topics if t.goes_out]
                if subs:
                    self.local.subscribe(subs, now)
        for e in remote_events:
            cls = e.__class__
            if cls is ev.MessageReceived:
                self.forwarded_in += self._forward(e, self.local_topic(e.topic), self.local,
                                                   now)
            elif cls is ev.Connected:
                self._restart_wait = self.config.restart_base  # bridge__backoff_reset
                v5 = self.config.version == MQTT_5
                subs = [Subscription(t.remote_filter, t.qos, no_local=v5,
                                     retain_as_published=v5)
                        for t in self.config.topics if t.comes_in]
                if subs:
                    self.remote.subscribe(subs, now)
            elif (cls is ev.ConnectionRefused and self.private
                  and e.reason_code == UNACCEPTABLE_PROTOCOL_VERSION):
                # The remote broker does not know the bridge bit: try again without it,
                # keeping what the engine holds for the remote broker.
                self.private = False
                self.remote.config = replace(self.remote.config, bridge=False)
        self._local_events += local_events
        self._local_events += self.local.take_events()
        self._remote_events += remote_events
        self._remote_events += self.remote.take_events()

    def _forward(self, e: ev.MessageReceived, topic: str | None, to: ClientEngine,
                 now: float) -> int:
        if topic is None:  # a subscription of an earlier configuration (persistent session)
            return 0
        p = e.packet
        to.publish(topic, p.payload, p.qos, p.retain, now)
        return 1


__all__ = ["BOTH", "Bridge", "BridgeConfig", "BridgeError", "BridgeEvents", "BridgeTopic", "IN",
           "OUT"]
