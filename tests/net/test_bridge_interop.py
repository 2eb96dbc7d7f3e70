"""Bridges between ``mqttsim broker`` and Debian's ``mosquitto``, both ways (issue 18).

Our broker bridging to Mosquitto, and Mosquitto bridging to our broker: messages cross in
both directions with remapped prefixes, a ``both`` topic crosses once and never comes back
(try_private, which Mosquitto sends and reads as the 0x80 bit of the protocol level), and the
bridge reconnects after the remote broker restarts (``restart_timeout``). The clients are
paho-mqtt, a third party. Every server binds 127.0.0.1 on a free port and every process is
stopped when the test ends, passed or failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

paho = pytest.importorskip("paho.mqtt.client")

from support.mosquitto import (free_port, require_mosquitto, stop_process,  # noqa: E402
                              wait_listening)

WAIT = 5.0  # seconds any one expected thing may take; the tests take about 1-3 s each
MARKER = b"marker"


class Watcher:
    """A paho subscriber collecting (topic, payload) pairs."""

    def __init__(self, port: int, *filters: str):
        self.got: list[tuple[str, bytes]] = []
        self.changed = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        subscribed = threading.Event()
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(WAIT), "no SUBACK"

    def _message(self, client, userdata, message) -> None:
        with self.changed:
            self.got.append((message.topic, message.payload))
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        """Wait until ``count`` messages came, not counting late probes (see below)."""
        with self.changed:
            self.changed.wait_for(lambda: len(without_probes(self.got)) >= count, WAIT)
        return list(self.got)

    def before_marker(self, topic: str) -> list[tuple[str, bytes]]:
        """Wait for the marker on ``topic``; what came before it, markers left out."""
        with self.changed:
            assert self.changed.wait_for(lambda: (topic, MARKER) in self.got, WAIT), \
                f"no marker on {topic}; got {self.got}"
            before = self.got[:self.got.index((topic, MARKER))]
        return [message for message in before if message[1] != MARKER]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def without_probes(messages: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [message for message in messages if not message[0].endswith("/probe")]


def publish(port: int, topic: str, payload: str) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(WAIT)
    client.disconnect()
    client.loop_stop()


def start(stack: ExitStack, argv: list[str], port: int, log: Path) -> subprocess.Popen:
    """Start ``argv`` (stopped when ``stack`` closes) and wait until it listens on ``port``."""
    out = stack.enter_context(open(log, "ab"))
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    stack.callback(stop_process, proc)
    assert wait_listening(port, WAIT, alive=lambda: proc.poll() is None), log.read_text()
    return proc


def mosquitto(stack: ExitStack, workdir: Path, port: int, extra: str = "",
              tag: str = "m") -> tuple[subprocess.Popen, Path]:
    binary = require_mosquitto()
    log = workdir / f"mosquitto-{tag}.log"
    conf = workdir / f"mosquitto-{tag}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"log_dest file {log}\nlog_type all\n"
                    + ("user root\n" if os.geteuid() == 0 else "") + extra)
    proc = start(stack, [binary, "-c", str(conf)], port, workdir / f"mosquitto-{tag}.out")
    return proc, log


def ours(stack: ExitStack, workdir: Path, port: int, extra: str = "",
         verbose: bool = False) -> Path:
    log = workdir / "mqttsim.log"
    conf = workdir / "mqttsim.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{extra}")
    start(stack, [sys.executable, "-m", "mqttsim", "broker", "-c", str(conf),
                  *(["-v"] if verbose else [])], port, log)
    return log


def wait_for_line(path: Path, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}:\n"
                         f"{path.read_text(errors='replace') if path.exists() else ''}")


def bridge_lines(name: str, port: int) -> str:
    return (f"connection {name}\naddress 127.0.0.1:{port}\n"
            'topic sensors/# out 1 "" site1/\n'
            'topic commands/# in 1 "" site1/\n'
            "topic chat/# both 1\n"
            "restart_timeout 1\n")


def exchange(cloud_port: int, edge_port: int, stack: ExitStack) -> None:
    """Messages both ways, remapped; each ``both`` message once on each side (no echo).

    An echo of ``chat/a`` would come back to the edge over the bridge connection, queued by
    the cloud when it received ``chat/a``. A marker published on the cloud afterwards, on the
    same topic, is queued behind it on that connection and republished by the edge in the
    same order ([MQTT-4.6.0-6]: one publisher, the bridge, one topic): so the edge sees any
    echo before the marker. The same the other way for ``chat/b``.
    """
    at_cloud = Watcher(cloud_port, "site1/#", "chat/#")
    stack.callback(at_cloud.close)
    at_edge = Watcher(edge_port, "commands/#", "chat/#")
    stack.callback(at_edge.close)
    publish(edge_port, "sensors/t1", "21.5")  # out, remapped
    publish(cloud_port, "site1/commands/reset", "now")  # in, remapped
    publish(edge_port, "chat/a", "from edge")  # both
    publish(cloud_port, "chat/b", "from cloud")
    at_cloud.wait_for(4)
    at_edge.wait_for(3)
    publish(cloud_port, "chat/a", MARKER.decode())
    publish(edge_port, "chat/b", MARKER.decode())
    assert sorted(without_probes(at_cloud.before_marker("chat/b"))) == [
        ("chat/a", b"from edge"), ("chat/b", b"from cloud"),
        ("site1/commands/reset", b"now"), ("site1/sensors/t1", b"21.5")]
    assert sorted(without_probes(at_edge.before_marker("chat/a"))) == [
        ("chat/a", b"from edge"), ("chat/b", b"from cloud"), ("commands/reset", b"now")]


def test_our_broker_bridges_to_mosquitto_and_reconnects_after_it_restarts(tmp_path):
    require_mosquitto()
    cloud_port, edge_port = free_port(), free_port()
    with ExitStack() as stack:
        cloud, cloud_log = mosquitto(stack, tmp_path, cloud_port, tag="cloud1")
        edge_log = ours(stack, tmp_path, edge_port, bridge_lines("cloud", cloud_port))
        wait_for_line(cloud_log, "New bridge connected")  # Mosquitto saw the 0x84 bit
        exchange(cloud_port, edge_port, stack)
        # The remote broker restarts: the bridge connects again (restart_timeout 1) and
        # carries on, with the subscriptions it makes again.
        stop_process(cloud)
        _, cloud_log = mosquitto(stack, tmp_path, cloud_port, tag="cloud2")
        wait_for_line(cloud_log, "New bridge connected")
        at_cloud = Watcher(cloud_port, "site1/#")
        stack.callback(at_cloud.close)
        publish(edge_port, "sensors/t2", "after restart")
        at_cloud.wait_for(1)
        publish(edge_port, "sensors/t2", MARKER.decode())  # behind it on the bridge, as above
        assert at_cloud.before_marker("site1/sensors/t2") == [
            ("site1/sensors/t2", b"after restart")]
        assert "Bridge cloud: connection to" in edge_log.read_text()


def test_mosquitto_bridges_to_our_broker_both_ways_without_echo(tmp_path):
    require_mosquitto()
    cloud_port, edge_port = free_port(), free_port()
    with ExitStack() as stack:
        cloud_log = ours(stack, tmp_path, cloud_port, verbose=True)
        mosquitto(stack, tmp_path, edge_port, bridge_lines("tocloud", cloud_port), tag="edge")
        # Mosquitto's bridge sets try_private's bit: logged as mosquitto logs ours (above).
        wait_for_line(cloud_log, "New bridge connected from 127.0.0.1:")
        # The bridge is up once a probe crosses (published again until one does).
        probe = Watcher(edge_port, "commands/probe")
        stack.callback(probe.close)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not probe.got:
            publish(cloud_port, "site1/commands/probe", "?")
            time.sleep(0.1)
        assert probe.got, cloud_log.read_text()
        exchange(cloud_port, edge_port, stack)
