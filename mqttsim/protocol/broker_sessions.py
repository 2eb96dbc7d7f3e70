"""The broker engine's sessions (a part of ``BrokerEngine``, see broker.py).

A session is what the broker keeps for a client id across connections [MQTT-4.1.0-1]: its
subscriptions, its queue and in-flight messages, its will. This part accepts or refuses a
CONNECT (authentication, the will's write check, takeover [MQTT-3.1.4-2], clean start,
a session belonging to the user who made it), resumes a session [MQTT-4.4.0-1], ends
connections (publishing wills when they are due) and expires sessions.

Two choices where the spec leaves room (issue 13), compared with mosquitto 2.0.11:

- A will its user may not write is refused at CONNECT: CONNACK 0x87 Not authorized (MQTT 5)
  or return code 5 (3.1/3.1.1, which have no closer code), so the client learns why at once;
  mosquitto 2.0.11 accepts the CONNECT and drops the will silently when it falls due. The
  will is checked again when published, in case the authorizer's answer changed.
- Another user connecting with a persistent session's client id gets a fresh session
  (session present 0) and nothing of the first user's: queue, in-flight messages,
  subscriptions (the drops are reported as session_owner_changed). Refusing instead would
  let a session that never expires (3.1.1) lock its client id away for good. mosquitto
  2.0.11 resumes the session for the new user, keeps its subscriptions and filters its queue
  through the new user's ACL. Queued and in-flight messages of a session resumed by its own
  user are read-checked again too (the ACL may have changed, e.g. after a restart).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from . import events as ev
from .auth import NOT_AUTHORIZED
from .broker_state import NEVER_EXPIRES, Connection, ConnState, Session, Timer
from .flows import OutgoingFlow
from .packets import MQTT_3_1, MQTT_3_1_1, MQTT_5, Connack, Connect
from .properties import NO_PROPERTIES, Properties
from .reason_codes import CONNACK_V3_TO_V5, reason_name

_AWAITING, _CONNECTED, _CLOSING = (ConnState.AWAITING_CONNECT, ConnState.CONNECTED,
                                   ConnState.CLOSING)


class SessionsMixin:
    """CONNECT, sessions, wills, the end of connections. Needs BrokerEngine's attributes."""

    # -- CONNECT ---------------------------------------------------------------------------
    def _on_connect(self, c: Connection, p: Connect, now: float) -> None:
        cfg = self.config
        version = c.version = c.decoder.version
        client_id = p.client_id
        assigned = None
        props = p.properties
        if not client_id:
            if version == MQTT_3_1 or not cfg.allow_zero_length_clientid or (
                    version == MQTT_3_1_1 and not p.clean_session):
                return self._refuse(c, 0x02, now, "empty client id needs clean session "
                                    "[MQTT-3.1.3-8]" if version == MQTT_3_1_1 else
                                    "empty client id not allowed", "MQTT-3.1.3-8")
            client_id = assigned = self._new_client_id()
        elif version == MQTT_3_1 and len(client_id) > 23:
            return self._refuse(c, 0x02, now, "MQTT 3.1 client ids are 1-23 characters")
        keepalive = p.keepalive
        server_keepalive = None
        if keepalive > cfg.max_keepalive or (keepalive == 0 and cfg.max_keepalive < 65535):
            if version != MQTT_5:
                return self._refuse(c, 0x02, now,
                                    f"keepalive {keepalive} s exceeds max_keepalive")
            keepalive = server_keepalive = cfg.max_keepalive
        if version == MQTT_5 and props.authentication_method is not None:
            return self._refuse(c, 0x8C, now, "extended authentication is not supported",
                                "MQTT-4.12.0-1")
        if p.will is not None and p.will.retain and not cfg.retain_available:
            return self._refuse(c, 0x9A if version == MQTT_5 else 0x05, now,
                                "retained will but retain is not available", "MQTT-3.2.2-13")
        code = self.auth.authenticate(client_id, p.username, p.password)
        if code:
            return self._refuse(c, code, now, reason_name(code, MQTT_3_1_1, "CONNACK"))
        if p.will is not None and not self._may_write(client_id, p.username, p.will.topic):
            # A will is a publish by this client. Refused at CONNECT, where the client can
            # still learn why (3.1/3.1.1 return code 5 "not authorized", MQTT 5 reason 0x87,
            # [MQTT-3.1.4-2]: a failed check closes the connection), rather than accepted and
            # dropped silently when it falls due, as mosquitto 2.0.11 does (its ACL check is
            # in context__send_will only). Checked again when published (_publish_will).
            return self._refuse(c, NOT_AUTHORIZED, now,
                                f"will topic {p.will.topic!r} is not writable for user "
                                f"{p.username!r}")
        c.client_id = client_id
        c.keepalive = keepalive
        c.will = p.will
        c.bridge = p.bridge
        if version == MQTT_5:
            c.max_packet_out = props.maximum_packet_size
            c.alias_max_out = props.topic_alias_maximum or 0  # [MQTT-3.1.2-26]
            if p.will is not None:
                c.will_delay = p.will.properties.will_delay_interval or 0
        # A second connection with the same client id takes over [MQTT-3.1.4-2].
        session = self.sessions.get(client_id)
        # The old session ends here with a clean start, or when another user takes the id.
        ends = session is not None and (p.clean_session or session.username != p.username)
        if session is not None and session.conn is not None:
            old = self.connections.get(session.conn)
            if old is not None and old.state is not _CLOSING:
                if old.version == MQTT_5:
                    self._disconnect(old, 0x8E, now)  # Session taken over [MQTT-3.1.4-3]
                cancel_will = (not ends and old.will_delay > 0)
                self._close(old, now, "takeover", f"client id {client_id!r} connected again",
                            "MQTT-3.1.4-2" if version != MQTT_5 else "MQTT-3.1.4-3",
                            publish_will=not cancel_will)
            session = self.sessions.get(client_id)
        if ends:  # a delayed will goes when its session ends, if not before (MQTT 5 3.1.3.2)
            self._publish_delayed_will(client_id, now)
        else:
            self._cancel_delayed_will(client_id)
        expiry = self._session_expiry(version, p)
        if p.clean_session and session is not None:
            self._discard_session(session, now, "clean_session")  # [MQTT-3.1.2-6]
            session = None
        elif session is not None and session.username != p.username:
            # A session belongs to the identity that made it: another user asking for the
            # same client id gets a fresh one (session present 0), nothing of the first
            # (queue, in-flight messages, subscriptions). Not refused: the client id stays
            # the session's key as MQTT has it, and a 3.1.1 session that never expires
            # must not lock a client id away for good. (mosquitto 2.0.11 resumes it and
            # filters the queue through the new user's ACL, keeping the subscriptions.)
            self._discard_session(session, now, "session_owner_changed")
            session = None
        session_present = session is not None  # [MQTT-3.2.2-1..3]
        if session is None:
            window = cfg.max_inflight
            session = Session(client_id, version, expiry,
                              OutgoingFlow(window, cfg.max_queued_messages, cfg.queue_qos0,
                                           cfg.max_queued_bytes))
            self.sessions[client_id] = session
        session.version, session.expiry, session.expires_at = version, expiry, None
        session.username = p.username
        session.conn = c.conn
        if version == MQTT_5:
            session.flow.window = min(cfg.max_inflight, props.receive_maximum or 65535)
        policy = cfg.retry_policy or ("timer" if version == MQTT_3_1 else "on_reconnect")
        session.retry_timer = policy == "timer"
        c.session = session
        c.move("accept")
        self.sys.connects += 1
        # MQTT 3.1's CONNACK has no Session Present flag: the session resumes all the same.
        self._send(c, Connack(session_present and version != MQTT_3_1, 0,
                              self._connack_properties(c, assigned, server_keepalive)), now)
        self._events.append(ev.Connected(now, client_id, session_present, version, c.conn,
                                         keepalive))
        if keepalive:
            self._schedule(now + 1.5 * keepalive, Timer.KEEPALIVE, c.conn)
        if session_present:
            if self.authz is not None:
                self._recheck_read(session, now)
            for packet in session.flow.resend_all(now):  # [MQTT-4.4.0-1], in order
                self._send(c, packet, now)
        self._fill(session, now)
        self._arm_retry(session)
        self._session_changed(session)

    def _new_client_id(self) -> str:
        """A unique id for a client that sent none [MQTT-3.1.3-6]: never one a stored
        session (perhaps restored from disk) already uses. The prefix (mosquitto's
        auto_id_prefix) and then a counter, or what the driver's ``client_id_source`` gives
        (the socket server: a UUID, as mosquitto; the simulator keeps the counter, which is
        deterministic)."""
        source = self.client_id_source
        while True:
            self._assigned += 1
            client_id = (f"{self.config.assigned_id_prefix}"
                         f"{self._assigned if source is None else source()}")
            if client_id not in self.sessions:
                return client_id

    def _session_expiry(self, version: int, p: Connect) -> int:
        if version == MQTT_5:
            return p.properties.session_expiry_interval or 0
        return 0 if p.clean_session else NEVER_EXPIRES

    def _connack_properties(self, c: Connection, assigned: str | None,
                            server_keepalive: int | None) -> Properties:
        if c.version != MQTT_5:
            return NO_PROPERTIES
        cfg = self.config
        return Properties(
            assigned_client_identifier=assigned,  # [MQTT-3.2.2-16]
            server_keep_alive=server_keepalive,
            receive_maximum=cfg.receive_maximum if cfg.receive_maximum != 65535 else None,
            topic_alias_maximum=cfg.topic_alias_maximum or None,
            retain_available=None if cfg.retain_available else 0,
            maximum_packet_size=cfg.max_packet_size)

    def _refuse(self, c: Connection, code: int, now: float, detail: str,
                rule: str | None = None) -> None:
        """CONNACK with a failure code, then close [MQTT-3.2.2-5]."""
        version = c.version
        wire_code = code
        if version == MQTT_5 and code < 0x80:
            wire_code = CONNACK_V3_TO_V5[code]
        c.client_id = c.client_id or None
        self._send(c, Connack(False, wire_code), now)
        name = reason_name(wire_code, version, "CONNACK")
        self._events.append(ev.ConnectionRefused(now, None, wire_code, name, c.conn))
        self._close(c, now, "refused", f"{name}: {detail}", rule)

    # -- the end of a connection -----------------------------------------------------------
    def _close(self, c: Connection, now: float, reason: str, detail: str = "",
               rule: str | None = None, publish_will: bool = False) -> None:
        """The engine ends a connection: flush its output, then the driver closes it."""
        self._pending.add(c.conn)
        if c.state is not _CLOSING:
            c.move("close")
            self._end(c, now, reason, detail, rule, publish_will)

    def _end(self, c: Connection, now: float, reason: str, detail: str = "",
             rule: str | None = None, publish_will: bool = False) -> None:
        """Account once for the end of a connection (will, session), as it leaves
        AWAITING_CONNECT or CONNECTED for CLOSING or CLOSED."""
        self._held_acks.pop(c.conn, None)  # the publisher resends on reconnect, as MQTT says
        session = c.session
        will_published = False
        if session is not None and session.conn == c.conn:
            session.conn = None
            if session.client_id in self._congested:  # offline sessions never hold acks
                self._uncongest(session.client_id, now)
            if c.will is not None and publish_will:
                if c.will_delay and session.expiry:
                    due = now + min(c.will_delay, session.expiry)
                    self._schedule(due, Timer.WILL, session.client_id)
                    self._delayed_wills[session.client_id] = (c.will, c.conn, due,
                                                              session.username)
                else:
                    will_published = self._publish_will(session.client_id, c.will, c.conn,
                                                        now, session.username)
            c.will = None  # [MQTT-3.1.2-10] / [MQTT-3.14.4-3]
            for msg in session.flow.drop_queued_qos0():
                self._drop(session, msg, "qos0_offline", now)
            if session.expiry == 0:
                self._discard_session(session, now, "session_ended")
            else:
                if session.expiry != NEVER_EXPIRES:
                    session.expires_at = now + session.expiry
                    self._schedule(session.expires_at, Timer.EXPIRE, session.client_id)
                self._session_changed(session)
        self._events.append(ev.ConnectionClosed(now, c.client_id, reason, detail, rule, c.conn,
                                                will_published))

    # -- wills -----------------------------------------------------------------------------
    def _cancel_delayed_will(self, client_id: str) -> None:
        self._delayed_wills.pop(client_id, None)  # reconnected in time [MQTT-3.1.3-9]

    def _publish_delayed_will(self, client_id: str, now: float) -> None:
        pending = self._delayed_wills.pop(client_id, None)
        if pending is not None:
            self._publish_will(client_id, pending[0], pending[1], now, pending[3])

    def _publish_will(self, client_id: str, will, conn, now: float,
                      username: str | None) -> bool:
        """Publish a will as its client would have: only if that client's user may write
        the topic now (checked at CONNECT too; the authorizer's answer may have changed)."""
        if not self._may_write(client_id, username, will.topic):
            self._events.append(ev.MessageDropped(now, will.topic, will.qos, "not_authorized",
                                                  None, conn, client_id, will.payload))
            return False
        self._events.append(ev.WillPublished(now, client_id, will.topic, will.qos, will.retain,
                                             conn))
        props = will.properties  # Will Delay Interval is not a PUBLISH property
        if props.will_delay_interval is not None:
            props = replace(props, will_delay_interval=None)
        self.route(will.topic, will.payload, will.qos, will.retain, props, client_id, now)
        return True

    def _may_write(self, client_id: str, username: str | None, topic: str) -> bool:
        authz = self.authz
        return authz is None or authz.authorize(client_id, username, topic, "write")

    # -- sessions --------------------------------------------------------------------------
    def _recheck_read(self, session: Session, now: float) -> None:
        """A resumed session's queued and unacknowledged messages go out only if its user may
        read them now (the ACL may have changed since they were queued, e.g. a restart with
        a new acl_file; mosquitto does the same on reconnect). A QoS 2 message past PUBREC
        is already the receiver's: its PUBREL still goes."""
        authz, client_id, username = self.authz, session.client_id, session.username
        flow = session.flow
        refused = [msg for msg in flow.queue
                   if not authz.authorize(client_id, username, msg.topic, "read")]
        if refused:
            gone = {id(msg) for msg in refused}
            flow.queue = deque(msg for msg in flow.queue if id(msg) not in gone)
            flow.recount()
        for packet_id, msg in list(flow.inflight.items()):
            if not msg.released and not authz.authorize(client_id, username, msg.topic,
                                                        "read"):
                del flow.inflight[packet_id]
                refused.append(msg)
        for msg in refused:
            self._drop(session, msg, "not_authorized", now)

    def _discard_session(self, session: Session, now: float, reason: str) -> None:
        for msg in session.flow.discard():
            self._drop(session, msg, reason, now)
        if self.subscriptions.remove_all(session.client_id):
            self._route_cache.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if self.store is not None:
            self.store.session_removed(session.client_id)

    # -- timers of connections and sessions ------------------------------------------------
    def _timer_connect(self, conn, now: float) -> None:
        c = self.connections.get(conn)
        if c is not None and c.state is _AWAITING:
            self._close(c, now, "connect_timeout",
                        f"no CONNECT within {self.config.connect_timeout:g} s")

    def _timer_keepalive(self, conn, now: float) -> None:
        c = self.connections.get(conn)
        if c is None or c.state is not _CONNECTED or not c.keepalive:
            return
        deadline = c.last_received + 1.5 * c.keepalive
        if now < deadline:
            self._schedule(deadline, Timer.KEEPALIVE, conn)  # traffic arrived: look again later
            return
        rule = "MQTT-3.1.2-22" if c.version == MQTT_5 else "MQTT-3.1.2-24"
        if c.version == MQTT_5:
            self._disconnect(c, 0x8D, now)  # Keep Alive timeout
        self._close(c, now, "keepalive",
                    f"nothing received for 1.5 x {c.keepalive} s keepalive", rule,
                    publish_will=True)

    def _timer_will(self, client_id: str, now: float) -> None:
        pending = self._delayed_wills.get(client_id)
        if pending is not None and now >= pending[2]:  # not a timer of an earlier connection
            self._publish_delayed_will(client_id, now)

    def _timer_expire(self, client_id: str, now: float) -> None:
        session = self.sessions.get(client_id)
        if session is None or session.conn is not None or session.expires_at is None:
            return
        if now >= session.expires_at:
            self._timer_will(client_id, now)  # a delayed will goes out when the session ends
            self._discard_session(session, now, "session_expired")
            self.sys.expired += 1

    def _timer_retry(self, client_id: str, now: float) -> None:
        session = self.sessions.get(client_id)
        if session is None:
            return
        session.retry_armed = False
        if session.conn is None:
            return
        c = self.connections[session.conn]
        for packet in session.flow.resend_due(now, self.config.retry_interval):
            self._send(c, packet, now)
        self._arm_retry(session)

    def _arm_retry(self, session: Session) -> None:
        """One pending retry wake-up per session, at the oldest unacknowledged send."""
        if session.retry_armed or not session.retry_timer:
            return
        when = session.flow.next_retry(self.config.retry_interval)
        if when is not None:
            session.retry_armed = True
            self._schedule(when, Timer.RETRY, session.client_id)
