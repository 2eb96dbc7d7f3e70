"""Real clients against ``mqttsim broker``: Debian's mosquitto_pub/mosquitto_sub and PyPI's
paho-mqtt, for MQTT 3.1, 3.1.1 and 5.0, QoS 0/1/2, retained messages, wills (the client is
killed with SIGKILL), persistent sessions with offline queueing, and wildcards.

Another implementation's clients are the evidence that the broker speaks MQTT, not just our
own reading of the spec. The broker runs in a background thread (``ServerThread``) so a test
can wait until the broker *has* the subscription instead of sleeping; the seed walk-through
runs the broker as its own process, verbatim as the tutorial does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mqttsim.net.server import ServerThread
from mqttsim.protocol.broker_state import BrokerConfig
from support.mosquitto import free_port, require_mosquitto, stop_process, wait_listening

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
VERSIONS = ["mqttv31", "mqttv311", "mqttv5"]


@pytest.fixture(scope="module")
def broker():
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    thread = ServerThread(BrokerConfig(emit_packet_events=False))
    thread.start()
    yield thread
    thread.stop()


def wait_until(condition, timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def subscribed(broker: ServerThread, client_id: str, topic_filter: str) -> bool:
    """Whether the broker has ``client_id`` subscribed to ``topic_filter`` right now."""
    def look() -> bool:
        session = broker.server.engine.sessions.get(client_id)
        return (session is not None and session.conn is not None
                and topic_filter in session.subscriptions)
    return broker.call(look)


def connected(broker: ServerThread, client_id: str) -> bool:
    def look() -> bool:
        session = broker.server.engine.sessions.get(client_id)
        return session is not None and session.conn is not None
    return broker.call(look)


def sub_process(broker: ServerThread, *args: str) -> subprocess.Popen:
    _, port = broker.address
    return subprocess.Popen(["mosquitto_sub", "-p", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pub(broker: ServerThread, *args: str) -> None:
    _, port = broker.address
    done = subprocess.run(["mosquitto_pub", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr


def finish(proc: subprocess.Popen) -> str:
    """Wait for a subscriber that was told how many messages to expect; its stdout."""
    try:
        out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"mosquitto_sub did not finish; got {out!r} {err!r}")
    assert proc.returncode == 0, err
    return out


# -- the seed walk-through, verbatim, as processes --------------------------------------------

class BrokerProcess:
    """``python -m mqttsim broker -p PORT -v`` with its stderr collected line by line."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", *args],
                                     cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, fragment: str) -> None:
        wait_until(lambda: fragment in self.text(), what=f"{fragment!r} in the broker log")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            stop_process(self.proc)
        self._reader.join(timeout=WAIT)
        return code


