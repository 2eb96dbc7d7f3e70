"""``mqttsim rr`` beside Debian's ``mosquitto_rr``: the same request/response exchange, the
same output, through Debian's mosquitto and through ``mqttsim broker``; what the request
carries (Response Topic, Correlation Data) as Debian's ``mosquitto_sub`` sees it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqttsim.net.server import ServerThread
from mqttsim.protocol.broker_state import BrokerConfig
from support.mosquitto import mosquitto_broker, require_mosquitto, stop_process

mqtt = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties as PahoProperties  # noqa: E402

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


class Responder:
    """A paho MQTT 5 service: answers each request on req/# to its Response Topic, with its
    Correlation Data copied back (MQTT 5 section 4.10)."""

    def __init__(self, port: int):
        import threading

        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="responder",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("req/#", qos=1)
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.on_message = self._answer
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _answer(self, client, userdata, message) -> None:
        props = PahoProperties(PacketTypes.PUBLISH)
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            props.CorrelationData = correlation
        client.publish(message.properties.ResponseTopic, b"answer to " + message.payload,
                       qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rr(tool: str, port: int, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mqttsim", "rr"] if tool == "mqttsim" else ["mosquitto_rr"]
    return subprocess.run([*command, "-p", str(port), *args], capture_output=True, timeout=15,
                          cwd=ROOT)


@pytest.fixture(params=["mosquitto", "mqttsim"])
def served(request, tmp_path):
    """A broker (Debian's mosquitto or ours) with the responder on it: its port."""
    require_mosquitto("mosquitto_rr", "mosquitto_sub")
    if request.param == "mosquitto":
        with mosquitto_broker(tmp_path / "mosquitto") as broker:
            responder = Responder(broker.port)
            try:
                yield broker.port
            finally:
                responder.close()
        return
    with ServerThread(BrokerConfig(sys_interval=0)) as (_, port):
        responder = Responder(port)
        try:
            yield port
        finally:
            responder.close()


@pytest.mark.parametrize("args", [
    ("-t", "req/a", "-e", "resp/a", "-m", "hello", "-D", "publish", "correlation-data",
     "id-42", "-q", "1", "-F", "%t|%D|%p|%R|%05E|%-3F|"),
    ("-t", "req/b", "-e", "resp/b", "-m", "hi", "-v"),
    ("-t", "req/c", "-e", "resp/c", "-n", "-N", "-q", "2"),
])
def test_rr_prints_what_mosquitto_rr_prints(served, args):
    ours, theirs = rr("mqttsim", served, *args), rr("mosquitto_rr", served, *args)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (
        0, theirs.stdout)
    assert theirs.stdout  # a response was printed


def test_rr_times_out_as_mosquitto_rr_without_a_responder(tmp_path):
    require_mosquitto("mosquitto_rr")
    with ServerThread(BrokerConfig(sys_interval=0)) as (_, port):
        args = ("-p", str(port), "-t", "nobody/listens", "-e", "resp/none", "-m", "x",
                "-W", "1")
        both = [subprocess.Popen([*command, *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=ROOT)  # at once: 1 s, not 2
                for command in ([sys.executable, "-m", "mqttsim", "rr"], ["mosquitto_rr"])]
        results = []
        for proc in both:
            try:
                out, err = proc.communicate(timeout=15)
            finally:
                stop_process(proc)
            results.append((proc.returncode, out, err.strip()))
    assert results[0] == results[1] == (27, b"", b"Timed out")


def test_the_request_carries_response_topic_and_correlation_data(tmp_path):
    """Debian's mosquitto_sub, as the service would, sees the request's properties."""
    require_mosquitto("mosquitto_sub")
    with mosquitto_broker(tmp_path / "mosquitto") as broker:
        watcher = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-V", "5",
                                    "-t", "req/w", "-C", "1", "-F", "%R|%D|%C|%P|%p"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for _ in range(500):  # until mosquitto has confirmed the watcher's subscription
                if "Sending SUBACK" in broker.log():
                    break
                time.sleep(0.01)
            asking = subprocess.Popen(
                [sys.executable, "-m", "mqttsim", "rr", "-p", str(broker.port), "-t", "req/w",
                 "-e", "resp/w", "-m", "ping", "-D", "publish", "correlation-data", "c-1",
                 "-D", "publish", "content-type", "text/plain",
                 "-D", "publish", "user-property", "lesson", "4", "-W", "10"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
            try:
                out, _ = watcher.communicate(timeout=10)
                # Answered by hand once the request is seen (rr subscribed to its response
                # topic before it published), rather than left to time out after 1 s.
                subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-V", "5",
                                "-t", "resp/w", "-m", "pong"], check=True, timeout=10)
                answer, _ = asking.communicate(timeout=10)
            finally:
                stop_process(asking)
        finally:
            stop_process(watcher)
    assert out == b"resp/w|c-1|text/plain|lesson:4|ping\n"
    assert (asking.returncode, answer) == (0, b"pong\n")


@pytest.mark.parametrize("args, message", [
    (("-t", "req/x", "-m", "x"), b"Error: You must specify a topic (-t) and a response topic (-e)."),
    (("-t", "req/x", "-e", "resp/#", "-m", "x"), b"Error: Invalid topic 'resp/#'"),
    (("-t", "req/x", "-e", "r", "-m", "x", "-D", "publish", "response-topic", "r"),
     b"Error: Error in PUBLISH properties: Duplicate response topic."),
])
def test_rr_refuses_bad_options_with_one_line(args, message):
    done = rr("mqttsim", 1, *args)
    assert done.returncode == 1 and done.stderr.startswith(message)
    assert b"Traceback" not in done.stderr
