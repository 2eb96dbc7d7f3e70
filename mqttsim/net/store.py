"""Broker persistence in SQLite: retained messages and persistent sessions survive restarts.

Theory of operation: the engine reports changes synchronously (``retained_changed``,
``session_changed``, ``session_removed``); this store only *notes* them. ``commit()``, which
the server calls once per event-loop turn before writing that turn's acknowledgements, turns
the notes into one SQLite transaction (group commit): each dirty session is compared with
what was last written and only the differences become rows, so a subscriber with 1,000
queued messages costs one row per message that changed, not a rewrite of its queue. WAL
journal mode, ``synchronous=FULL`` by default: a committed transaction survives ``kill -9``
and power loss (``NORMAL`` survives ``kill -9`` only, and is faster).

Format (explicit columns and JSON, never pickle, so a database is readable with the
``sqlite3`` shell and does not execute anything when loaded):

- ``retained(topic, payload, qos, properties, expires_at)``
- ``sessions(client_id, version, expiry, username, expires_at, subscriptions, incoming)``:
  subscriptions as JSON ``[{"filter", "qos", "no_local", "retain_as_published",
  "retain_handling", "identifier"}]``, incoming as the JSON list of QoS 2 packet ids
  received but not yet released.
- ``messages(client_id, seq, topic, payload, qos, retain, properties, packet_id, released,
  number, expires_at)``: one row per queued or in-flight message, in delivery order
  (``seq``); a ``packet_id`` means in flight, ``released`` means PUBREL was sent.

MQTT 5 properties are stored in their wire encoding (the codec's own property block).
Times: the engine's clock is the driver's (``loop.time()``, monotonic, meaningless after a
restart), so expiry times are converted to wall-clock seconds on write and back on load
with the ``clock`` the store is given.

The file may have been edited by hand (it is meant to be readable) or damaged, so ``load``
checks every value it restores against what the protocol allows: a row that fails is named
(table, key, the value and the rule) in one line to ``on_problem``, removed from the store
and skipped, and every good row is restored. Restoring such a row instead would fail later,
and again on every reconnect: a ``packet_id`` of 70000 cannot be encoded, so the session's
whole queue would never be delivered. Tables whose columns are not this version's are
refused when the store is opened (nothing could be written to them either).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Callable

from ..protocol.broker_state import (BrokerConfig, BrokerStore, RetainedMessage, Session,
                                     SubscriptionEntry)
from ..protocol.flows import IncomingQoS2, OutgoingFlow, OutMessage
from ..protocol.errors import MQTTError
from ..protocol.packets import MQTT_5, Subscription
from ..protocol.properties import NO_PROPERTIES, Properties, decode_properties, encode_properties
from ..protocol.topics import validate_topic_filter, validate_topic_name

SCHEMA_VERSION = "1"
_PUBLISH = 3  # packet type whose properties a stored message carries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL,
    properties BLOB NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY, version INTEGER NOT NULL, expiry INTEGER NOT NULL,
    username TEXT, expires_at REAL, subscriptions TEXT NOT NULL, incoming TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    client_id TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB NOT NULL,
    packet_id INTEGER, released INTEGER NOT NULL, number INTEGER NOT NULL, expires_at REAL,
    PRIMARY KEY (client_id, seq)) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The database is not one this version can read."""


class BadRow(ValueError):
    """A stored row that cannot be restored; the message names the value and the rule."""


# The columns this version reads and writes, in order, per table.
COLUMNS = {
    "retained": ("topic", "payload", "qos", "properties", "expires_at"),
    "sessions": ("client_id", "version", "expiry", "username", "expires_at", "subscriptions",
                 "incoming"),
    "messages": ("client_id", "seq", "topic", "payload", "qos", "retain", "properties",
                 "packet_id", "released", "number", "expires_at"),
}


def _props_blob(props: Properties) -> bytes:
    return encode_properties(props, _PUBLISH)


