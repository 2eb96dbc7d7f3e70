"""The broker engine's routing and delivery (a part of ``BrokerEngine``, see broker.py).

Routing is the heart of a broker: one accepted PUBLISH becomes one copy per subscribed
client at min(published QoS, granted QoS) [MQTT-3.8.4-6], a single copy at the highest QoS
when a client's subscriptions overlap (who receives what is ``mqttsim.protocol.routing``,
the rule the outcomes table applies too), queued behind that client's window or
while it is offline, in the order messages arrived [MQTT-4.6.0-6]. Each copy passes the
subscriber's read check, live or retained. A subscriber's queue is bounded
(max_queued_messages / max_queued_bytes): a copy for a full queue is dropped for that
subscriber alone and reported. Held acks (hold_acks_when_congested, opt-in) are here too.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from . import events as ev
from .broker_state import Connection, RetainedMessage, Session, SubscriptionEntry, Timer
from .encoder import encode_publish
from .flows import OutMessage
from .packets import MQTT_5, Publish
from .properties import NO_PROPERTIES, Properties
from .routing import add_member, recipients


class RoutingMixin:
    """Routing, queues, delivery and held acks. Needs BrokerEngine's attributes."""

    # -- who receives a message ------------------------------------------------------------
    def route(self, topic: str, payload: bytes, qos: int, retain: bool,
              properties: Properties, publisher: str | None, now: float) -> int:
        """Deliver an accepted message to every matching session; returns how many."""
        if retain and self.config.retain_available:
            self._retain(topic, payload, qos, properties, now)
        expires_at = None
        if properties is not NO_PROPERTIES and properties.message_expiry_interval is not None:
            expires_at = now + properties.message_expiry_interval
        plain, shared, targets = self._route_cache.get(topic) or self._matches(topic)
        if targets is None:  # some subscription has No Local: depends on who published
            targets = recipients(plain, {}, publisher).targets
        if shared:
            targets = self._add_shared(dict(targets), shared)
        authz = self.authz
        sessions = self.sessions
        for client_id, (granted, keep_retain, identifiers) in targets.items():
            session = sessions.get(client_id)
            if session is None:
                continue
            if authz is not None and not authz.authorize(client_id, session.username, topic,
                                                         "read"):
                continue
            out_props = NO_PROPERTIES
            if session.version == MQTT_5:
                out_props = properties
                if identifiers:
                    out_props = replace(properties, subscription_identifiers=identifiers)
            msg = OutMessage(topic, payload, qos if qos < granted else granted,
                             retain and keep_retain,  # [MQTT-3.3.1-9] / [MQTT-3.3.1-12]
                             out_props, expires_at=expires_at)
            self._enqueue(session, msg, now)
        return len(targets)

    def _matches(self, topic: str):
        """(plain matches, shared groups, per-client targets or None), cached per topic.

        Most traffic goes to a few topics and subscriptions change rarely, so the tree walk
        and the per-client aggregation are done once per topic until a subscription changes.
        ``route`` looks in the cache itself and calls this on a miss.
        """
        cache = self._route_cache
        hit = cache.get(topic)
        if hit is None:
            if len(cache) >= 10_000:
                cache.clear()
            plain = self.subscriptions.match(topic)
            shared = self.subscriptions.match_shared(topic)
            no_local = any(entry.options.no_local for _, _, entry in plain)
            hit = cache[topic] = (plain, shared,
                                  None if no_local else recipients(plain, {}, None).targets)
        return hit

    def _add_shared(self, targets: dict[str, tuple], shared: dict) -> dict[str, tuple]:
        """One member of each matching share group joins ``targets`` (a copy we may change):
        the broker's choice of member, the routing rule's way of adding it."""
        for group, members in shared.items():
            add_member(targets, *self._pick_member(group, members))
        return targets

    def _pick_member(self, group: str, members: list):
        """Shared subscription: one member per message, round robin, online ones first."""
        online = [m for m in members if self.sessions.get(m[0]) is not None
                  and self.sessions[m[0]].conn is not None] or members
        turn = self._share_turn.get(group, 0)
        self._share_turn[group] = turn + 1
        return online[turn % len(online)]

    def _retain(self, topic: str, payload: bytes, qos: int, properties: Properties,
                now: float) -> None:
        if payload:  # store, replacing what was there [MQTT-3.3.1-5][MQTT-3.3.1-7]
            expiry = properties.message_expiry_interval
            message = RetainedMessage(topic, payload, qos, properties,
                                      None if expiry is None else now + expiry)
            self.retained.set(topic, message)
        else:  # an empty retained message clears the topic [MQTT-3.3.1-10][MQTT-3.3.1-11]
            message = None
            self.retained.delete(topic)
        if self.store is not None and not topic.startswith("$SYS/"):
            self.store.retained_changed(topic, message)  # never $SYS (broker_sys.py)

    def _send_retained(self, session: Session, topic_filter: str, entry: SubscriptionEntry,
                       now: float) -> None:
        """Retained messages matching a new subscription, each one only if the subscriber
        may read its topic: the same check as a live delivery (``route``), per topic."""
        authz = self.authz
        for topic, message in list(self.retained.match_filter(topic_filter)):
            if message.expires_at is not None and now >= message.expires_at:
                self.retained.delete(topic)
                continue
            if authz is not None and not authz.authorize(session.client_id, session.username,
                                                         topic, "read"):
                continue
            props = NO_PROPERTIES
            if session.version == MQTT_5:
                props = message.properties
                if entry.identifier:
                    props = replace(props, subscription_identifiers=(entry.identifier,))
            qos = min(message.qos, entry.options.qos)
            self._enqueue(session, OutMessage(topic, message.payload, qos, True, props,
                                              expires_at=message.expires_at), now)

    # -- queues and delivery ---------------------------------------------------------------
    def _enqueue(self, session: Session, msg: OutMessage, now: float) -> None:
        flow = session.flow
        conn = session.conn
        c = self.connections[conn] if conn is not None else None
        qos = msg.qos
        if c is not None and c.writable and not flow.queue and (
                qos == 0 or len(flow.inflight) < flow.window):
            if qos:
                flow.admit(msg, now)
            self._deliver(c, session, msg, now)
        else:
            drop = flow.hold(msg, online=conn is not None)
            if drop:
                self._drop(session, msg, drop, now)
            elif conn is not None and self._high_water is not None and (
                    session.client_id in self._congested
                    or len(flow.queue) >= self._high_water
                    or flow.queued_bytes >= self._high_bytes):
                self._congested.add(session.client_id)
                self._route_blockers.add(session.client_id)
        if qos and session.expiry and self.store is not None:
            self._session_changed(session)

    def _fill(self, session: Session, now: float) -> None:
        """Move queued messages into the window; expired ones are dropped [MQTT-3.3.2-5]."""
        flow = session.flow
        if session.conn is None or not (flow.queue or flow.waiting):
            return
        c = self.connections[session.conn]
        if not c.writable:
            return
        if flow.waiting:
            for packet in flow.resend_waiting(now):
                self._send(c, packet, now)
        while (msg := flow.next_to_send()) is not None:
            if msg.expires_at is not None and now >= msg.expires_at:
                self._drop(session, msg, "expired", now)
                continue
            if msg.qos:
                flow.admit(msg, now)
            self._deliver(c, session, msg, now)
        if session.client_id in self._congested and len(flow.queue) <= self._low_water \
                and flow.queued_bytes <= self._low_bytes:
            self._uncongest(session.client_id, now)

    def _deliver(self, c: Connection, session: Session, msg: OutMessage, now: float) -> None:
        """Write a message's first PUBLISH to its subscriber's connection."""
        props = msg.properties
        topic = msg.topic
        if msg.expires_at is not None:  # forward the time left [MQTT-3.3.2-6]
            left = max(0, math.ceil(msg.expires_at - now))
            props = replace(props, message_expiry_interval=left)
        if c.alias_max_out:
            topic, props = self._alias_out(c, topic, props)
        data = encode_publish(topic, msg.payload, msg.qos, msg.retain, False,
                              msg.packet_id, props, c.version)
        if c.max_packet_out is not None and len(data) > c.max_packet_out:
            if msg.qos:  # never send above the client's limit [MQTT-3.1.2-24/25]
                session.flow.inflight.pop(msg.packet_id, None)
            if topic and props.topic_alias is not None:  # an alias the client never learnt
                c.aliases_out.pop(topic, None)
            self._drop(session, msg, "packet_too_large", now)
            return
        c.out += data
        self._pending.add(c.conn)
        self.sys.delivered += 1
        if self.trace_sent:
            packet = Publish(topic, msg.payload, msg.qos, msg.retain, False, msg.packet_id,
                             props)
            self._events.append(ev.PacketSent(now, packet, len(data), c.conn, c.client_id))
        if msg.qos and session.retry_timer:
            self._arm_retry(session)

    @staticmethod
    def _alias_out(c: Connection, topic: str, props: Properties) -> tuple[str, Properties]:
        """MQTT 5 topic aliases towards a subscriber that accepts them (Topic Alias Maximum
        in its CONNECT): a topic's first PUBLISH on the connection carries the name and a new
        alias, later ones an empty name and the alias alone [MQTT-3.3.2-12], so a long topic
        name crosses a slow link once. Aliases are given first come, first served, from 1
        up to the client's maximum and never 0 [MQTT-3.3.2-8][MQTT-3.3.2-11]; topics beyond
        that go by name. They belong to this connection [MQTT-3.3.2-7] (a new one starts
        with none, and a PUBLISH resent on it carries its name). Mosquitto 2.0.11 sends no
        aliases at all."""
        aliases = c.aliases_out
        alias = aliases.get(topic)
        if alias is not None:
            return "", replace(props, topic_alias=alias)
        if len(aliases) < c.alias_max_out:
            alias = aliases[topic] = len(aliases) + 1
            return topic, replace(props, topic_alias=alias)
        return topic, props

    # -- held acks (BrokerConfig.hold_acks_when_congested) ---------------------------------
    def _hold_ack(self, c: Connection, entry: tuple, now: float) -> None:
        """Hold a publisher's ack (in order behind the ones already held), within the bounds
        BrokerConfig sets: at most hold_acks_max_count per connection (the oldest goes when
        one more comes) and hold_acks_max_time seconds each (a timer sends it)."""
        held = self._held_acks.get(c.conn)
        if held is None:
            held = self._held_acks[c.conn] = deque()
        held.append(entry)
        if len(held) > self.config.hold_acks_max_count:
            _, cls, packet_id, code, _ = held.popleft()
            self._send_ack(c, cls, packet_id, now, code)
        if c.conn not in self._hold_timers:
            self._hold_timers.add(c.conn)
            self._schedule(held[0][4] + self.config.hold_acks_max_time, Timer.ACKHOLD, c.conn)

    def _uncongest(self, client_id: str, now: float) -> None:
        """A session drained (or went away): send the acks that were waiting only for it."""
        self._congested.discard(client_id)
        congested = self._congested
        for conn in list(self._held_acks):
            held = self._held_acks[conn]
            c = self.connections[conn]
            while held and not (held[0][0] & congested):
                _, cls, packet_id, code, _ = held.popleft()
                self._send_ack(c, cls, packet_id, now, code)
            if not held:
                del self._held_acks[conn]

    def _timer_ackhold(self, conn, now: float) -> None:
        """Acks held for hold_acks_max_time go, congested subscriber or not."""
        self._hold_timers.discard(conn)
        held = self._held_acks.get(conn)
        if not held:
            return
        limit = self.config.hold_acks_max_time
        c = self.connections[conn]
        while held and held[0][4] + limit <= now:
            _, cls, packet_id, code, _ = held.popleft()
            self._send_ack(c, cls, packet_id, now, code)
        if held:
            self._hold_timers.add(conn)
            self._schedule(held[0][4] + limit, Timer.ACKHOLD, conn)
        else:
            del self._held_acks[conn]
