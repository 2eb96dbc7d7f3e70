"""A paho-mqtt publisher to try on a bad network: `11-your-own-client.ipynb` runs it with
`mqttsim exec`, inside a network namespace whose only way out is a scenario's link.

It connects to the broker at $MQTT_HOST:$MQTT_PORT (set by `mqttsim exec`), publishes
COUNT messages at QoS 1, one every INTERVAL seconds, and prints one CSV line per message:
when it was handed to paho and when its PUBACK came back (seconds since the start), so the
notebook can draw the round trips. Change it as you like: it is your client.
"""

import os
import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt

COUNT = int(os.environ.get("COUNT", "20"))
INTERVAL = float(os.environ.get("INTERVAL", "0.1"))
QOS = int(os.environ.get("QOS", "1"))
WAIT = float(os.environ.get("WAIT", "15"))  # at most this long for the last PUBACK
# paho-mqtt leaves Nagle's algorithm on: a small write waits while earlier data is still
# unacknowledged. NODELAY=1 switches it off, as mqttsim's own clients and broker do.
NODELAY = os.environ.get("NODELAY", "0") == "1"

start = time.monotonic()
sent: dict[int, float] = {}
acked: dict[int, float] = {}
connected = threading.Event()
all_acked = threading.Event()


def now() -> float:
    return time.monotonic() - start


def on_connect(client, userdata, flags, reason_code, properties):
    print(f"# connected after {now():.3f} s: {reason_code}", file=sys.stderr)
    connected.set()


def on_publish(client, userdata, mid, reason_code, properties):
    acked[mid] = now()
    if len(acked) == COUNT:
        all_acked.set()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device")
client.on_connect, client.on_publish = on_connect, on_publish
client.connect(os.environ.get("MQTT_HOST", "127.0.0.1"), int(os.environ.get("MQTT_PORT", "1883")),
               keepalive=60)
if NODELAY:
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
client.loop_start()
if not connected.wait(WAIT):
    sys.exit("no CONNACK: is the broker reachable?")
for i in range(COUNT):
    info = client.publish("device/reading", f"reading {i}", qos=QOS)
    sent[info.mid] = now()
    time.sleep(INTERVAL)
all_acked.wait(WAIT)
client.disconnect()
client.loop_stop()
print("mid,t_sent,t_acked")
for mid, t_sent in sent.items():
    print(f"{mid},{t_sent:.4f},{acked.get(mid, float('nan')):.4f}")
