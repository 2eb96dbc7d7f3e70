"""``ClientConfig``: how a client engine connects (kept apart so ``client.py`` stays the
engine's behaviour only). Import it from ``client``, where it has always been.
"""

from __future__ import annotations

from dataclasses import dataclass

from .packets import MQTT_3_1, Will
from .properties import NO_PROPERTIES, Properties

ON_RECONNECT = "on_reconnect"
TIMER = "timer"


@dataclass(frozen=True)
class ClientConfig:
    """How a client connects. Defaults are mosquitto_pub/sub's: MQTT 3.1.1, keepalive 60 s,
    clean session, 20 messages in flight."""

    client_id: str = ""
    version: int = 4
    keepalive: int = 60
    clean_session: bool = True  # "Clean Start" in MQTT 5
    session_expiry: int = 0  # MQTT 5: seconds the broker keeps the session after a break
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    max_inflight: int = 20
    max_queued: int | None = None  # local queue behind the window; None = unbounded
    queue_qos0_offline: bool = False
    retry_policy: str | None = None  # "on_reconnect" | "timer"; None: by protocol version
    retry_interval: float = 20.0  # seconds, for the "timer" policy
    ping_timeout: float | None = None  # seconds to wait for PINGRESP; None = one keepalive
    connect_timeout: float = 30.0  # seconds to wait for CONNACK
    properties: Properties = NO_PROPERTIES  # extra MQTT 5 CONNECT properties
    # Announce a bridge (MQTT 3.1/3.1.1): Mosquitto's try_private bit on the protocol level.
    bridge: bool = False
    emit_packet_events: bool = False  # PacketSent/PacketReceived: a trace, like mosquitto -v

    @property
    def effective_retry_policy(self) -> str:
        """MQTT 3.1 clients retried on a timer; 3.1.1 and 5.0 resend only on reconnect."""
        if self.retry_policy is not None:
            return self.retry_policy
        return TIMER if self.version == MQTT_3_1 else ON_RECONNECT


def reconnect_delay(first: float, most: float, failures: int) -> float:
    """How long a client waits before its next connection attempt: ``first`` after a
    connection broke, doubled for every attempt in a row that did not reach CONNACK, never
    more than ``most`` (exponential back-off, as paho's ``reconnect_delay_set(min, max)``).
    The simulated clients (mqttsim.world.hosts) and ``mqttsim.net.client.Client`` both wait
    this long, so a scenario and a real client reconnect on the same schedule."""
    return min(most, first * 2 ** failures)
