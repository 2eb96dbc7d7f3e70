"""``mqttsim sub -F %j / %J`` (and ``--pretty``, and the ``@`` time codes) print what
Debian's ``mosquitto_sub`` prints for the same retained messages, byte for byte once the
receive time (``tst``) is set aside; ``tst`` has mosquitto's shape. mosquitto_sub 2.0.11
prints JSON through cJSON 1.7.15 (mqttsim/net/sub_json.py says what that means)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.net.client import Message
from mqttsim.net.server import ServerThread
from mqttsim.net.sub_json import message_json
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.properties import Properties
from support.mosquitto import mosquitto_broker, require_mosquitto

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
TST = re.compile(rb'"tst":\s*"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z[+-]\d{4})"')

MESSAGES = [  # (topic, payload): JSON and not, with every kind of escape and number
    ("j/obj", b'{"x": [1, 2.5, "s\\"q", 1e10, 0.1, -0, {}], "y": null, "z": {"\xc3\xa9": "\\u00e9\\n"}}'),
    ("j/num", b'[0.1, 1e300, 12345678901234567890, 3.141592653589793, -1.5e-7, true, false, '
              b'"\\u0001\\ud83d\\ude00", {"a":1,"a":2}, [], {}]'),
    ("j/text", b'plain "text" \\ back\tslash\x01'),
    ("j/nul", b"before\x00after"),
]


def tool(name: str, port: int, *args: str) -> bytes:
    command = ([sys.executable, "-m", "mqttsim", "sub"] if name == "mqttsim"
               else ["mosquitto_sub"])
    done = subprocess.run([*command, "-p", str(port), *args], capture_output=True,
                          timeout=15, cwd=ROOT)
    return done.stdout + b"--stderr--\n" + done.stderr


def same_apart_from_tst(ours: bytes, theirs: bytes) -> None:
    assert TST.findall(ours) and len(TST.findall(ours)) == len(TST.findall(theirs))
    assert TST.sub(b'"tst":"T"', ours) == TST.sub(b'"tst":"T"', theirs)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    require_mosquitto("mosquitto_sub", "mosquitto_pub")
    with mosquitto_broker(tmp_path_factory.mktemp("mosquitto-json")) as broker:
        for topic, payload in MESSAGES:
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-r",
                            "-q", "1", "-s"], input=payload, check=True, timeout=10)
        yield broker.port


@pytest.mark.parametrize("fmt, extra", [("%j|%J", ()), ("%J|%j", ("-V", "5", "--pretty"))])
def test_json_output_is_mosquitto_subs(loaded, fmt, extra):
    args = ("-t", "j/#", "-F", fmt, "-C", str(len(MESSAGES)), *extra)
    same_apart_from_tst(tool("mqttsim", loaded, *args), tool("mosquitto_sub", loaded, *args))


def test_time_codes_are_mosquitto_subs(loaded):
    args = ("-t", "j/obj", "-F", "@Y-@m-@d @@ @j %t", "-C", "1")
    assert tool("mqttsim", loaded, *args) == tool("mosquitto_sub", loaded, *args)


def test_mqtt5_properties_as_mosquitto_sub_prints_them_through_our_broker():
    """Properties come in wire order; through ``mqttsim broker`` that is our encoder's."""
    require_mosquitto("mosquitto_sub", "mosquitto_pub")
    with ServerThread(BrokerConfig(sys_interval=0)) as (_, port):
        subprocess.run(["mosquitto_pub", "-p", str(port), "-V", "5", "-t", "p/x", "-m", "{}",
                        "-r", "-q", "2", "-D", "publish", "user-property", "k", "v",
                        "-D", "publish", "user-property", "k", "w",
                        "-D", "publish", "content-type", "application/json",
                        "-D", "publish", "response-topic", "p/reply",
                        "-D", "publish", "correlation-data", "id-7",
                        "-D", "publish", "payload-format-indicator", "1"],
                       check=True, timeout=10)
        for fmt in ("%j", "%J"):
            args = ("-V", "5", "-t", "p/#", "-q", "1", "-F", fmt, "-C", "1")
            ours, theirs = tool("mqttsim", port, *args), tool("mosquitto_sub", port, *args)
            same_apart_from_tst(ours, theirs)
            assert b'"mid":1' in ours and b'"user-properties":{"k":"v","k":"w"}' in ours


def test_json_unit_cases():
    """Without a broker: what each branch prints (the interop tests above are the truth)."""
    message = Message("t", b"", 1, True, packet_id=5,
                      properties=Properties(subscription_identifiers=(3,)))
    text = message_json(message, 0.0, False)
    assert TST.sub(b'"tst":"T"', text) == (b'{"tst":"T","topic":"t","qos":1,"retain":1,'
                                          b'"payloadlen":0,"mid":5,"properties":'
                                          b'{"subscription-identifier":3},"payload":null}')
    errors = []
    assert message_json(Message("t", b"NaN"), 0.0, True, on_error=errors.append) == b""
    assert errors == ["Error: Message payload is not valid JSON on topic t."]
