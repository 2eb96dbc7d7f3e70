"""The ``mqttsim`` command line, run as a user runs it: a separate process, reading its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.cli import COMMANDS, hexdump, parse_hex

ROOT = Path(__file__).resolve().parent.parent
# PUBLISH topic "sensor", payload "12", QoS 0: what `mosquitto_pub -t sensor -m 12` sends.
PUBLISH_SENSOR_12 = "30 0a 00 06 73 65 6e 73 6f 72 31 32"
# A 3.1.1 CONNECT (client id "c", clean session, keepalive 60) and then that PUBLISH.
CONNECT_V4 = "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63"


def mqttsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqttsim", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("version, protocol_name, title", [
    (3, "MQIsdp", "MQTT 3.1 walk-through"),
    (4, "MQTT", "MQTT 3.1.1 walk-through"),
    (5, "MQTT", "MQTT 5.0 walk-through"),
])
def test_demo_walks_through_sensor_12(version: int, protocol_name: str, title: str) -> None:
    done = mqttsim("demo", "--version", str(version))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert title in out
    lines = out.splitlines()
    # The subscriber's own output, as `mosquitto_sub -v -t sensor` prints it, on its own line.
    assert lines[-1] == "sensor 12"
    names = [line.split()[4].rstrip(",") for line in lines if line[:1].isdigit()]
    assert names == ["CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK", "PUBLISH", "PINGREQ",
                     "PINGRESP", "DISCONNECT"]
    assert protocol_name in out  # in the ASCII column of CONNECT's hex dump
    assert "decoded: PUBLISH topic='sensor' payload=b'12'" in out


def test_demo_defaults_to_3_1_1_and_shows_the_publish_bytes() -> None:
    done = mqttsim("demo")
    assert done.returncode == 0, done.stderr
    assert "MQTT 3.1.1 walk-through" in done.stdout
    assert PUBLISH_SENSOR_12 in done.stdout
    # PINGREQ and DISCONNECT are two bytes each in 3.1.1.
    assert "    c0 00 " in done.stdout and "    e0 00 " in done.stdout


def test_decode_prints_the_topic_of_a_publish() -> None:
    done = mqttsim("decode", PUBLISH_SENSOR_12)
    assert done.returncode == 0, done.stderr
    assert "PUBLISH topic='sensor' payload=b'12'" in done.stdout


def test_decode_accepts_colons_and_separate_words() -> None:
    done = mqttsim("decode", *PUBLISH_SENSOR_12.replace(" ", ":").split(":", 3))
    assert done.returncode == 0, done.stderr
    assert "topic='sensor'" in done.stdout


def test_decode_learns_the_version_from_connect() -> None:
    done = mqttsim("decode", CONNECT_V4 + " " + PUBLISH_SENSOR_12)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "# MQTT 3.1.1"
    assert lines[1].startswith("CONNECT client_id='c'")
    assert lines[2].startswith("PUBLISH topic='sensor'")


def test_decode_of_garbage_exits_2_naming_the_rule() -> None:
    # QoS bits 11 in a PUBLISH: "MUST NOT have both QoS bits set to 1" [MQTT-3.3.1-4].
    done = mqttsim("decode", "36" + PUBLISH_SENSOR_12[2:])
    assert done.returncode == 2
    assert "[MQTT-3.3.1-4]" in done.stderr
    assert "Traceback" not in done.stderr


def test_decode_of_a_reserved_packet_type_exits_2() -> None:
    done = mqttsim("decode", "00 00")
    assert done.returncode == 2
    assert "Malformed" in done.stderr or "[MQTT-" in done.stderr
    assert "Traceback" not in done.stderr


def test_decode_prints_packets_before_the_error() -> None:
    done = mqttsim("decode", PUBLISH_SENSOR_12 + " 00 00")
    assert done.returncode == 2
    assert "topic='sensor'" in done.stdout
    assert "Traceback" not in done.stderr


def test_decode_reports_an_incomplete_packet() -> None:
    done = mqttsim("decode", PUBLISH_SENSOR_12[:-3])
    assert done.returncode == 2
    assert "11 bytes are an incomplete packet" in done.stderr


def test_decode_refuses_text_that_is_not_hex() -> None:
    done = mqttsim("decode", "30 0g")
    assert done.returncode == 2
    assert "not hex" in done.stderr


def test_no_subcommand_is_a_usage_error() -> None:
    done = mqttsim()
    assert done.returncode == 2
    assert "usage: mqttsim" in done.stderr


def test_every_command_has_help(capsys) -> None:
    # In-process (one subprocess per command cost ~2 s each): the entry point itself is
    # exercised by the subprocess tests around this one.
    from mqttsim.cli import main
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exited:
            main([command.name, "--help"])
        assert exited.value.code == 0
        assert command.help in capsys.readouterr().out


def test_parse_hex_forms() -> None:
    assert parse_hex(["0x300a"]) == b"\x30\x0a"
    assert parse_hex(["30:0a", "00"]) == b"\x30\x0a\x00"
    assert parse_hex(["30 0a\n00"]) == b"\x30\x0a\x00"


def test_hexdump_rows_of_sixteen_with_ascii() -> None:
    dump = hexdump(bytes(range(0x40, 0x40 + 17)), indent="")
    first, second = dump.splitlines()
    assert first == ("40 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f  "
                     "@ABCDEFGHIJKLMNO")
    assert second == "50" + " " * 47 + "P"
