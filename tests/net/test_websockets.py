"""MQTT over WebSockets (MQTT 3.1.1/5.0 chapter 6) against the broker's ``protocol websockets``
listeners, with peers we did not write: the ``websockets`` package's own client for the frame
level rules, paho-mqtt with ``transport="websockets"`` (QoS 1 both ways), Debian's
mosquitto_pub over TCP into the same broker; plus our Client and ``mqttsim sub -L ws://``.
MQTT.js in a real browser is in tests/notebooks/test_mqttjs_browser.py.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as ws_connect

from mqttsim.net.client import Client
from mqttsim.net.server import Listener, ServerThread
from mqttsim.protocol.encoder import encode
from mqttsim.protocol.packets import Connect, Subscribe, Subscription
from support.mosquitto import free_port, stop_process, wait_listening

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
CONNACK_OK = b"\x20\x02\x00\x00"


@pytest.fixture(scope="module")
def broker():
    """One broker, a WebSocket listener first and a TCP listener second."""
    thread = ServerThread(listeners=[Listener("127.0.0.1", 0, protocol="websockets"),
                                     Listener("127.0.0.1", 0)])
    thread.start()
    yield thread
    thread.stop()


def ws_url(broker: ServerThread) -> str:
    host, port = broker.server.address_of("websockets")
    return f"ws://{host}:{port}/mqtt"


def receive_at_least(ws, count: int) -> bytes:
    """Binary frames until ``count`` bytes came (the broker may batch packets)."""
    data = b""
    while len(data) < count:
        frame = ws.recv(timeout=WAIT)
        assert isinstance(frame, bytes), f"a text frame from the broker: {frame!r}"
        data += frame
    return data


def connect_packet(client_id: str) -> bytes:
    return encode(Connect(client_id, True, 30), 4)


# -- the rules of chapter 6, with the websockets package as the peer --------------------------

def test_v311_MQTT_6_0_0_4_server_selects_the_mqtt_subprotocol(broker) -> None:
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        assert ws.subprotocol == "mqtt"
        ws.send(connect_packet("ws-subprotocol"))
        assert receive_at_least(ws, 4) == CONNACK_OK
    with ws_connect(ws_url(broker), subprotocols=["mqttv3.1"], open_timeout=WAIT) as ws:
        assert ws.subprotocol == "mqttv3.1"  # what MQTT 3.1 clients offer (as Mosquitto)


def test_v311_MQTT_6_0_0_3_a_client_offering_no_mqtt_subprotocol_is_refused(broker) -> None:
    for offered in (None, ["chat"]):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(ws_url(broker), subprotocols=offered, open_timeout=WAIT)
        assert refused.value.response.status_code == 400
    # The listener goes on serving clients that do offer it.
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        ws.send(connect_packet("after-refusals"))
        assert receive_at_least(ws, 4) == CONNACK_OK


def test_v311_MQTT_6_0_0_2_one_packet_split_across_two_frames(broker) -> None:
    packet = connect_packet("split-across-frames")
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        ws.send(packet[:5])  # two whole binary messages: the header in one, the rest after
        time.sleep(0.05)
        ws.send(packet[5:])
        assert receive_at_least(ws, 4) == CONNACK_OK
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        ws.send([packet[:3], packet[3:]])  # one message in two fragments (RFC 6455 5.4)
        assert receive_at_least(ws, 4) == CONNACK_OK


def test_v311_MQTT_6_0_0_2_two_packets_in_one_frame(broker) -> None:
    subscribe = encode(Subscribe(7, (Subscription("frames/#", 1),)), 4)
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        ws.send(connect_packet("two-in-one") + subscribe)
        assert receive_at_least(ws, 9) == CONNACK_OK + b"\x90\x03\x00\x07\x01"


def test_v311_MQTT_6_0_0_1_a_text_frame_closes_the_connection(broker) -> None:
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        ws.send(connect_packet("text-frame"))
        assert receive_at_least(ws, 4) == CONNACK_OK
        ws.send("\x10 not binary")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    deadline = time.monotonic() + WAIT  # and the broker forgot the connection
    while broker.call(lambda: "text-frame" in broker.server.engine.sessions
                      and broker.server.engine.sessions["text-frame"].conn is not None):
        assert time.monotonic() < deadline, "the broker kept the connection"
        time.sleep(0.02)


def test_v5_MQTT_6_0_0_1_2_3_4_an_mqtt5_session_over_websockets(broker) -> None:
    """The four rules with MQTT 5 packets: ``mqtt`` offered and selected, CONNECT split over
    two frames, SUBSCRIBE and PINGREQ in one frame, then a text frame ends it (1003)."""
    connect = encode(Connect("ws-v5", True, 30), 5)
    subscribe = encode(Subscribe(3, (Subscription("v5/#", 1),)), 5)
    with ws_connect(ws_url(broker), subprotocols=["mqtt"], open_timeout=WAIT) as ws:
        assert ws.subprotocol == "mqtt"
        ws.send(connect[:2])
        ws.send(connect[2:])
        connack = receive_at_least(ws, 3)
        assert connack[0] == 0x20 and connack[3] == 0  # CONNACK, reason code Success
        ws.send(subscribe + b"\xc0\x00")
        rest = receive_at_least(ws, 8)  # SUBACK (id 3, granted 1) and PINGRESP
        assert rest == b"\x90\x04\x00\x03\x00\x01\xd0\x00"
        ws.send("text")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd.code == 1003


def test_a_websocket_close_without_disconnect_publishes_the_will(broker) -> None:
    """A close frame ends the network connection, not the MQTT session: no DISCONNECT came,
    so the will goes out [MQTT-3.1.2-8], as after a TCP reset."""
    from mqttsim.protocol.packets import Will

    async def main() -> tuple:
        tcp_host, tcp_port = broker.server.address_of("mqtt")
        async with Client(tcp_host, tcp_port, client_id="will-watcher") as watcher:
            await watcher.subscribe("wills/#", 1)
            loop = asyncio.get_running_loop()

            def browser_tab_closes() -> None:
                connect = encode(Connect("ws-will", True, 30,
                                         will=Will("wills/ws", b"gone", 1, False)), 4)
                with ws_connect(ws_url(broker), subprotocols=["mqtt"],
                                open_timeout=WAIT) as ws:
                    ws.send(connect)
                    assert receive_at_least(ws, 4) == CONNACK_OK
                # leaving the block sends a close frame (1000) and waits for the broker's

            await loop.run_in_executor(None, browser_tab_closes)
            message = await asyncio.wait_for(watcher.messages.__anext__(), WAIT)
            return message.topic, message.payload, message.qos

    assert asyncio.run(main()) == ("wills/ws", b"gone", 1)


def test_a_plain_http_request_gets_an_http_error_not_a_hang(broker) -> None:
    import socket

    host, port = broker.server.address_of("websockets")
    with socket.create_connection((host, port), timeout=WAIT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 4"), reply


# -- paho-mqtt over WebSockets ----------------------------------------------------------------

class PahoWs:
    def __init__(self, host: str, port: int, client_id: str, version=paho.MQTTv311,
                 tls_ca: Path | None = None):
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=version, transport="websockets")
        self.client.ws_set_options(path="/mqtt")
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.messages: list = []
        self.connected, self.acked = threading.Event(), threading.Event()
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_subscribe = lambda *args: self.acked.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.qos))
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "paho did not connect over WebSockets"

    def subscribe(self, topic: str, qos: int) -> None:
        self.client.subscribe(topic, qos)
        assert self.acked.wait(WAIT), "no SUBACK"

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        info = self.client.publish(topic, payload, qos)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def wait(self, count: int) -> list:
        deadline = time.monotonic() + WAIT
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("version", [paho.MQTTv311, paho.MQTTv5])
def test_paho_over_websockets_qos1_publish_and_subscribe(broker, version) -> None:
    host, port = broker.server.address_of("websockets")
    sub = PahoWs(host, port, f"paho-ws-sub-{version}", version)
    pub = PahoWs(host, port, f"paho-ws-pub-{version}", version)
    try:
        sub.subscribe("paho/ws/#", 1)
        pub.publish("paho/ws/a", b"over websockets", 1)
        big = bytes(range(256)) * 400  # 100 kB: several TCP segments, one WebSocket frame
        pub.publish("paho/ws/big", big, 1)
        assert sub.wait(2) == [("paho/ws/a", b"over websockets", 1), ("paho/ws/big", big, 1)]
    finally:
        sub.close()
        pub.close()


def test_paho_websocket_and_our_tcp_client_talk_through_one_broker(broker) -> None:
    host, port = broker.server.address_of("websockets")
    paho_sub = PahoWs(host, port, "paho-ws-cross")
    try:
        paho_sub.subscribe("cross/#", 1)

        async def tcp_side() -> list:
            tcp_host, tcp_port = broker.server.address_of("mqtt")
            async with Client(tcp_host, tcp_port, client_id="tcp-cross") as tcp:
                await tcp.subscribe("back", 1)
                assert await tcp.publish("cross/tcp", b"from tcp", 1) == 0
                paho_sub.client.publish("back", b"from paho ws", 1)
                message = await asyncio.wait_for(tcp.messages.__anext__(), WAIT)
                return [message.topic, message.payload, message.qos]

        assert asyncio.run(tcp_side()) == ["back", b"from paho ws", 1]
        assert paho_sub.wait(1) == [("cross/tcp", b"from tcp", 1)]
    finally:
        paho_sub.close()


# -- our client over WebSockets, against our own listener ------------------------------------

@pytest.mark.parametrize("version", [3, 4, 5])
def test_our_client_over_websockets_each_version(broker, version: int) -> None:
    host, port = broker.server.address_of("websockets")

    async def main() -> list:
        async with Client(host, port, client_id=f"ours-ws-{version}", version=version,
                          transport="websockets") as ws_client:
            assert await ws_client.subscribe("ours/#", 2) == (2,)
            codes = [await ws_client.publish(f"ours/{qos}", b"q%d" % qos, qos)
                     for qos in (0, 1, 2)]
            assert codes == [0, 0, 0]
            got = []
            async for message in ws_client.messages:
                got.append((message.topic, message.payload, message.qos))
                if len(got) == 3:
                    return got
        return got

    got = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert sorted(got) == [("ours/0", b"q0", 0), ("ours/1", b"q1", 1), ("ours/2", b"q2", 2)]


def test_our_client_refuses_a_server_that_is_not_a_websocket(broker) -> None:
    from mqttsim.net.websocket import WebSocketError

    host, port = broker.server.address_of("mqtt")  # plain MQTT: no HTTP answer at all

    async def main() -> None:
        client = Client(host, port, transport="websockets", connect_timeout=2.0)
        await client.connect()

    with pytest.raises((WebSocketError, asyncio.TimeoutError, ConnectionError)):
        asyncio.run(main())


# -- mqttsim broker -c: TCP, WebSocket and WebSocket+TLS listeners at once ---------------------

def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl missing (Debian package openssl)")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_broker_command_serves_tcp_websockets_and_secure_websockets(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    tcp, ws, wss = free_port(), free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {tcp} 127.0.0.1\n"
                    f"listener {ws} 127.0.0.1\nprotocol websockets\n"
                    f"listener {wss} 127.0.0.1\nprotocol websockets\n"
                    f"certfile {cert}\nkeyfile {key}\n"
                    "allow_anonymous true\n")
    broker = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf),
                               "-v"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(broker.stderr), daemon=True)
    reader.start()
    sub = None
    secure = None
    try:
        for port in (tcp, ws, wss):
            assert wait_listening(port, WAIT, alive=lambda: broker.poll() is None)
        sub = subprocess.Popen([sys.executable, "-m", "mqttsim", "sub", "-L",
                                f"ws://127.0.0.1:{ws}/mqtt", "-t", "mixed/#", "-v",
                                "-q", "1", "-C", "3", "-W", "20"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        secure = PahoWs("127.0.0.1", wss, "paho-wss", tls_ca=cert)
        secure.subscribe("mixed/#", 1)
        deadline = time.monotonic() + WAIT  # both subscriptions are in place (-v log)
        while sum(" mixed/#" in line for line in lines) < 2:
            assert time.monotonic() < deadline and broker.poll() is None, "".join(lines)
            time.sleep(0.02)
        done = subprocess.run([sys.executable, "-m", "mqttsim", "pub", "-h", "127.0.0.1",
                               "-p", str(tcp), "-t", "mixed/tcp", "-m", "plain", "-q", "1"],
                              cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        done = subprocess.run([sys.executable, "-m", "mqttsim", "pub", "-L",
                               f"wss://127.0.0.1:{wss}/mqtt", "--cafile", str(cert),
                               "-t", "mixed/wss", "-m", "sealed", "-q", "1"],
                              cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        done = subprocess.run([sys.executable, "-m", "mqttsim", "pub", "--ws", "-h",
                               "127.0.0.1", "-p", str(ws), "-t", "mixed/ws", "-m", "framed",
                               "-q", "1"], cwd=ROOT, capture_output=True, text=True,
                              timeout=WAIT)
        assert done.returncode == 0, done.stderr
        out, err = sub.communicate(timeout=WAIT)
        assert sub.returncode == 0, err
        assert out == "mixed/tcp plain\nmixed/wss sealed\nmixed/ws framed\n"
        assert secure.wait(3) == [("mixed/tcp", b"plain", 1), ("mixed/wss", b"sealed", 1),
                                  ("mixed/ws", b"framed", 1)]
    finally:
        if secure is not None:
            secure.close()
        if sub is not None:
            stop_process(sub)
        broker.terminate()
        try:
            broker.wait(timeout=WAIT)
        finally:
            stop_process(broker)
        reader.join(timeout=WAIT)
    log = "".join(lines)
    assert f"Opening websockets listen socket on 127.0.0.1 port {ws}." in log
    assert f"Opening listen socket on 127.0.0.1 port {tcp}." in log
