"""The broker engine's handlers of the packets a connected client sends (a part of
``BrokerEngine``, see broker.py): PUBLISH in (write check, QoS 2 dedupe, acknowledgement),
the acknowledgements of subscribers, SUBSCRIBE and UNSUBSCRIBE (the retained messages a
subscription brings), PINGREQ, DISCONNECT and AUTH.
"""

from __future__ import annotations

from dataclasses import replace

from . import events as ev
from .broker_state import Connection, SubscriptionEntry
from .errors import ProtocolError
from .flows import OutMessage
from .packets import (MQTT_3_1, MQTT_5, Auth, Disconnect, Pingreq, Pingresp, Puback, Pubcomp,
                      Publish, Pubrec, Pubrel, Suback, Subscribe, Unsuback, Unsubscribe)
from .properties import NO_PROPERTIES, Properties
from .topics import parse_shared_subscription, resolve_topic_alias


class PacketHandlersMixin:
    """Handlers for packets after CONNECT. Needs BrokerEngine's attributes."""

    # -- PUBLISH from a client -------------------------------------------------------------
    def _on_publish(self, c: Connection, p: Publish, now: float) -> None:
        session = c.session
        topic, props = p.topic, p.properties
        self.sys.publish_received += 1
        if props is not NO_PROPERTIES and c.version == MQTT_5:
            topic, props = self._inbound_properties(c, topic, props)
        if p.retain and not self.config.retain_available:
            raise ProtocolError("PUBLISH with RETAIN but retain is not available",
                                "MQTT-3.2.2-14", reason_code=0x9A)
        authz = self.authz
        allowed = authz is None or authz.authorize(c.client_id, session.username, topic, "write")
        if topic[0] == "$" and topic.startswith("$SYS") and not _writable_sys_topic(topic):
            allowed = False  # the broker's own tree (broker_sys.py), as mosquitto's ACL check
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
            self._events.append(ev.MessageReceived(now, topic, p, c.conn, c.client_id))
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

    # -- acknowledgements from subscribers -------------------------------------------------
    def _on_puback(self, c: Connection, p: Puback, now: float) -> None:
        session = c.session
        flow = session.flow
        msg = flow.on_puback(p.packet_id)
        if msg is not None:
            self._acked(c, msg, p.reason_code, now)
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
        self._events.append(ev.MessageAcknowledged(now, msg.number, msg.packet_id, msg.qos,
                                                   code, c.conn, c.client_id))
        if self.store is not None:
            self._session_changed(c.session)

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------
    def _on_subscribe(self, c: Connection, p: Subscribe, now: float) -> None:
        session, version = c.session, c.version
        identifier = (p.properties.subscription_identifiers[0]
                      if p.properties.subscription_identifiers else None)
        codes, retained = [], []
        for sub in p.subscriptions:
            if c.bridge:  # a 3.1/3.1.1 bridge (try_private) is never sent its own messages
                # back, and keeps their RETAIN flag, as Mosquitto treats it
                # (src/handle_subscribe.c): the loop prevention MQTT 5 spells as No Local.
                sub = replace(sub, no_local=True, retain_as_published=True)
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


def _writable_sys_topic(topic: str) -> bool:
    """Clients may not publish under ``$SYS`` (mosquitto's acl__check_dollar denies it), so
    no one can fake or clear the broker's statistics; the one exception, as there, is a
    bridge's ``$SYS/broker/connection/<name>/state``."""
    levels = topic.split("/")
    return (len(levels) == 5 and levels[:3] == ["$SYS", "broker", "connection"]
            and levels[4] == "state")
