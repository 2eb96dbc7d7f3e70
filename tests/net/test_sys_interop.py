"""``$SYS/broker/...`` on the real broker, read with Debian's ``mosquitto_sub`` as a class
would, and compared with what Debian's mosquitto 2.0.11 itself publishes.

Both brokers run with ``sys_interval 1``; ``mosquitto_sub -t '$SYS/#' -v --retained-only``
prints the retained tree and exits at the first live message. Rather than wait for the next
update (up to a second), it also subscribes to an end topic that a paho client publishes to
until it exits: the retained messages of a subscription are sent while the broker handles the
SUBSCRIBE, so they all come before the first end message. Our names must be mosquitto's (a
subset of its tree: mosquitto also has
``heap/current|maximum``, from its memory tracking, and ``publish/bytes/...``) and must
include the issue's list.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.classroom_acl import ACL, PASSWORDS, classroom_files
from support.mosquitto import (free_port, mosquitto_broker, require_mosquitto, stop_process,
                               wait_listening)

mqtt = pytest.importorskip("paho.mqtt.client")

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {f"$SYS/broker/{name}" for name in (
    "clients/connected", "clients/total", "clients/disconnected", "clients/maximum",
    "messages/received", "messages/sent", "messages/stored", "publish/messages/dropped",
    "publish/messages/received", "publish/messages/sent", "bytes/received", "bytes/sent",
    "load/messages/received/1min", "load/messages/received/5min",
    "load/messages/received/15min", "load/bytes/received/1min", "load/bytes/received/5min",
    "load/bytes/received/15min", "store/messages/count", "store/messages/bytes", "uptime",
    "version", "subscriptions/count", "retained messages/count")}


def mqttsim_broker(workdir: Path, extra: str = ""):
    """``mqttsim broker -c`` on a free port, as a separate process; (process, port)."""
    port = free_port()
    conf = workdir / "mqttsim.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nsys_interval 1\n{extra}")
    proc = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=ROOT)
    if not wait_listening(port, 10, alive=lambda: proc.poll() is None):
        stop_process(proc)
        raise AssertionError(f"mqttsim broker did not start: {proc.stderr.read()!r}")
    return proc, port


END = "sys-test/end"  # not under $SYS: clients may publish it


class Ender:
    """A paho client on one broker: it waits until the broker has published
    ``clients/maximum`` (neither broker does before a client came: this client is one), then
    ends readers by publishing to ``END``."""

    def __init__(self, port: int, *credentials: str):
        self.maximum = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if credentials:
            self.client.username_pw_set(*credentials)
        self.client.on_connect = lambda client, *args: client.subscribe(
            "$SYS/broker/clients/maximum")
        self.client.on_message = lambda *args: self.maximum.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def wait_maximum(self) -> None:
        assert self.maximum.wait(10), "no $SYS/broker/clients/maximum"

    def end(self, reader: subprocess.Popen) -> None:
        """Publish to ``END`` until ``reader`` exits (from before its SUBSCRIBE on: the
        broker drops those; the first after it ends it)."""
        deadline = time.monotonic() + 10
        while reader.poll() is None and time.monotonic() < deadline:
            self.client.publish(END, b"end")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def read_sys(port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "$SYS/#", "-t", END,
                             "-v", "--retained-only", "-W", "5", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def parse_tree(proc: subprocess.Popen, ender: Ender) -> dict[str, str]:
    """The retained $SYS tree as mosquitto_sub -v prints it: topic -> payload."""
    try:
        ender.end(proc)
        out, _ = proc.communicate(timeout=15)
    finally:
        stop_process(proc)
    tree = {}
    spaced = "$SYS/broker/retained messages/count "  # the one topic name with a space
    for line in out.decode().splitlines():
        if line.startswith(spaced):
            tree[spaced.strip()] = line[len(spaced):]
        else:
            topic, _, payload = line.partition(" ")
            tree[topic] = payload
    return tree


def test_mosquitto_sub_reads_our_sys_tree_with_mosquittos_names(tmp_path):
    require_mosquitto("mosquitto_sub")
    broker, port = mqttsim_broker(tmp_path)
    try:
        with mosquitto_broker(tmp_path / "mosquitto", "sys_interval 1\n") as theirs:
            enders = [Ender(port), Ender(theirs.port)]
            try:
                for ender in enders:
                    ender.wait_maximum()
                readers = [read_sys(port), read_sys(theirs.port)]
                ours_tree, their_tree = map(parse_tree, readers, enders)
            finally:
                for ender in enders:
                    ender.close()
    finally:
        stop_process(broker)
    assert REQUIRED <= set(their_tree), REQUIRED - set(their_tree)  # the list is mosquitto's
    assert REQUIRED <= set(ours_tree), REQUIRED - set(ours_tree)
    assert set(ours_tree) <= set(their_tree), set(ours_tree) - set(their_tree)
    # left out on purpose: heap/* (mosquitto's memory tracking) and publish/bytes/* (two
    # more additions per message on our hot path; mqttsim/protocol/broker_sys.py)
    assert set(their_tree) - set(ours_tree) <= {
        "$SYS/broker/heap/current", "$SYS/broker/heap/maximum",
        "$SYS/broker/publish/bytes/received", "$SYS/broker/publish/bytes/sent"}
    assert ours_tree["$SYS/broker/version"].startswith("mqttsim version ")
    assert their_tree["$SYS/broker/version"].startswith("mosquitto version ")
    for tree in (ours_tree, their_tree):  # the same shapes of value
        assert tree["$SYS/broker/uptime"].endswith(" seconds")
        assert tree["$SYS/broker/clients/connected"].isdigit()
        whole, _, decimals = tree["$SYS/broker/load/bytes/received/1min"].partition(".")
        assert whole.isdigit() and len(decimals) == 2


def test_a_user_without_read_on_sys_gets_nothing(tmp_path):
    require_mosquitto("mosquitto_sub")
    # admin's "readwrite #" does not reach $SYS (a "#" never does): give it read on $SYS/#
    files = classroom_files(tmp_path, ACL.replace("user admin\n",
                                                  "user admin\ntopic read $SYS/#\n"))
    proc, port = mqttsim_broker(tmp_path, files)
    try:
        ender = Ender(port, "admin", PASSWORDS["admin"])
        try:
            admin = parse_tree(read_sys(port, "-u", "admin", "-P", PASSWORDS["admin"]), ender)
        finally:
            ender.close()
        alice = subprocess.run(["mosquitto_sub", "-p", str(port), "-t", "$SYS/#", "-v",
                                "-u", "alice", "-P", PASSWORDS["alice"], "-W", "3"],
                               capture_output=True, timeout=15)
    finally:
        stop_process(proc)
    assert REQUIRED - {"$SYS/broker/clients/maximum"} <= set(admin)  # admin came first
    assert alice.stdout == b""  # neither retained nor live (updates every second)
    assert b"All subscription requests were denied" in alice.stderr  # SUBACK 0x80
