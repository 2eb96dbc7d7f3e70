"""MQTT.js in a real headless Chromium, through the broker's WebSocket listener.

The page is a file in a temporary directory that loads MQTT.js's own browser bundle
(``dist/mqtt.min.js`` of the ``mqtt`` npm package, fetched at set-up with ``npm pack`` from
the npm registry: nothing is vendored) and opens two MQTT.js clients, MQTT 3.1.1 and 5.0, to
``ws://127.0.0.1:PORT/mqtt``. Each subscribes at QoS 1, then publishes at QoS 1; our Client
on the broker's TCP listener receives what the browser published and publishes to the
browser. Chromium and chromedriver are Debian's, driven by Selenium with both paths given (so
Selenium Manager downloads nothing), as ../shared/recipes/browser-notebook-test.md says.
Without the tools the test skips on a developer's machine, and fails under CI or as root,
where ``make test`` installs them (a silent skip would hide a broken set-up).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.browser import chromium, require

from mqttsim.net.client import Client
from mqttsim.net.server import Listener, ServerThread

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

MQTT_JS = "mqtt@5"  # the npm package MQTT.js; its tarball carries dist/mqtt.min.js
INSTALL = ("sudo apt-get install -y chromium chromium-driver && pip install selenium "
           "(npm comes with Node.js)")
WAIT = 20.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="mqtt.min.js"></script></head>
<body><script>
window.state = {v4: {messages: []}, v5: {messages: []}, errors: []};
function start(name, version) {
  const s = window.state[name];
  const client = mqtt.connect(URL, {clientId: 'chromium-' + name, protocolVersion: version,
                                    reconnectPeriod: 0, connectTimeout: 10000});
  client.on('error', e => window.state.errors.push(name + ': ' + e.message));
  client.on('message', (topic, payload, packet) =>
    s.messages.push([topic, new TextDecoder().decode(payload), packet.qos]));
  client.on('connect', () => {
    s.connected = true;
    client.subscribe('to-browser/' + name, {qos: 1}, (err, granted) => {
      if (err) { window.state.errors.push(name + ': ' + err.message); return; }
      s.granted = granted.map(g => g.qos);
      client.publish('from-browser/' + name, 'hello from chromium ' + name, {qos: 1},
                     err => { s.published = err ? 'error: ' + err.message : 'acked'; });
    });
  });
}
start('v4', 4);
start('v5', 5);
</script></body></html>
"""


@pytest.fixture(scope="module")
def mqtt_js(tmp_path_factory) -> Path:
    """MQTT.js's browser bundle, from the npm registry's ``mqtt`` package."""
    require("npm", modules=(), install=INSTALL)
    folder = tmp_path_factory.mktemp("mqttjs")
    packed = subprocess.run(["npm", "pack", MQTT_JS, "--json", "--pack-destination",
                             str(folder)], capture_output=True, text=True, timeout=120,
                            cwd=folder)
    if packed.returncode:
        pytest.fail(f"npm pack {MQTT_JS} failed:\n{packed.stderr}")
    tarball = folder / json.loads(packed.stdout)[0]["filename"]
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/dist/mqtt.min.js")
        bundle = folder / "mqtt.min.js"
        bundle.write_bytes(member.read())
    return bundle


def test_mqtt_js_in_chromium_subscribes_and_publishes_through_the_broker(mqtt_js, tmp_path):
    require("chromium", "chromedriver", install=INSTALL)
    from selenium.webdriver.support.ui import WebDriverWait

    broker = ServerThread(listeners=[Listener("127.0.0.1", 0, protocol="websockets"),
                                     Listener("127.0.0.1", 0)])
    broker.start()
    driver = None
    try:
        ws_host, ws_port = broker.server.address_of("websockets")
        shutil.copy(mqtt_js, tmp_path / "mqtt.min.js")
        page = tmp_path / "page.html"
        page.write_text(PAGE.replace("URL", json.dumps(f"ws://{ws_host}:{ws_port}/mqtt"), 1))

        async def tcp_side() -> list:
            """Subscribe to what the browser sends, open the page, then publish to it."""
            tcp_host, tcp_port = broker.server.address_of("mqtt")
            async with Client(tcp_host, tcp_port, client_id="tcp-peer") as tcp:
                await tcp.subscribe("from-browser/#", 1)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, open_page)
                for name in ("v4", "v5"):
                    assert await tcp.publish(f"to-browser/{name}", f"hello {name}", 1) == 0
                got = []
                async for message in tcp.messages:
                    got.append((message.topic, message.payload, message.qos))
                    if len(got) == 2:
                        return sorted(got)
            return got

        def open_page() -> None:
            nonlocal driver
            driver = chromium(tmp_path / "profile")
            driver.get(page.as_uri())
            WebDriverWait(driver, WAIT, 0.1).until(lambda d: d.execute_script(
                "const s = window.state; return s.errors.length > 0 || "
                "(s.v4.granted !== undefined && s.v5.granted !== undefined)"))

        got = asyncio.run(asyncio.wait_for(tcp_side(), 2 * WAIT))
        assert got == [("from-browser/v4", b"hello from chromium v4", 1),
                       ("from-browser/v5", b"hello from chromium v5", 1)]
        state = WebDriverWait(driver, WAIT, 0.1).until(lambda d: (s := d.execute_script(
            "return window.state")) and (s["errors"] or all(
                s[name]["messages"] and s[name].get("published") for name in ("v4", "v5")))
            and s)
        assert state["errors"] == []
        for name in ("v4", "v5"):
            assert state[name]["granted"] == [1]
            assert state[name]["published"] == "acked"  # PUBACK reached MQTT.js
            assert state[name]["messages"] == [[f"to-browser/{name}", f"hello {name}", 1]]
    finally:
        if driver is not None:
            driver.quit()
        broker.stop()
