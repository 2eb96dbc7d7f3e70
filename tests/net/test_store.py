"""SQLite persistence: what one broker engine commits, a new engine restores exactly."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.net.store import SqliteStore, StoreError
from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Puback, Pubcomp, Publish,
                                      Pubrec, Pubrel, Suback, Subscribe, Subscription)
from mqttsim.protocol.properties import Properties
from support.mosquitto import free_port, require_mosquitto, stop_process, wait_listening

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """The engine's clock, shared with the store (as the server shares loop.time)."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Client:
    """One raw connection to an engine: send exact packets, read exact replies."""

    def __init__(self, broker: BrokerEngine, conn: str, version: int = 4):
        self.broker, self.conn, self.version = broker, conn, version
        self.decoder = Decoder(version)
        broker.connection_made(conn, 0)

    def send(self, packet, now: float = 0.0, commit: bool = True) -> list:
        """Deliver ``packet``; then, as the server does each turn, commit before replying."""
        self.broker.receive(self.conn, encode(packet, self.version), now)
        if commit and self.broker.store is not None:
            self.broker.store.commit()
        return self.read()

    def read(self) -> list:
        return self.decoder.feed(self.broker.take_output(self.conn)[0])

    def drop(self, now: float = 0.0) -> None:
        self.broker.connection_lost(self.conn, now)


def connect(broker: BrokerEngine, conn: str, client_id: str, clean: bool = False,
            version: int = 4, properties: Properties = Properties()) -> tuple[Client, list]:
    client = Client(broker, conn, version)
    return client, client.send(Connect(client_id, clean, 60, properties=properties))


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def restart(path: Path, clock: Clock) -> tuple[BrokerEngine, SqliteStore]:
    """A new engine and store on the same file, as after ``kill -9`` and a restart."""
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    broker.restore(*store.load())
    return broker, store


def test_offline_queue_inflight_and_qos2_state_survive_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "broker.db", Clock()
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    sub, _ = connect(broker, "s1", "sub")
    assert sub.send(Subscribe(1, (Subscription("t/#", 2),))) == [Suback(1, (2,))]
    pub, _ = connect(broker, "p1", "pub")
    pub.send(Publish("t/1", b"m1", 2, packet_id=1))
    pub.send(Pubrel(1))
    pub.send(Publish("t/2", b"m2", 2, packet_id=2))
    pub.send(Pubrel(2))
    pub.send(Publish("t/3", b"m3", 1, packet_id=3))
    got = sub.read()
    assert [(p.payload, p.qos, p.dup) for p in got] == [(b"m1", 2, False), (b"m2", 2, False),
                                                         (b"m3", 1, False)]
    ids = [p.packet_id for p in got]
    assert sub.send(Pubrec(ids[0])) == [Pubrel(ids[0])]  # m1 released, PUBCOMP never comes
    sub.drop()
    # Offline: m4 (QoS 1) and m5 (QoS 2) wait in the queue. The publisher's QoS 2 message
    # m5 gets PUBREC but its PUBREL never arrives: the broker must remember packet id 5.
    assert pub.send(Publish("t/4", b"m4", 1, packet_id=4)) == [Puback(4)]
    assert pub.send(Publish("t/5", b"m5", 2, packet_id=5)) == [Pubrec(5)]
    pub.send(Publish("r", b"kept", 1, retain=True, packet_id=6))
    pub.drop()
    store.commit()
    # Not committed (the server would not have sent its PUBACK yet): it must not come back.
    pub2, _ = connect(broker, "p2", "late", clean=True)
    pub2.send(Publish("t/6", b"uncommitted", 1, packet_id=1), commit=False)
    assert len(broker.sessions["sub"].flow.queue) == 3

    broker, store = restart(path, clock)
    sub, (connack, *resent) = connect(broker, "s2", "sub")
    assert connack == Connack(session_present=True)
    # In the original order: PUBREL for the released m1, m2 and m3 again with DUP and their
    # packet ids [MQTT-4.4.0-1], then the queued m4 and m5 for the first time.
    assert resent[0] == Pubrel(ids[0])
    assert [(p.payload, p.packet_id, p.dup) for p in resent[1:3]] == [(b"m2", ids[1], True),
                                                                       (b"m3", ids[2], True)]
    assert [(p.payload, p.qos, p.dup) for p in resent[3:]] == [(b"m4", 1, False),
                                                               (b"m5", 2, False)]
    # The publisher resends m5 with DUP, as a client that lost the PUBREC would.
    pub, connack = connect(broker, "p3", "pub")
    assert connack == [Connack(session_present=True)]
    assert pub.send(Publish("t/5", b"m5", 2, dup=True, packet_id=5)) == [Pubrec(5)]
    assert pub.send(Pubrel(5)) == [Pubcomp(5)]
    assert sub.read() == []  # m5 is not routed a second time [MQTT-4.3.3-2]
    # The subscriber finishes every flow; nothing is left to deliver or store.
    m4, m5 = resent[3:]
    for reply, expect in ((Pubcomp(ids[0]), []), (Pubrec(ids[1]), [Pubrel(ids[1])]),
                          (Pubcomp(ids[1]), []), (Puback(ids[2]), []),
                          (Puback(m4.packet_id), []), (Pubrec(m5.packet_id), [Pubrel(m5.packet_id)]),
                          (Pubcomp(m5.packet_id), [])):
        assert sub.send(reply) == expect
    store.commit()
    assert rows(path, "messages") == 0
    assert rows(path, "sessions") == 2  # both persistent sessions stay
    # The retained message came back too.
    late, _ = connect(broker, "n1", "newcomer", clean=True)
    [retained] = late.send(Subscribe(1, (Subscription("r", 1),)))[1:]
    assert (retained.topic, retained.payload, retained.retain) == ("r", b"kept", True)


