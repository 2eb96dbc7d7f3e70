"""The broker's ``$SYS/broker/...`` tree (a part of ``BrokerEngine``, see broker.py).

Mosquitto publishes its statistics as retained messages under ``$SYS/broker/`` every
``sys_interval`` seconds (mosquitto.conf, default 10), and classes watch them with
``mosquitto_sub -t '$SYS/#' -v``. This part keeps the same tree with the same topic names,
so the same commands and lessons work with either broker; the names, the meaning of each
counter and the load-average formula follow mosquitto 2.0's ``src/sys_tree.c`` and the
``mosquitto(8)`` manual page (section "Broker Status"), read, not copied:

- ``messages/received|sent`` count every MQTT packet, ``publish/messages/received|sent`` the
  PUBLISH packets among them, ``bytes/...`` every byte; ``publish/messages/dropped`` the
  messages dropped because a client's queue was full. (mosquitto's ``publish/bytes/...``,
  payload bytes, are left out: two more additions per message on the hot path.)
- ``load/<counter>/1min|5min|15min`` are exponentially damped per-minute rates, as Unix load
  averages: every update, ``rate = delta * 60 / dt`` and
  ``load = rate + exp(-dt / period) * (load - rate)``, printed with two decimals and
  republished when it moved by 0.01 or more.
- Counters are republished when they changed, ``uptime`` ("N seconds") every time, the
  ``version`` once at start. Every message is retained and goes out at QoS 2 as mosquitto's,
  through ``route`` like any message: a subscriber needs ``$SYS/#`` (``#`` never matches
  ``$`` topics [MQTT-4.7.2-1]) and its user's read permission on each topic, live and
  retained alike. ``$SYS`` messages are never written to the store (mosquitto neither
  persists them: persist_write.c), so a restarted broker starts its tree afresh.

Differences from mosquitto 2.0.11, on purpose: updates come exactly every ``sys_interval``
seconds of the engine's clock (mosquitto's loop compares whole seconds with ``>`` and so
updates every interval + 1 s); the messages carry no Message Expiry (2.0.11 set 60 s, which
made a value that did not change vanish from the retained store, and later releases dropped
it); ``messages/stored`` counts copies waiting per client plus retained messages (mosquitto
stores a message once however many clients it waits for); a load is republished when it
moved 0.01 from the value last *published* (mosquitto compares with the previous update's,
so a load that creeps by less than 0.01 per update is never republished there).

The hot path pays only plain integer increments (receive, _send, _send_ack, _deliver,
_on_publish, take_output); everything else is computed when the tree is published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import events as ev
from .broker_state import Timer
from .packets import MQTT_5
from .properties import NO_PROPERTIES

SYS_PREFIX = "$SYS/broker/"
SYS_QOS = 2  # as mosquitto's SYS_TREE_QOS
_LOAD_PERIODS = (("1min", 60.0), ("5min", 300.0), ("15min", 900.0))
# load/<name> -> the counter whose rate it damps (mosquitto's nine load series)
_LOAD_SERIES = ("messages/received", "messages/sent", "publish/dropped", "publish/received",
                "publish/sent", "bytes/received", "bytes/sent", "sockets", "connections")


@dataclass(slots=True)
class SysCounters:
    """The running totals (incremented on the hot path: ``engine.sys.delivered += 1``) and
    the tree's own state. One slotted object on the engine rather than a score of engine
    attributes: past 30 attributes CPython 3.11 stops sharing an instance's dict keys, and
    every ``self.x`` in the engine's hot path got slower (measured: 3 % more instructions
    per message in benchmarks/engine.py)."""

    bytes_received: int = 0
    bytes_sent: int = 0
    packets_received: int = 0  # every packet decoded
    packets_sent: int = 0  # packets from _send and _send_ack (resent PUBLISH too)
    delivered: int = 0  # first PUBLISH of a message to a subscriber (_deliver)
    publish_resent: int = 0  # PUBLISH through _send (resends on resume, 3.1 retries)
    publish_received: int = 0
    sockets: int = 0  # connection_made calls
    connects: int = 0  # CONNECTs accepted
    expired: int = 0  # persistent sessions expired
    started_at: float | None = None
    version: str = "mqttsim"
    last: dict = field(default_factory=dict)  # topic -> the payload last published
    loads: dict = field(default_factory=dict)
    rates_from: dict = field(default_factory=dict)  # counter -> its value at the last update
    updated_at: float | None = None
    clients_max: int = 0


class SysTreeMixin:
    """``$SYS`` counters and their publication. Needs BrokerEngine's attributes."""

    # -- driver interface ------------------------------------------------------------------
    def begin(self, now: float, version: str = "mqttsim") -> list:
        """The broker process starts now: uptime counts from here, and with
        ``BrokerConfig.sys_interval`` > 0 the ``$SYS`` tree is published now (``version``
        is the text of ``$SYS/broker/version``) and then every ``sys_interval`` seconds on
        the engine's timer. Drivers call it once per engine, before any connection."""
        self.sys.started_at = now
        self.sys.version = version
        if self.config.sys_interval > 0:
            self._sys_publish(SYS_PREFIX + "version", version, now)
            self._timer_sys(None, now)
        return self.take_events()

    def sys_values(self, now: float) -> dict[str, str]:
        """The whole tree as it stands now, topic -> payload (without updating the loads)."""
        values = self._sys_counters(now)
        values.update(self._sys_load_payloads())
        return values

    # -- the tree --------------------------------------------------------------------------
    def _timer_sys(self, key, now: float) -> None:
        """Publish what changed (and the uptime), then wake again in sys_interval s."""
        values = self._sys_counters(now)
        self._sys_update_loads(values, now)
        values.update(self._sys_load_payloads())
        last = self.sys.last
        for topic, payload in values.items():
            if last.get(topic) != payload or topic.endswith("/uptime"):
                self._sys_publish(topic, payload, now)
        self._events.append(ev.SysTreeUpdated(now, tuple(values.items())))
        self._schedule(now + self.config.sys_interval, Timer.SYS, None)

    def _sys_publish(self, topic: str, payload: str, now: float) -> None:
        self.sys.last[topic] = payload
        self.route(topic, payload.encode(), SYS_QOS, True, NO_PROPERTIES, None, now)

    def _sys_counters(self, now: float) -> dict[str, str]:
        sessions = self.sessions
        total = len(sessions)
        connected = sum(1 for s in sessions.values() if s.conn is not None)
        self.sys.clients_max = max(self.sys.clients_max, total)
        stored = stored_bytes = 0
        subscriptions = shared = 0
        for session in sessions.values():
            flow = session.flow
            for msg in flow.queue:
                stored_bytes += len(msg.payload)
            for msg in flow.inflight.values():
                stored_bytes += len(msg.payload)
            stored += len(flow.queue) + len(flow.inflight)
            for topic_filter in session.subscriptions:
                if session.version == MQTT_5 and topic_filter.startswith("$share/"):
                    shared += 1
                else:
                    subscriptions += 1
        retained = 0
        for _, message in self.retained.items():
            retained += 1
            stored_bytes += len(message.payload)
        stored += retained
        started = self.sys.started_at if self.sys.started_at is not None else now
        p = SYS_PREFIX
        values = {
            p + "uptime": f"{int(now - started)} seconds",
            p + "clients/total": total,
            p + "clients/connected": connected,
            p + "clients/active": connected,  # mosquitto's deprecated name for the same
            p + "clients/disconnected": total - connected,
            p + "clients/inactive": total - connected,  # likewise
            p + "clients/expired": self.sys.expired,
            p + "messages/stored": stored,
            p + "store/messages/count": stored,
            p + "store/messages/bytes": stored_bytes,
            p + "subscriptions/count": subscriptions,
            p + "shared_subscriptions/count": shared,
            p + "retained messages/count": retained,
        }
        if self.sys.clients_max:  # as mosquitto: only once a client came
            values[p + "clients/maximum"] = self.sys.clients_max
        values.update((p + name, count) for name, count in self._sys_totals().items()
                      if not name.startswith(("sockets", "connections")))
        return {topic: str(value) for topic, value in values.items()}

    def _sys_totals(self) -> dict[str, int]:
        """The running totals, under their $SYS names (and the two load-only series)."""
        counts = self.sys
        received = counts.packets_received
        sent = counts.packets_sent + counts.delivered
        dropped = sum(n for (_, reason), n in self.drops.items() if reason == "queue_full")
        return {
            "messages/received": received,
            "messages/sent": sent,
            "publish/messages/dropped": dropped,
            "publish/messages/received": counts.publish_received,
            "publish/messages/sent": counts.delivered + counts.publish_resent,
            "bytes/received": counts.bytes_received,
            "bytes/sent": counts.bytes_sent,
            "sockets": counts.sockets,
            "connections": counts.connects,
        }

    def _sys_update_loads(self, values: dict, now: float) -> None:
        totals = self._sys_totals()
        counters = {  # load series -> running total
            "messages/received": totals["messages/received"],
            "messages/sent": totals["messages/sent"],
            "publish/dropped": totals["publish/messages/dropped"],
            "publish/received": totals["publish/messages/received"],
            "publish/sent": totals["publish/messages/sent"],
            "bytes/received": totals["bytes/received"],
            "bytes/sent": totals["bytes/sent"],
            "sockets": totals["sockets"],
            "connections": totals["connections"],
        }
        previous = self.sys.updated_at
        self.sys.updated_at = now
        rates_from, self.sys.rates_from = self.sys.rates_from, counters
        loads = self.sys.loads
        if previous is None or now <= previous:  # the first update publishes 0.00 for each
            for series in _LOAD_SERIES:
                for suffix, _ in _LOAD_PERIODS:
                    loads.setdefault(f"load/{series}/{suffix}", 0.0)
            return
        elapsed = now - previous
        for series in _LOAD_SERIES:
            rate = (counters[series] - rates_from.get(series, 0)) * 60.0 / elapsed
            for suffix, period in _LOAD_PERIODS:
                name = f"load/{series}/{suffix}"
                loads[name] = rate + math.exp(-elapsed / period) * (loads[name] - rate)

    def _sys_load_payloads(self) -> dict[str, str]:
        """Each load with two decimals; one that moved by less than 0.01 since it was last
        published keeps its published text (so it is not published again)."""
        out = {}
        last = self.sys.last
        for name, load in self.sys.loads.items():
            topic = SYS_PREFIX + name
            shown = last.get(topic)
            if shown is not None and abs(float(shown) - load) < 0.01:
                out[topic] = shown
            else:
                out[topic] = f"{load:.2f}"
        return out
