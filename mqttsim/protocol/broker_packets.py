"""The broker engine's packet handlers and message routing (a mixin of ``BrokerEngine``).

Routing is the heart of a broker: one accepted PUBLISH becomes one copy per subscribed
client at min(published QoS, granted QoS) [MQTT-3.8.4-6], a single copy at the highest QoS
when a client's subscriptions overlap [MQTT-3.3.5-1], queued behind that client's window or
while it is offline, in the order messages arrived [MQTT-4.6.0-6].
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from . import events as ev
from .broker_state import Connection, RetainedMessage, Session, SubscriptionEntry, Timer
from .errors import ProtocolError
from .flows import OutMessage
from .packets import (MQTT_3_1, MQTT_5, Auth, Disconnect, Pingreq, Pingresp, Puback, Pubcomp,
                      Publish, Pubrec, Pubrel, Suback, Subscribe, Unsuback, Unsubscribe)
from .properties import NO_PROPERTIES, Properties
from .topics import parse_shared_subscription, resolve_topic_alias
from .encoder import ACK_WORDS, encode_publish

_new_received = ev.MessageReceived._new
_new_acknowledged = ev.MessageAcknowledged._new
_new_sent = ev.PacketSent._new
_new_publish = Publish._new


def _aggregate(matches: list, publisher: str | None) -> dict[str, tuple]:
    """One target per client: the highest granted QoS among its matching subscriptions
    [MQTT-3.3.5-1], retain-as-published if any asks for it, and every subscription id."""
    targets: dict[str, tuple] = {}
    for client_id, _, entry in matches:
        options = entry.options
        if options.no_local and client_id == publisher:
            continue  # [MQTT-3.8.3-3]
        ident = (entry.identifier,) if entry.identifier else ()
        old = targets.get(client_id)
        if old is None:
            targets[client_id] = (options.qos, options.retain_as_published, ident)
        else:
            targets[client_id] = (max(old[0], options.qos),
                                  old[1] or options.retain_as_published, old[2] + ident)
    return targets


class PacketHandlersMixin:
    """Handlers for packets after CONNECT, and routing. Needs BrokerEngine's attributes."""

    # -- PUBLISH from a client -------------------------------------------------------------
    def _on_publish(self, c: Connection, p: Publish, now: float) -> None:
        session = c.session
        topic, props = p.topic, p.properties
        if props is not NO_PROPERTIES and c.version == MQTT_5:
            topic, props = self._inbound_properties(c, topic, props)
        if p.retain and not self.config.retain_available:
            raise ProtocolError("PUBLISH with RETAIN but retain is not available",
                                "MQTT-3.2.2-14", reason_code=0x9A)
        authz = self.authz
        allowed = authz is None or authz.authorize(c.client_id, session.username, topic, "write")
        qos = p.qos
        if qos == 2:
            new = session.incoming.on_publish(p.packet_id)  # dedupe until PUBREL [MQTT-4.3.3-2]
            if new and len(session.incoming.pending) > self.config.receive_maximum \
                    and c.version == MQTT_5:
                raise ProtocolError("more unreleased QoS 2 messages than Receive Maximum",
                                    reason_code=0x93)
            if not allowed:
                session.incoming.on_pubrel(p.packet_id)  # a failed PUBREC frees the id
            accept = new and allowed
        else:
            accept = allowed
        matched = -1
        blockers = self._route_blockers
        if blockers:
            blockers.clear()
        if accept:
            self._events.append(_new_received(now, topic, p, c.conn, c.client_id))
            matched = self.route(topic, p.payload, qos, p.retain, props, c.client_id, now)
        elif not allowed:
            # 3.1.1: acknowledge normally and drop [MQTT-3.3.5-2]; 5.0: say "not authorized".
            self._events.append(ev.MessageDropped(now, topic, qos, "not_authorized", None,
                                                  c.conn, c.client_id, p.payload))
        if qos:
            code = 0
            if c.version == MQTT_5:
                code = 0x87 if not allowed else 0x10 if matched == 0 else 0
            cls = Puback if qos == 1 else Pubrec
            if blockers or c.conn in self._held_acks:
                # A subscriber this message went to is congested: the ack waits for it.
                self._hold_ack(c, (frozenset(blockers), cls, p.packet_id, code, now), now)
            else:
                self._send_ack(c, cls, p.packet_id, now, code)
            if session.expiry and self.store is not None:  # what _session_changed asks first
                self._session_changed(session)

    def _inbound_properties(self, c: Connection, topic: str, props: Properties):
        if props.subscription_identifiers:
            raise ProtocolError("a client PUBLISH carries a Subscription Identifier",
                                "MQTT-3.3.4-6")
        alias = props.topic_alias
        if alias is None:
            return topic, props
        topic = resolve_topic_alias(c.aliases, topic, alias, self.config.topic_alias_maximum,
                                    "MQTT-3.3.2-12", None)
        return topic, replace(props, topic_alias=None)  # aliases are per connection

    # -- routing ---------------------------------------------------------------------------
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
            targets = _aggregate(plain, publisher)
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
            hit = cache[topic] = (plain, shared, None if no_local else _aggregate(plain, None))
        return hit

    def _add_shared(self, targets: dict[str, tuple], shared: dict) -> dict[str, tuple]:
        """One member of each matching share group joins ``targets`` (a copy we may change)."""
        for group, members in shared.items():
            client_id, entry = self._pick_member(group, members)
            options = entry.options
            ident = (entry.identifier,) if entry.identifier else ()
            old = targets.get(client_id)
            if old is None:
                targets[client_id] = (options.qos, options.retain_as_published, ident)
            else:  # the member matched on its own too: one copy for both [MQTT-3.3.4-2/3]
                targets[client_id] = (max(old[0], options.qos),
                                      old[1] or options.retain_as_published, old[2] + ident)
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
        if self.store is not None:
            self.store.retained_changed(topic, message)

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
        queue = flow.queue
        while queue and (queue[0].qos == 0 or len(flow.inflight) < flow.window):
            msg = queue.popleft()  # flow.pop_queued(), written out: this is the hot path
            flow.queued_bytes -= len(msg.payload)
            if msg.expires_at is not None and now >= msg.expires_at:
                self._drop(session, msg, "expired", now)
                continue
            if msg.qos:
                flow.admit(msg, now)
            self._deliver(c, session, msg, now)
        if session.client_id in self._congested and len(queue) <= self._low_water \
                and flow.queued_bytes <= self._low_bytes:
            self._uncongest(session.client_id, now)

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

    def _send_ack(self, c: Connection, cls, packet_id: int, now: float, code: int = 0) -> None:
        """PUBACK, PUBREC, PUBREL or PUBCOMP without properties. The commonest packet of
        all, success without a reason code, is written directly."""
        if code:
            self._send(c, cls(packet_id, code), now)
            return
        c.out += (ACK_WORDS[cls] | packet_id).to_bytes(4, "big")
        self._pending.add(c.conn)
        if self.trace_sent:
            self._events.append(_new_sent(now, cls._new(packet_id), 4, c.conn, c.client_id))

    def _deliver(self, c: Connection, session: Session, msg: OutMessage, now: float) -> None:
        """Write a message's first PUBLISH to its subscriber's connection."""
        props = msg.properties
        if msg.expires_at is not None:  # forward the time left [MQTT-3.3.2-6]
            left = max(0, math.ceil(msg.expires_at - now))
            props = replace(props, message_expiry_interval=left)
        data = encode_publish(msg.topic, msg.payload, msg.qos, msg.retain, False,
                              msg.packet_id, props, c.version)
        if c.max_packet_out is not None and len(data) > c.max_packet_out:
            if msg.qos:  # never send above the client's limit [MQTT-3.1.2-24/25]
                session.flow.inflight.pop(msg.packet_id, None)
            self._drop(session, msg, "packet_too_large", now)
            return
        c.out += data
        self._pending.add(c.conn)
        if self.trace_sent:
            packet = _new_publish(msg.topic, msg.payload, msg.qos, msg.retain, False,
                                  msg.packet_id, props)
            self._events.append(_new_sent(now, packet, len(data), c.conn, c.client_id))
        if msg.qos and session.retry_timer:
            self._arm_retry(session)

    # -- acknowledgements from subscribers -------------------------------------------------
    def _on_puback(self, c: Connection, p: Puback, now: float) -> None:
        session = c.session
        flow = session.flow
        msg = flow.on_puback(p.packet_id)
        if msg is not None:  # what _acked does, without the call: this is the hot path
            self._events.append(_new_acknowledged(now, msg.number, msg.packet_id, 1,
                                                  p.reason_code, c.conn, c.client_id))
            if session.expiry and self.store is not None:
                self._session_changed(session)
        if flow.queue or flow.waiting or session.client_id in self._congested:
            self._fill(session, now)

    def _on_pubrec(self, c: Connection, p: Pubrec, now: float) -> None:
        session = c.session
        failed = p.reason_code >= 0x80
        msg, release = session.flow.on_pubrec(p.packet_id, failed, now)
        if release:
            missing = msg is None and c.version == MQTT_5
            self._send_ack(c, Pubrel, p.packet_id, now, 0x92 if missing else 0)
        if msg is not None and failed:
            self._acked(c, msg, p.reason_code, now)
            self._fill(session, now)
        if self.store is not None:
            self._session_changed(session)

    def _on_pubrel(self, c: Connection, p: Pubrel, now: float) -> None:
        known = c.session.incoming.on_pubrel(p.packet_id)
        self._send_ack(c, Pubcomp, p.packet_id, now,
                       0x92 if not known and c.version == MQTT_5 else 0)
        if self.store is not None:
            self._session_changed(c.session)

    def _on_pubcomp(self, c: Connection, p: Pubcomp, now: float) -> None:
        session = c.session
        flow = session.flow
        msg = flow.on_pubcomp(p.packet_id)
        if msg is not None:
            self._acked(c, msg, p.reason_code, now)
        if flow.queue or flow.waiting:  # else _fill has nothing to do
            self._fill(session, now)

    def _acked(self, c: Connection, msg: OutMessage, code: int, now: float) -> None:
        self._events.append(_new_acknowledged(now, msg.number, msg.packet_id, msg.qos, code,
                                              c.conn, c.client_id))
        if self.store is not None:
            self._session_changed(c.session)

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------
    def _on_subscribe(self, c: Connection, p: Subscribe, now: float) -> None:
        session, version = c.session, c.version
        identifier = (p.properties.subscription_identifiers[0]
                      if p.properties.subscription_identifiers else None)
        codes, retained = [], []
        for sub in p.subscriptions:
            topic_filter = sub.topic_filter
            share, plain = parse_shared_subscription(topic_filter, version)
            # A shared subscription is checked on its filter part: "$share/g/#" asks for #.
            if self.authz is not None and not self.authz.authorize(
                    c.client_id, session.username, plain, "subscribe"):
                if version == MQTT_3_1:  # 3.1 has no failure code: refuse by closing
                    raise ProtocolError(f"subscription to {topic_filter!r} not authorized",
                                        reason_code=0x87)
                codes.append(0x87 if version == MQTT_5 else 0x80)
                continue
            entry = SubscriptionEntry(sub, identifier)
            is_new = self.subscriptions.add(topic_filter, c.client_id, entry, version=version)
            self._route_cache.clear()
            session.subscriptions[topic_filter] = entry
            codes.append(sub.qos)
            handling = sub.retain_handling
            if share is None and (handling == 0 or (handling == 1 and is_new)):
                retained.append((plain, entry))  # [MQTT-3.3.1-6], [MQTT-3.3.1-9..11]
        self._send(c, Suback(p.packet_id, tuple(codes)), now)  # [MQTT-3.8.4-1]
        self._events.append(ev.Subscribed(now, p.packet_id,
                                          tuple(s.topic_filter for s in p.subscriptions),
                                          tuple(codes), c.conn, c.client_id))
        for plain, entry in retained:
            self._send_retained(session, plain, entry, now)
        self._session_changed(session)

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

    def _on_unsubscribe(self, c: Connection, p: Unsubscribe, now: float) -> None:
        codes = []
        for topic_filter in p.topic_filters:
            removed = self.subscriptions.remove(topic_filter, c.client_id)  # [MQTT-3.10.4-1]
            self._route_cache.clear()
            c.session.subscriptions.pop(topic_filter, None)
            codes.append(0x00 if removed else 0x11)
        codes_out = tuple(codes) if c.version == MQTT_5 else ()
        self._send(c, Unsuback(p.packet_id, codes_out), now)  # always [MQTT-3.10.4-5]
        self._events.append(ev.Unsubscribed(now, p.packet_id, p.topic_filters, codes_out,
                                            c.conn, c.client_id))
        self._session_changed(c.session)

    # -- the rest --------------------------------------------------------------------------
    def _on_pingreq(self, c: Connection, p: Pingreq, now: float) -> None:
        self._send(c, Pingresp(), now)  # [MQTT-3.12.4-1]

    def _on_disconnect(self, c: Connection, p: Disconnect, now: float) -> None:
        session = c.session
        if c.version == MQTT_5:
            expiry = p.properties.session_expiry_interval
            if expiry is not None:
                if session.expiry == 0 and expiry:
                    raise ProtocolError("DISCONNECT sets a Session Expiry Interval after "
                                        "CONNECT asked for none")
                session.expiry = expiry
        with_will = c.version == MQTT_5 and p.reason_code == 0x04
        if not with_will:
            c.will = None  # a normal DISCONNECT discards the will [MQTT-3.14.4-3]
        self._close(c, now, "clean", "client sent DISCONNECT", publish_will=with_will)

    def _on_auth(self, c: Connection, p: Auth, now: float) -> None:
        raise ProtocolError("AUTH without an Authentication Method in CONNECT",
                            "MQTT-4.12.0-7")