def _props_value(blob: bytes) -> Properties:
    if blob == b"\x00":
        return NO_PROPERTIES
    return decode_properties(memoryview(blob), 0, len(blob), _PUBLISH)[0]


def _subscriptions_json(subscriptions: dict[str, SubscriptionEntry]) -> str:
    return json.dumps([{"filter": topic_filter, "qos": entry.options.qos,
                        "no_local": entry.options.no_local,
                        "retain_as_published": entry.options.retain_as_published,
                        "retain_handling": entry.options.retain_handling,
                        "identifier": entry.identifier}
                       for topic_filter, entry in subscriptions.items()])


class SqliteStore(BrokerStore):
    """A durable ``BrokerStore``: ``SqliteStore(path)``, then ``engine.restore(*store.load())``.

    ``config`` gives restored sessions their window and queue limits (the engine's
    ``BrokerConfig``); ``clock`` must be the clock the engine is driven with.
    """

    def __init__(self, path: str | os.PathLike, config: BrokerConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, synchronous: str = "FULL",
                 on_problem: Callable[[str], None] | None = None):
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = os.fspath(path)
        self.config = config or BrokerConfig()
        self.clock = clock
        # One connection, used only from the server's event loop (possibly another thread
        # than the one that built the store); autocommit mode with explicit transactions.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(_SCHEMA)
        found = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if found is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {found[0]}, expected "
                             f"{SCHEMA_VERSION}")
        for table, expected in COLUMNS.items():
            columns = tuple(row[1] for row in self.db.execute(f"PRAGMA table_info({table})"))
            if columns != expected:
                raise StoreError(f"{self.path}: table {table} has the columns "
                                 f"({', '.join(columns)}); this version reads and writes "
                                 f"({', '.join(expected)})")
        # Where load() reports a row it skips (one line each); also kept in ``problems``.
        self.on_problem = on_problem
        self.problems: list[str] = []
        self._retained: dict[str, RetainedMessage | None] = {}
        self._sessions: dict[str, Session | None] = {}  # None: removed
        # What the database holds per client: id(message) -> (message, seq, state). The
        # message is kept so its id cannot be reused by another object.
        self._written: dict[str, dict[int, tuple[OutMessage, int, tuple]]] = {}
        self._next_seq: dict[str, int] = {}
        self.commits = 0  # transactions written, for tests and statistics

    # -- BrokerStore -----------------------------------------------------------------------
    def retained_changed(self, topic: str, message: RetainedMessage | None) -> None:
        self._retained[topic] = message

    def session_changed(self, session: Session) -> None:
        self._sessions[session.client_id] = session

    def session_removed(self, client_id: str) -> None:
        self._sessions[client_id] = None

    def commit(self) -> None:
        """Write everything noted since the last commit in one transaction."""
        if not self._retained and not self._sessions:
            return
        offset = time.time() - self.clock()  # engine time -> wall clock
        db = self.db
        db.execute("BEGIN")
        try:
            for topic, message in self._retained.items():
                if message is None:
                    db.execute("DELETE FROM retained WHERE topic=?", (topic,))
                else:
                    db.execute("INSERT OR REPLACE INTO retained VALUES (?,?,?,?,?)",
                               (topic, message.payload, message.qos,
                                _props_blob(message.properties),
                                _wall(message.expires_at, offset)))
            for client_id, session in self._sessions.items():
                if session is None:
                    db.execute("DELETE FROM sessions WHERE client_id=?", (client_id,))
                    db.execute("DELETE FROM messages WHERE client_id=?", (client_id,))
                    self._written.pop(client_id, None)
                    self._next_seq.pop(client_id, None)
                else:
                    self._write_session(session, offset)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._retained.clear()
        self._sessions.clear()
        self.commits += 1

    def _write_session(self, session: Session, offset: float) -> None:
        db = self.db
        client_id = session.client_id
        db.execute("INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?)",
                   (client_id, session.version, session.expiry, session.username,
                    _wall(session.expires_at, offset),
                    _subscriptions_json(session.subscriptions),
                    json.dumps(sorted(session.incoming.pending))))
        old = self._written.get(client_id, {})
        new: dict[int, tuple[OutMessage, int, tuple]] = {}
        seq = self._next_seq.get(client_id, 0)
        flow = session.flow
        for msg in (*flow.inflight.values(), *flow.queue):
            state = (msg.packet_id, msg.released)
            known = old.pop(id(msg), None)
            if known is not None and known[0] is msg:
                if known[2] != state:
                    db.execute("UPDATE messages SET packet_id=?, released=? "
                               "WHERE client_id=? AND seq=?",
                               (msg.packet_id, msg.released, client_id, known[1]))
                new[id(msg)] = (msg, known[1], state)
                continue
            db.execute("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (client_id, seq, msg.topic, msg.payload, msg.qos, msg.retain,
                        _props_blob(msg.properties), msg.packet_id, msg.released,
                        msg.number, _wall(msg.expires_at, offset)))
            new[id(msg)] = (msg, seq, state)
            seq += 1
        if old:  # acknowledged, expired or dropped since the last commit
            db.executemany("DELETE FROM messages WHERE client_id=? AND seq=?",
                           [(client_id, entry[1]) for entry in old.values()])
        self._written[client_id] = new
        self._next_seq[client_id] = seq

    # -- start-up --------------------------------------------------------------------------
    def load(self, config: BrokerConfig | None = None
             ) -> tuple[list[Session], list[RetainedMessage]]:
        """(sessions, retained messages) for ``BrokerEngine.restore``; what expired while
        the broker was down is deleted instead, and so is every row that fails the checks
        (reported to ``on_problem``). Raises StoreError if the file itself is unreadable."""
        config = config or self.config
        self.commit()
        db = self.db
        try:
            db.execute("BEGIN")
            try:
                result = self._load(config)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:  # a damaged file: "database disk image is malformed"
            raise StoreError(f"{self.path}: cannot read the stored state: {exc}") from None
        return result

    def _load(self, config: BrokerConfig) -> tuple[list[Session], list[RetainedMessage]]:
        offset = self.clock() - time.time()  # wall clock -> engine time
        wall_now = time.time()
        db = self.db
        retained = []
        for row in db.execute(f"SELECT rowid, {', '.join(COLUMNS['retained'])} FROM retained"
                              ).fetchall():
            rowid, topic, payload, qos, props, expires_at = row
            try:
                message = _retained_row(topic, payload, qos, props, expires_at)
            except BadRow as bad:
                self._skip("retained", f"topic={topic!r}", bad)
                db.execute("DELETE FROM retained WHERE rowid=?", (rowid,))
                continue
            if expires_at is None or expires_at > wall_now:
                message.expires_at = _engine(expires_at, offset)
                retained.append(message)
        db.execute("DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ?",
                   (wall_now,))
        db.execute("DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?",
                   (wall_now,))
        db.execute("DELETE FROM messages WHERE client_id NOT IN "
                   "(SELECT client_id FROM sessions)")
        sessions: dict[str, Session] = {}
        for row in db.execute(f"SELECT rowid, {', '.join(COLUMNS['sessions'])} FROM sessions"
                              ).fetchall():
            rowid, client_id = row[0], row[1]
            try:
                session = _session_row(*row[1:], config)
            except BadRow as bad:
                queued = db.execute("SELECT count(*) FROM messages WHERE client_id=?",
                                    (client_id,)).fetchone()[0]
                also = f" (and its {queued} stored messages)" if queued else ""
                self._skip("sessions", f"client_id={client_id!r}", bad, also)
                db.execute("DELETE FROM messages WHERE client_id=?", (client_id,))
                db.execute("DELETE FROM sessions WHERE rowid=?", (rowid,))
                continue
            session.expires_at = _engine(session.expires_at, offset)
            sessions[client_id] = session
            self._written[client_id] = {}
            self._next_seq[client_id] = 0
        for row in db.execute(f"SELECT {', '.join(COLUMNS['messages'])} FROM messages "
                              "ORDER BY client_id, seq").fetchall():
            client_id, seq = row[0], row[1]
            session = sessions[client_id]
            try:
                msg = _message_row(*row[1:], session.flow)
            except BadRow as bad:
                self._skip("messages", f"client_id={client_id!r}, seq={seq!r}", bad)
                db.execute("DELETE FROM messages WHERE client_id=? AND seq=?", (client_id, seq))
                continue
            msg.expires_at = _engine(msg.expires_at, offset)
            if msg.packet_id is None:
                session.flow.queue.append(msg)
            else:
                session.flow.inflight[msg.packet_id] = msg
            self._written[client_id][id(msg)] = (msg, seq, (msg.packet_id, msg.released))
            self._next_seq[client_id] = seq + 1
        return list(sessions.values()), retained

    def _skip(self, table: str, key: str, bad: BadRow, also: str = "") -> None:
        line = (f"Persistence: {self.path}: skipped the {table} row {key}{also}: {bad}; "
                "removed from the store")
        self.problems.append(line)
        if self.on_problem is not None:
            self.on_problem(line)

    def close(self) -> None:
        """Commit what is pending and close the database."""
        self.commit()
        self.db.close()


