"""A hand-edited or damaged SQLite store: bad rows are named, skipped and removed; good rows
are restored; a store that cannot be read at all stops the broker with one line.

Issue 13: bad subscriptions JSON, a missing JSON key, a bad properties blob or changed
columns crashed ``mqttsim broker`` start-up with a traceback; a message row with
``packet_id = 70000`` or ``qos = 7`` started, then none of the session's 300 stored messages
reached the subscriber, which was disconnected on every reconnect.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.net.store import SqliteStore, StoreError
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import MQTT_5, Publish, Subscribe, Subscription
from mqttsim.protocol.properties import Properties
from support.mosquitto import free_port, require_mosquitto, stop_process

ROOT = Path(__file__).resolve().parents[2]


def stored_state(path: Path) -> None:
    """Two persistent sessions (a: 3 queued messages, b: 2) and two retained messages,
    written by a real engine through the store."""
    from test_store import connect  # the raw-packet client of test_store.py

    # The engine runs at time 0 here: the store must read the same clock, or the sessions'
    # hour of expiry is counted from the machine's monotonic clock (its uptime) and has
    # passed on a machine up for more than an hour.
    store = SqliteStore(path, clock=lambda: 0.0)
    broker = BrokerEngine(BrokerConfig(), store=store)
    for conn, client_id in (("c1", "a"), ("c2", "b")):
        client, _ = connect(broker, conn, client_id, version=MQTT_5,
                            properties=Properties(session_expiry_interval=3600))
        client.send(Subscribe(1, (Subscription(f"{client_id}/#", 1),)))
        client.drop()
    pub, _ = connect(broker, "p", "pub", clean=True, version=MQTT_5)
    for number, (topic, count) in enumerate((("a/x", 3), ("b/x", 2))):
        for i in range(count):
            pub.send(Publish(topic, f"{topic} {i}".encode(), 1, packet_id=10 * number + i + 1,
                             properties=Properties(content_type="text/plain")))
    pub.send(Publish("r/1", b"one", 0, retain=True))
    pub.send(Publish("r/2", b"two", 0, retain=True))
    store.close()


def edit(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute(sql).rowcount == 1, sql


def reload(path: Path) -> tuple[dict, dict, list[str], SqliteStore]:
    lines: list[str] = []
    store = SqliteStore(path, on_problem=lines.append)
    sessions, retained = store.load()
    queued = {s.client_id: [m.payload for m in (*s.flow.inflight.values(), *s.flow.queue)]
              for s in sessions}
    return queued, {r.topic: r.payload for r in retained}, lines, store


GOOD = {"a": [b"a/x 0", b"a/x 1", b"a/x 2"], "b": [b"b/x 0", b"b/x 1"]}


@pytest.mark.parametrize("sql, named, queued", [
    ("UPDATE sessions SET subscriptions='[{\"filter\": ' WHERE client_id='a'",
     "the sessions row client_id='a' (and its 3 stored messages): subscriptions = "
     "'[{\"filter\": ': not JSON", {"b": GOOD["b"]}),
    ("UPDATE sessions SET subscriptions='[{\"filter\": \"a/#\"}]' WHERE client_id='a'",
     "subscriptions[0] has no 'qos', 'no_local'", {"b": GOOD["b"]}),
    ("UPDATE sessions SET subscriptions='[{\"filter\": \"a/#\", \"qos\": 1, \"no_local\": false,"
     " \"retain_as_published\": false, \"retain_handling\": 0, \"identifier\": null}]',"
     " incoming='[0]' WHERE client_id='a'",
     "incoming[0] = 0: expected an integer from 1 to 65535 [MQTT-2.3.1-1]", {"b": GOOD["b"]}),
    ("UPDATE sessions SET version=9 WHERE client_id='b'",
     "client_id='b' (and its 2 stored messages): version = 9", {"a": GOOD["a"]}),
    ("UPDATE messages SET properties=x'05ff' WHERE client_id='a' AND seq=1",
     "the messages row client_id='a', seq=1: properties = b'\\x05\\xff': not an MQTT 5 "
     "PUBLISH property block", {"a": [b"a/x 0", b"a/x 2"], "b": GOOD["b"]}),
    ("UPDATE messages SET packet_id=70000 WHERE client_id='a' AND seq=0",
     "packet_id = 70000: expected an integer from 1 to 65535 [MQTT-2.3.1-1]",
     {"a": [b"a/x 1", b"a/x 2"], "b": GOOD["b"]}),
    ("UPDATE messages SET qos=7 WHERE client_id='b' AND seq=1",
     "the messages row client_id='b', seq=1: qos = 7: expected an integer from 0 to 2 "
     "[MQTT-3.3.1-4]", {"a": GOOD["a"], "b": [b"b/x 0"]}),
    ("UPDATE messages SET topic='a/+' WHERE client_id='a' AND seq=2",
     "topic = 'a/+'", {"a": [b"a/x 0", b"a/x 1"], "b": GOOD["b"]}),
    ("UPDATE messages SET released=1 WHERE client_id='a' AND seq=2",
     "released = 1: only a QoS 2 message in flight", {"a": [b"a/x 0", b"a/x 1"],
                                                      "b": GOOD["b"]}),
])
def test_a_bad_row_is_named_skipped_and_removed_and_the_rest_restored(
        tmp_path: Path, sql: str, named: str, queued: dict) -> None:
    path = tmp_path / "broker.db"
    stored_state(path)
    edit(path, sql)
    got, retained, lines, store = reload(path)
    assert got == queued
    assert retained == {"r/1": b"one", "r/2": b"two"}
    assert len(lines) == 1 and named in lines[0], lines
    assert lines[0].startswith(f"Persistence: {path}: skipped ") and "removed" in lines[0]
    store.close()
    again, _, lines, store = reload(path)  # removed: the next start is clean
    assert again == queued and lines == []
    store.close()


def test_a_bad_retained_row_is_skipped_and_the_others_restored(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    stored_state(path)
    edit(path, "UPDATE retained SET properties=x'03' WHERE topic='r/1'")
    got, retained, lines, store = reload(path)
    assert got == GOOD and retained == {"r/2": b"two"}
    assert len(lines) == 1 and "the retained row topic='r/1': properties = b'\\x03'" in lines[0]
    store.close()


def test_a_payload_edited_as_text_is_restored_as_its_utf8(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    stored_state(path)
    edit(path, "UPDATE messages SET payload='edited ü' WHERE client_id='b' AND seq=0")
    got, _, lines, store = reload(path)
    assert got["b"] == ["edited ü".encode(), b"b/x 1"] and lines == []
    store.close()


def test_the_engine_restores_what_survived_and_delivers_it(tmp_path: Path) -> None:
    """After skipping a bad row, the session's other messages really are deliverable."""
    from test_store import connect

    path = tmp_path / "broker.db"
    stored_state(path)
    edit(path, "UPDATE messages SET packet_id=70000 WHERE client_id='a' AND seq=0")
    store = SqliteStore(path, on_problem=lambda line: None)
    broker = BrokerEngine(BrokerConfig(), store=store)
    broker.restore(*store.load())
    _, replies = connect(broker, "c9", "a", version=MQTT_5,
                         properties=Properties(session_expiry_interval=3600))
    assert [p.payload for p in replies if isinstance(p, Publish)] == [b"a/x 1", b"a/x 2"]
    store.close()