def test_mqtt5_subscription_options_and_properties_survive(tmp_path: Path) -> None:
    path, clock = tmp_path / "broker.db", Clock()
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    sub, _ = connect(broker, "s1", "v5", version=5,
                     properties=Properties(session_expiry_interval=3600))
    sub.send(Subscribe(1, (Subscription("a/+", 1, no_local=True, retain_as_published=True,
                                        retain_handling=2),),
                       Properties(subscription_identifiers=(7,))))
    sub.drop()
    pub, _ = connect(broker, "p1", "pub5", clean=True, version=5)
    pub.send(Publish("a/b", b"x", 1, packet_id=1,
                     properties=Properties(content_type="text/plain",
                                           user_properties=(("k", "v"),))))
    store.commit()
    before = broker.sessions["v5"].subscriptions

    broker, store = restart(path, clock)
    assert broker.sessions["v5"].subscriptions == before
    assert broker.sessions["v5"].version == 5 and broker.sessions["v5"].expiry == 3600
    sub, (connack, message) = connect(broker, "s2", "v5", version=5,
                                      properties=Properties(session_expiry_interval=3600))
    assert connack.session_present
    assert message.properties.subscription_identifiers == (7,)
    assert message.properties.content_type == "text/plain"
    assert message.properties.user_properties == (("k", "v"),)
    # The restored subscription still routes, with its options (no_local).
    sub.send(Puback(message.packet_id))
    # 0x10 "no matching subscribers": no_local keeps the message from its own publisher.
    assert sub.send(Publish("a/c", b"own", 1, packet_id=9)) == [Puback(9, 0x10)]
    other, _ = connect(broker, "p2", "other5", clean=True, version=5)
    assert other.send(Publish("a/d", b"other", 0)) == []
    assert [p.payload for p in sub.read()] == [b"other"]


def test_session_expiry_continues_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    clock = Clock(100.0)
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    for name, expiry in (("short", 10), ("long", 3600)):
        client, _ = connect(broker, name, name, version=5,
                            properties=Properties(session_expiry_interval=expiry))
        client.send(Subscribe(1, (Subscription("x", 1),)))
        client.drop(now=100.0)
    store.commit()
    # The new process has another monotonic clock: 5.0 now, so "short" ends near 15.0.
    broker, store = restart(path, Clock(5.0))
    assert broker.sessions["short"].expires_at == pytest.approx(15.0, abs=1.0)
    broker.on_timer(16.5)
    assert set(broker.sessions) == {"long"}
    store.commit()
    assert rows(path, "sessions") == 1