# -- reading rows back: every value checked against what the protocol allows -----------------

def _integer(value: object, what: str, low: int, high: int, rule: str = "") -> int:
    if type(value) is not int or not low <= value <= high:
        raise BadRow(f"{what} = {value!r}: expected an integer from {low} to {high}"
                     + (f" [{rule}]" if rule else ""))
    return value


def _flag(value: object, what: str) -> bool:
    return bool(_integer(value, what, 0, 1))


def _blob(value: object, what: str) -> bytes:
    if isinstance(value, str):  # a hand edit in the sqlite3 shell stores text: its UTF-8
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, bytes):
        raise BadRow(f"{what} = {value!r}: expected a blob of bytes")
    return value


def _time(value: object, what: str) -> float | None:
    if value is not None and (type(value) not in (int, float) or value != value):
        raise BadRow(f"{what} = {value!r}: expected empty (NULL) or a time in seconds")
    return value  # type: ignore[return-value]


def _topic(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BadRow(f"{what} = {value!r}: expected a topic name (text)")
    try:
        validate_topic_name(value, MQTT_5)
    except MQTTError as exc:
        raise BadRow(f"{what} = {value!r}: {exc}") from None
    return value


def _properties(value: object, what: str) -> Properties:
    blob = _blob(value, what)
    try:
        return _props_value(blob)
    except (MQTTError, IndexError, ValueError) as exc:
        raise BadRow(f"{what} = {blob[:16]!r}: not an MQTT 5 PUBLISH property block "
                     f"({exc})") from None


def _json(value: object, what: str) -> object:
    try:
        return json.loads(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise BadRow(f"{what} = {str(value)[:40]!r}: not JSON ({exc})") from None


def _retained_row(topic, payload, qos, props, expires_at) -> RetainedMessage:
    return RetainedMessage(_topic(topic, "topic"), _blob(payload, "payload"),
                           _integer(qos, "qos", 0, 2, "MQTT-3.3.1-4"),
                           _properties(props, "properties"), _time(expires_at, "expires_at"))


_SUBSCRIPTION_KEYS = ("filter", "qos", "no_local", "retain_as_published", "retain_handling",
                      "identifier")


def _subscription_entries(text: object, version: int) -> dict[str, SubscriptionEntry]:
    items = _json(text, "subscriptions")
    if not isinstance(items, list):
        raise BadRow(f"subscriptions = {str(text)[:40]!r}: expected a JSON list")
    out = {}
    for i, item in enumerate(items):
        what = f"subscriptions[{i}]"
        if not isinstance(item, dict):
            raise BadRow(f"{what} = {item!r}: expected a JSON object")
        missing = [key for key in _SUBSCRIPTION_KEYS if key not in item]
        if missing:
            raise BadRow(f"{what} has no {', '.join(map(repr, missing))}; expected the keys "
                         f"{', '.join(_SUBSCRIPTION_KEYS)}")
        topic_filter = item["filter"]
        if not isinstance(topic_filter, str):
            raise BadRow(f"{what}.filter = {topic_filter!r}: expected a topic filter (text)")
        try:
            validate_topic_filter(topic_filter, version)
        except MQTTError as exc:
            raise BadRow(f"{what}.filter = {topic_filter!r}: {exc}") from None
        identifier = item["identifier"]
        if identifier is not None:
            # MQTT 5 3.8.2.1.2: a Variable Byte Integer from 1 to 268,435,455
            _integer(identifier, f"{what}.identifier", 1, 268_435_455)
        options = Subscription(
            topic_filter, _integer(item["qos"], f"{what}.qos", 0, 2),
            _json_flag(item["no_local"], f"{what}.no_local"),
            _json_flag(item["retain_as_published"], f"{what}.retain_as_published"),
            _integer(item["retain_handling"], f"{what}.retain_handling", 0, 2))
        out[topic_filter] = SubscriptionEntry(options, identifier)
    return out


def _json_flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRow(f"{what} = {value!r}: expected true or false")
    return value


def _session_row(client_id, version, expiry, username, expires_at, subscriptions, incoming,
                 config: BrokerConfig) -> Session:
    if not isinstance(client_id, str):
        raise BadRow(f"client_id = {client_id!r}: expected text")
    version = _integer(version, "version", 3, 5)
    if username is not None and not isinstance(username, str):
        raise BadRow(f"username = {username!r}: expected empty (NULL) or text")
    pending = _json(incoming, "incoming")
    if not isinstance(pending, list):
        raise BadRow(f"incoming = {str(incoming)[:40]!r}: expected a JSON list of packet ids")
    received = IncomingQoS2()
    received.pending.update(_integer(packet_id, f"incoming[{i}]", 1, 65535, "MQTT-2.3.1-1")
                            for i, packet_id in enumerate(pending))
    flow = OutgoingFlow(config.max_inflight, config.max_queued_messages, config.queue_qos0,
                        config.max_queued_bytes)
    return Session(client_id, version, _integer(expiry, "expiry", 0, 2**32 - 1), flow,
                   received, None, username, _time(expires_at, "expires_at"),
                   _subscription_entries(subscriptions, version))


def _message_row(seq, topic, payload, qos, retain, props, packet_id, released, number,
                 expires_at, flow: OutgoingFlow) -> OutMessage:
    _integer(seq, "seq", 0, 2**63 - 1)
    qos = _integer(qos, "qos", 0, 2, "MQTT-3.3.1-4")
    if packet_id is not None:
        if qos == 0:
            raise BadRow(f"packet_id = {packet_id!r} with qos = 0: a QoS 0 message has no "
                         "packet identifier [MQTT-2.3.1-5]")
        _integer(packet_id, "packet_id", 1, 65535, "MQTT-2.3.1-1")
        if packet_id in flow.inflight:
            raise BadRow(f"packet_id = {packet_id}: already used by another stored message of "
                         "this session [MQTT-2.3.1-2]")
    released = _flag(released, "released")
    if released and (qos != 2 or packet_id is None):
        raise BadRow("released = 1: only a QoS 2 message in flight (with a packet_id) can "
                     "have been released")
    return OutMessage(_topic(topic, "topic"), _blob(payload, "payload"), qos,
                      _flag(retain, "retain"), _properties(props, "properties"),
                      _integer(number, "number", -2**63, 2**63 - 1), packet_id, released, 0.0,
                      _time(expires_at, "expires_at"))


def _wall(engine_time: float | None, offset: float) -> float | None:
    return None if engine_time is None else engine_time + offset


def _engine(wall_time: float | None, offset: float) -> float | None:
    return None if wall_time is None else wall_time + offset


__all__ = ["SqliteStore", "StoreError", "BadRow"]
