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
from ..protocol.packets import Subscription
from ..protocol.properties import NO_PROPERTIES, Properties, decode_properties, encode_properties

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


def _subscriptions_value(text: str) -> dict[str, SubscriptionEntry]:
    out = {}
    for item in json.loads(text):
        options = Subscription(item["filter"], item["qos"], item["no_local"],
                               item["retain_as_published"], item["retain_handling"])
        out[item["filter"]] = SubscriptionEntry(options, item["identifier"])
    return out


class SqliteStore(BrokerStore):
    """A durable ``BrokerStore``: ``SqliteStore(path)``, then ``engine.restore(*store.load())``.

    ``config`` gives restored sessions their window and queue limits (the engine's
    ``BrokerConfig``); ``clock`` must be the clock the engine is driven with.
    """

    def __init__(self, path: str | os.PathLike, config: BrokerConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, synchronous: str = "FULL"):
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
        the broker was down is deleted instead."""
        config = config or self.config
        self.commit()
        offset = self.clock() - time.time()  # wall clock -> engine time
        wall_now = time.time()
        db = self.db
        db.execute("BEGIN")
        try:
            retained = []
            for topic, payload, qos, props, expires_at in db.execute(
                    "SELECT topic, payload, qos, properties, expires_at FROM retained"):
                if expires_at is None or expires_at > wall_now:
                    retained.append(RetainedMessage(topic, bytes(payload), qos,
                                                    _props_value(props),
                                                    _engine(expires_at, offset)))
            db.execute("DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ?",
                       (wall_now,))
            expired = [row[0] for row in db.execute(
                "SELECT client_id FROM sessions WHERE expires_at IS NOT NULL "
                "AND expires_at <= ?", (wall_now,))]
            for client_id in expired:
                db.execute("DELETE FROM sessions WHERE client_id=?", (client_id,))
            db.execute("DELETE FROM messages WHERE client_id NOT IN "
                       "(SELECT client_id FROM sessions)")
            sessions = {}
            for (client_id, version, expiry, username, expires_at, subscriptions,
                 incoming) in db.execute("SELECT * FROM sessions"):
                flow = OutgoingFlow(config.max_inflight, config.max_queued_messages,
                                    config.queue_qos0)
                received = IncomingQoS2()
                received.pending.update(json.loads(incoming))
                sessions[client_id] = Session(
                    client_id, version, expiry, flow, received, None, username,
                    _engine(expires_at, offset), _subscriptions_value(subscriptions))
                self._written[client_id] = {}
                self._next_seq[client_id] = 0
            for (client_id, seq, topic, payload, qos, retain, props, packet_id, released,
                 number, expires_at) in db.execute(
                    "SELECT * FROM messages ORDER BY client_id, seq"):
                session = sessions[client_id]
                msg = OutMessage(topic, bytes(payload), qos, bool(retain), _props_value(props),
                                 number, packet_id, bool(released), 0.0,
                                 _engine(expires_at, offset))
                if packet_id is None:
                    session.flow.queue.append(msg)
                else:
                    session.flow.inflight[packet_id] = msg
                self._written[client_id][id(msg)] = (msg, seq, (packet_id, msg.released))
                self._next_seq[client_id] = seq + 1
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return list(sessions.values()), retained

    def close(self) -> None:
        """Commit what is pending and close the database."""
        self.commit()
        self.db.close()


def _wall(engine_time: float | None, offset: float) -> float | None:
    return None if engine_time is None else engine_time + offset


def _engine(wall_time: float | None, offset: float) -> float | None:
    return None if wall_time is None else wall_time + offset


__all__ = ["SqliteStore", "StoreError"]