@pytest.mark.parametrize("sql, table", [
    ("ALTER TABLE messages ADD COLUMN note TEXT", "messages"),
    ("ALTER TABLE sessions RENAME COLUMN incoming TO received", "sessions"),
])
def test_changed_columns_are_refused_at_open_naming_the_table(tmp_path: Path, sql: str,
                                                              table: str) -> None:
    path = tmp_path / "broker.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(sql)
    with pytest.raises(StoreError, match=f"table {table} has the columns"):
        SqliteStore(path)


# -- real processes: mqttsim broker, mosquitto_sub and mosquitto_pub ----------------------------

def broker_config(tmp_path: Path, port: int) -> Path:
    conf = tmp_path / "mqttsim.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}\n")
    return conf


@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", ["packet_id=70000", "qos=7"])
def test_a_real_broker_skips_the_bad_row_and_the_subscriber_gets_the_299_good_ones(
        tmp_path: Path, damage: str) -> None:
    from test_store import start_broker
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    port = free_port()
    conf, log = broker_config(tmp_path, port), tmp_path / "broker.log"
    common = ["-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    proc = start_broker(conf, port, log)
    try:
        subprocess.run(["mosquitto_sub", *common, "-c", "-i", "keeper", "-t", "jobs/#", "-E"],
                       check=True, timeout=15, capture_output=True)
        lines = "".join(f"job {number}\n" for number in range(300))
        done = subprocess.run(["mosquitto_pub", *common, "-t", "jobs/new", "-l"],
                              input=lines, text=True, timeout=30, capture_output=True)
        assert done.returncode == 0, done.stderr
    finally:
        stop_process(proc)  # SIGTERM: a clean stop, everything committed
    with sqlite3.connect(tmp_path / "mqttsim.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 300
        seq = db.execute("SELECT seq FROM messages WHERE payload=CAST('job 150' AS BLOB)"
                         ).fetchone()[0]
        db.execute(f"UPDATE messages SET {damage} WHERE client_id='keeper' AND seq=?", (seq,))
    proc = start_broker(conf, port, log)
    try:
        got = subprocess.run(["mosquitto_sub", *common, "-c", "-i", "keeper", "-t", "jobs/#",
                              "-C", "299", "-W", "30"],
                             text=True, timeout=45, capture_output=True)
        assert got.stdout.splitlines() == [f"job {n}" for n in range(300) if n != 150], \
            got.stderr + log.read_text()
        # Reconnecting again: nothing left, and no disconnection. Instead of listening a
        # fixed time for nothing, a marker is queued for the offline session first: the
        # broker delivers a session's queue in the order it was filled (for one topic, the
        # order [MQTT-4.6.0-6] asks), so anything left would come before it, and the
        # subscriber must stay connected until it has it.
        subprocess.run(["mosquitto_pub", *common, "-t", "jobs/new", "-m", "marker"],
                       check=True, timeout=15, capture_output=True)
        again = subprocess.run(["mosquitto_sub", *common, "-c", "-i", "keeper", "-t", "jobs/#",
                                "-C", "1", "-W", "30"], text=True, timeout=45,
                               capture_output=True)
        assert again.stdout == "marker\n" and again.returncode == 0, again.stderr
    finally:
        stop_process(proc)
    text = log.read_text()
    skipped = [line for line in text.splitlines() if "skipped" in line]
    field, value = damage.split("=")
    assert len(skipped) == 1 and f"the messages row client_id='keeper', seq={seq}: " \
        f"{field} = {value}: expected an integer" in skipped[0], text
    assert "Traceback" not in text


@pytest.mark.parametrize("damage", ["columns", "garbage"])
def test_a_real_broker_refuses_an_unreadable_store_in_one_line(tmp_path: Path,
                                                                damage: str) -> None:
    port = free_port()
    conf = broker_config(tmp_path, port)
    db_path = tmp_path / "mqttsim.db"
    if damage == "garbage":
        db_path.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 64)
    else:
        SqliteStore(db_path).close()
        with sqlite3.connect(db_path) as db:
            db.execute("ALTER TABLE retained ADD COLUMN note TEXT")
    done = subprocess.run([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf)],
                          capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert "persistence: cannot open" in lines[0] and str(db_path) in lines[0]
    if damage == "columns":
        assert "table retained has the columns (topic, payload, qos, properties, expires_at, " \
               "note)" in lines[0]