def test_sessions_that_expired_while_down_are_not_restored(tmp_path: Path) -> None:
    path, clock = tmp_path / "broker.db", Clock(0.0)
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    client, _ = connect(broker, "c", "brief", version=5,
                        properties=Properties(session_expiry_interval=1))
    client.drop(now=0.0)
    store.commit()
    with sqlite3.connect(path) as db:  # as if the broker had been down for five seconds
        db.execute("UPDATE sessions SET expires_at = expires_at - 5")
    broker, store = restart(path, clock)
    assert broker.sessions == {}
    assert rows(path, "sessions") == 0


def test_clean_session_removes_stored_state(tmp_path: Path) -> None:
    path, clock = tmp_path / "broker.db", Clock()
    store = SqliteStore(path, clock=clock)
    broker = BrokerEngine(BrokerConfig(), store=store)
    sub, _ = connect(broker, "s1", "sub")
    sub.send(Subscribe(1, (Subscription("t", 1),)))
    sub.drop()
    pub, _ = connect(broker, "p", "pub", clean=True)
    for number in range(1, 4):
        pub.send(Publish("t", b"%d" % number, 1, packet_id=number))
    store.commit()
    assert rows(path, "messages") == 3
    sub, _ = connect(broker, "s2", "sub", clean=True)  # [MQTT-3.1.2-6]: discard the session
    sub.send(Disconnect())
    store.commit()
    assert rows(path, "messages") == 0 and rows(path, "sessions") == 0
    broker, store = restart(path, clock)
    assert broker.sessions == {}


def test_commit_writes_only_when_something_changed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "broker.db")
    store.commit()
    assert store.commits == 0
    broker = BrokerEngine(BrokerConfig(), store=store)
    connect(broker, "s1", "sub")
    store.commit()
    store.commit()
    assert store.commits == 1
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(path)


# -- real processes: kill -9 loses no acknowledged message -----------------------------------

def start_broker(conf: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=ROOT)
    if not wait_listening(port, 15.0, alive=lambda: proc.poll() is None):
        stop_process(proc)
        raise AssertionError(f"mqttsim broker did not start:\n{log.read_text()}")
    return proc


@pytest.mark.timeout(90)
def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    port = free_port()
    conf = tmp_path / "mqttsim.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}\n")
    log = tmp_path / "broker.log"
    common = ["-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    proc = start_broker(conf, port, log)
    try:
        # A persistent subscriber registers and goes away; then 20 QoS 1 messages are
        # published, and mosquitto_pub exits 0 only once every PUBACK has arrived.
        subprocess.run(["mosquitto_sub", *common, "-c", "-i", "keeper", "-t", "jobs/#", "-E"],
                       check=True, timeout=15, capture_output=True)
        lines = "".join(f"job {number}\n" for number in range(20))
        done = subprocess.run(["mosquitto_pub", *common, "-t", "jobs/new", "-l"],
                              input=lines, text=True, timeout=15, capture_output=True)
        assert done.returncode == 0, done.stderr
        subprocess.run(["mosquitto_pub", *common, "-t", "config", "-r", "-m", "v2"],
                       check=True, timeout=15, capture_output=True)
    finally:
        proc.kill()  # SIGKILL: no shutdown handler, no final commit
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    proc = start_broker(conf, port, log)
    try:
        got = subprocess.run(["mosquitto_sub", *common, "-c", "-i", "keeper", "-t", "jobs/#",
                              "-C", "20", "-W", "20"],
                             text=True, timeout=30, capture_output=True)
        assert got.stdout.splitlines() == [f"job {number}" for number in range(20)], \
            got.stderr + log.read_text()
        retained = subprocess.run(["mosquitto_sub", *common, "-t", "config", "-C", "1",
                                   "-W", "10"], text=True, timeout=15, capture_output=True)
        assert retained.stdout == "v2\n"
    finally:
        stop_process(proc)
