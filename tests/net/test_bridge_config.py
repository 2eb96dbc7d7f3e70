"""The bridge lines of mosquitto.conf (mqttsim/net/bridge_config.py), with mosquitto.conf(5)'s
defaults and one-line errors naming file, line and option."""

from __future__ import annotations

import socket

import pytest

from mqttsim.net.config import ConfigError, parse_config
from mqttsim.protocol.bridge import BridgeTopic

FULL = """\
listener 1883 127.0.0.1
connection cloud
address cloud.example:8883
topic sensors/# out 1 "" site1/
topic commands/# in 2 local/ ""
topic # both
topic "" both 0 edge/status site1/status
cleansession true
keepalive_interval 30
restart_timeout 10 60
bridge_protocol_version mqttv50
try_private false
remote_clientid edge-1
remote_username edge
remote_password secret
connection backup
address 10.0.0.2
topic alarms/#
"""


def test_a_full_section_and_mosquittos_defaults():
    first, second = parse_config(FULL).bridges
    assert (first.host, first.port) == ("cloud.example", 8883)
    c = first.config
    assert c.topics == (BridgeTopic("sensors/#", "out", 1, "", "site1/"),
                        BridgeTopic("commands/#", "in", 2, "local/", ""),
                        BridgeTopic("#", "both", 0),
                        BridgeTopic("", "both", 0, "edge/status", "site1/status"))
    assert (c.clean_session, c.keepalive, c.restart_base, c.restart_cap, c.version,
            c.try_private, c.remote_client_id, c.local_id, c.username, c.password) == (
        True, 30, 10, 60, 5, False, "edge-1", "local.edge-1", "edge", b"secret")
    d = second.config
    assert (second.host, second.port) == ("10.0.0.2", 1883)
    assert d.topics == (BridgeTopic("alarms/#", "out", 0),)  # direction out, QoS 0
    assert (d.clean_session, d.keepalive, d.restart_base, d.restart_cap, d.version,
            d.try_private) == (False, 60, 5, 30, 4, True)
    # src/conf.c: HOSTNAME.NAME, and local.<remote id> on the local broker
    assert d.remote_client_id == f"{socket.gethostname()}.backup"
    assert d.local_id == f"local.{socket.gethostname()}.backup"


@pytest.mark.parametrize("text, message", [
    ("address 1.2.3.4\n", r"<config>:1: address: a bridge option needs a 'connection NAME'"),
    ("connection a\ntopic x\n", r"<config>:1: connection: bridge 'a' has no address"),
    ("connection a\naddress h\n", r"<config>:1: connection: bridge 'a' has no topic line"),
    ("connection a\naddress h\ntopic x sideways\n", r":3: topic: .*in, out or both"),
    ("connection a\naddress h\ntopic x in 3\n", r":3: topic: 3 is outside 0..2"),
    ('connection a\naddress h\ntopic "" in 0 l/ ""\n', r":3: topic: .*needs both"),
    ("connection a\naddress h\ntopic x\nrestart_timeout 10 5\n", r":4: restart_timeout: 5 is "
     r"outside 10\.\."),
    ("connection a\naddress h\ntopic x\nkeepalive_interval 2\n", r":4: keepalive_interval"),
    ("connection a\naddress h\ntopic x\nbridge_protocol_version mqttv6\n",
     r":4: bridge_protocol_version: 'mqttv6' is not one of"),
    ("connection a\naddress h:99999\ntopic x\n", r":2: address: 99999 is outside"),
    ("connection a\naddress h\ntopic x\nconnection a\n", r":4: connection: .*already defined"),
])
def test_bad_bridge_lines_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(text)
    assert "\n" not in str(caught.value)


def test_the_readme_bridge_example_is_a_valid_configuration():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```conf\n(.*?)```", readme, flags=re.S)
    [bridge] = parse_config(block, "README.md").bridges
    assert (bridge.host, bridge.port, len(bridge.config.topics)) == ("127.0.0.1", 1884, 3)
    assert (bridge.config.keepalive, bridge.config.restart_base, bridge.config.restart_cap) == (
        20, 2, 10)