def walk_through(sub_command: list[str], pub_command: list[str]) -> None:
    port = free_port()
    broker = BrokerProcess("-p", str(port), "-v")
    subscriber = None
    try:
        assert wait_listening(port, WAIT, alive=lambda: broker.proc.poll() is None), broker.text()
        subscriber = subprocess.Popen([*sub_command, "-v", "-t", "sensor", "-p", str(port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        broker.wait_for(" sensor")  # "<client> 0 sensor": the subscription is in place
        done = subprocess.run([*pub_command, "-t", "sensor", "-m", "12", "-p", str(port)],
                              capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        assert subscriber.stdout.readline() == "sensor 12\n"
        broker.wait_for("Sending PUBLISH to")
    finally:
        if subscriber is not None:
            stop_process(subscriber)
        code = broker.stop()
    log = broker.text()
    assert code == 0, log
    assert "New connection from 127.0.0.1:" in log
    assert "New client connected from 127.0.0.1:" in log
    assert "Received SUBSCRIBE from " in log and "\tsensor (QoS 0)" in log
    assert "(d0, q0, r0, m0, 'sensor', ... (2 bytes))" in log
    assert "Received PUBLISH from " in log


def test_seed_walk_through_with_mosquitto_clients() -> None:
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    walk_through(["mosquitto_sub"], ["mosquitto_pub"])


def test_seed_walk_through_with_mqttsim_clients() -> None:
    from mqttsim.cli import COMMANDS

    names = {command.name for command in COMMANDS}
    if not {"pub", "sub"} <= names:
        pytest.skip("mqttsim pub/sub are not in this build yet (another part of issue #4)")
    walk_through([sys.executable, "-m", "mqttsim", "sub"],
                 [sys.executable, "-m", "mqttsim", "pub"])


# -- mosquitto_pub / mosquitto_sub ------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_clients_each_version_and_qos(broker, version: str, qos: int) -> None:
    topic, client = f"q/{version}/{qos}", f"s-{version[-2:]}-{qos}"
    sub = sub_process(broker, "-V", version, "-q", str(qos), "-t", topic, "-i", client,
                      "-C", "2", "-F", "%q %r %t %p")
    wait_until(lambda: subscribed(broker, client, topic), what="SUBSCRIBE")
    pub(broker, "-V", version, "-q", str(qos), "-t", topic, "-m", "first")
    pub(broker, "-V", version, "-q", "2", "-t", topic, "-m", "second")  # granted qos caps it
    assert finish(sub) == f"{qos} 0 {topic} first\n{qos} 0 {topic} second\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_clients_retained(broker, version: str) -> None:
    topic = f"retained/{version}"
    pub(broker, "-V", version, "-q", "1", "-r", "-t", topic, "-m", "kept")
    sub = sub_process(broker, "-V", version, "-q", "1", "-t", topic, "-C", "1",
                      "-F", "%r %t %p")
    assert finish(sub) == f"1 {topic} kept\n"
    pub(broker, "-V", version, "-r", "-n", "-t", topic)  # an empty retained message clears it
    # A retained message would be sent with the SUBACK, so before a live one published once
    # the subscription is in place: the first message must be that live one.
    client_id = f"cleared-{version}"
    sub = sub_process(broker, "-V", version, "-t", topic, "-i", client_id, "-C", "1",
                      "-F", "%r %t %p")
    wait_until(lambda: sub.poll() is not None or subscribed(broker, client_id, topic),
               what="the subscriber")  # (it exits at once if it got a retained message)
    pub(broker, "-V", version, "-t", topic, "-m", "live")
    assert finish(sub) == f"0 {topic} live\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_clients_will_after_kill_9(broker, version: str) -> None:
    will_topic, watcher_id, dying_id = f"will/{version}", f"watch-{version}", f"dying-{version}"
    watcher = sub_process(broker, "-V", version, "-t", will_topic, "-i", watcher_id, "-C", "1",
                          "-q", "1", "-v")
    wait_until(lambda: subscribed(broker, watcher_id, will_topic), what="watcher")
    dying = sub_process(broker, "-V", version, "-t", "nothing", "-i", dying_id,
                        "--will-topic", will_topic, "--will-payload", "gone", "--will-qos", "1")
    wait_until(lambda: connected(broker, dying_id), what="the dying client")
    dying.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
    dying.wait(timeout=WAIT)
    assert finish(watcher) == f"{will_topic} gone\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_clients_persistent_session_queues_while_offline(broker, version: str) -> None:
    topic, client = f"offline/{version}", f"persist-{version}"
    session = ["-V", version, "-c", "-i", client, "-q", "1", "-t", topic]
    if version == "mqttv5":
        session += ["-x", "300"]
    first = sub_process(broker, *session, "-E")  # subscribe, then leave
    assert finish(first) == ""
    wait_until(lambda: not connected(broker, client), what="the subscriber to leave")
    for payload in ("a", "b", "c"):
        pub(broker, "-V", version, "-q", "1", "-t", topic, "-m", payload)
    again = sub_process(broker, *session, "-C", "3", "-F", "%q %p")
    assert finish(again) == "1 a\n1 b\n1 c\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_clients_wildcards(broker, version: str) -> None:
    root, client = f"wc{version[-2:]}", f"wild-{version}"
    sub = sub_process(broker, "-V", version, "-i", client, "-t", f"{root}/+/temp",
                      "-t", f"{root}/b/#", "-C", "4", "-v")
    wait_until(lambda: subscribed(broker, client, f"{root}/b/#"), what="SUBSCRIBE")
    for topic in ("a/temp", "a/humidity", "b/x/y", "b/temp", "b/end"):
        pub(broker, "-V", version, "-t", f"{root}/{topic}", "-m", topic)
    # b/temp matches both filters: one copy [MQTT-3.3.5-1]; a/humidity matches neither.
    assert finish(sub).splitlines() == [f"{root}/a/temp a/temp", f"{root}/b/x/y b/x/y",
                                        f"{root}/b/temp b/temp", f"{root}/b/end b/end"]


# -- paho-mqtt --------------------------------------------------------------------------------

paho = pytest.importorskip("paho.mqtt.client")
PAHO_VERSIONS = {"mqttv31": paho.MQTTv31, "mqttv311": paho.MQTTv311, "mqttv5": paho.MQTTv5}


class PahoClient:
    """A paho client on its own network thread, collecting messages."""

    def __init__(self, broker: ServerThread, client_id: str, version: str, clean: bool = True,
                 will: tuple[str, bytes, int] | None = None, network_thread: bool = True):
        protocol = PAHO_VERSIONS[version]
        kwargs = {}
        if protocol != paho.MQTTv5:
            kwargs["clean_session"] = clean
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, **kwargs)
        self.messages: list = []
        self.ready = threading.Event()
        self.acked = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, m.payload, m.qos))
        self.client.on_subscribe = lambda *args: self.acked.set()
        self.refused = None
        self.client.on_connect = self._on_connect
        if will is not None:
            self.client.will_set(*will)
        host, port = broker.address
        connect_kwargs = {}
        if protocol == paho.MQTTv5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if clean else 300
            connect_kwargs = {"clean_start": clean, "properties": props}
        self.client.connect(host, port, keepalive=30, **connect_kwargs)
        if network_thread:
            self.client.loop_start()
        else:  # driven here until connected, then never again: it cannot send anything
            deadline = time.monotonic() + WAIT
            while not self.ready.is_set() and time.monotonic() < deadline:
                self.client.loop(timeout=0.05)
        assert self.ready.wait(WAIT), "paho did not connect"
        assert self.refused is None, f"CONNACK refused: {self.refused}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code != 0:
            self.refused = reason_code
        self.ready.set()

    def subscribe(self, topic: str, qos: int) -> None:
        self.acked.clear()
        self.client.subscribe(topic, qos)
        assert self.acked.wait(WAIT), "no SUBACK"

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def wait_messages(self, count: int) -> list:
        wait_until(lambda: len(self.messages) >= count, what=f"{count} messages")
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_each_qos_and_retained(broker, version: str) -> None:
    sub = PahoClient(broker, f"paho-sub-{version}", version)
    pub_client = PahoClient(broker, f"paho-pub-{version}", version)
    try:
        root = f"paho/{version}"
        sub.subscribe(f"{root}/#", 2)
        for qos in (0, 1, 2):
            pub_client.publish(f"{root}/{qos}", f"m{qos}".encode(), qos)
        assert sorted(sub.wait_messages(3)) == [(f"{root}/{q}", f"m{q}".encode(), q)
                                                 for q in (0, 1, 2)]
        pub_client.publish(f"retained/paho/{version}", b"kept", 1, retain=True)
        late = PahoClient(broker, f"paho-late-{version}", version)
        try:
            late.subscribe(f"retained/paho/{version}", 1)
            assert late.wait_messages(1) == [(f"retained/paho/{version}", b"kept", 1)]
        finally:
            late.close()
    finally:
        sub.close()
        pub_client.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_persistent_session_gets_qos2_messages_sent_while_offline(broker,
                                                                       version: str) -> None:
    client_id, topic = f"paho-persist-{version}", f"paho/offline/{version}"
    sub = PahoClient(broker, client_id, version, clean=False)
    sub.subscribe(topic, 2)
    sub.close()
    wait_until(lambda: not connected(broker, client_id), what="the subscriber to leave")
    publisher = PahoClient(broker, f"paho-opub-{version}", version)
    try:
        for n in range(5):
            publisher.publish(topic, b"%d" % n, 2)
    finally:
        publisher.close()
    again = PahoClient(broker, client_id, version, clean=False)
    try:
        again.wait_messages(5)
        # A duplicate would be resent with the session, before the broker reads this marker
        # (sent back to this subscriber; [MQTT-4.6.0-6] orders one topic).
        again.publish(topic, b"marker", 2)
        got = again.wait_messages(6)
        assert got == [(topic, b"%d" % n, 2) for n in range(5)] + [(topic, b"marker", 2)]
    finally:
        again.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_will_is_published_when_its_connection_drops(broker, version: str) -> None:
    topic = f"paho/will/{version}"
    watcher = PahoClient(broker, f"paho-watch-{version}", version)
    try:
        watcher.subscribe("paho/will/+", 1)  # a wildcard subscription receives the will
        # No paho thread (stopping one takes up to a second): nothing can send DISCONNECT.
        dying = PahoClient(broker, f"paho-dying-{version}", version, will=(topic, b"gone", 1),
                           network_thread=False)
        dying.client.socket().close()  # the connection just drops, as in a crash
        assert watcher.wait_messages(1) == [(topic, b"gone", 1)]
    finally:
        watcher.close()


# -- TLS listener from a mosquitto.conf -------------------------------------------------------

def test_mosquitto_clients_over_a_tls_listener_from_the_config_file(tmp_path: Path) -> None:
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    if subprocess.run(["which", "openssl"], capture_output=True).returncode:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(f"listener {port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
                    "allow_anonymous true\n")
    broker = BrokerProcess("-c", str(conf), "-v")
    try:
        assert wait_listening(port, WAIT, alive=lambda: broker.proc.poll() is None), broker.text()
        tls = ["-h", "127.0.0.1", "-p", str(port), "--cafile", str(cert)]
        sub = subprocess.Popen(["mosquitto_sub", *tls, "-t", "secure", "-C", "1", "-v",
                                "-i", "tls-sub"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        broker.wait_for("tls-sub 0 secure")  # the subscription is in place
        done = subprocess.run(["mosquitto_pub", *tls, "-t", "secure", "-m", "sealed", "-q", "1"],
                              capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        assert finish(sub) == "secure sealed\n"
        # A client that does not speak TLS gets nowhere, and the broker keeps serving.
        plain = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
                                "-t", "secure", "-m", "x"], capture_output=True, timeout=WAIT)
        assert plain.returncode != 0
        again = subprocess.run(["mosquitto_pub", *tls, "-t", "secure", "-m", "y"],
                               capture_output=True, text=True, timeout=WAIT)
        assert again.returncode == 0, again.stderr
    finally:
        assert broker.stop() == 0, broker.text()
