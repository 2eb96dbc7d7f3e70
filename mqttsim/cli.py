"""The ``mqttsim`` command line: one entry point, one small function per subcommand.

Every subcommand is a ``Command`` in ``COMMANDS``: a function that adds its options to an
argparse sub-parser and a function that runs it and returns the exit status. Adding a
subcommand means writing those two functions and one table row. Run functions import what
they need themselves, so ``mqttsim --help`` stays quick however heavy a subcommand is.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Callable, Sequence

from . import __version__

#: Exit status for input the codec refuses or that is not hex (argparse uses 2 for bad usage).
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line help, its options and what it does."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # False for tools that take -h as an option (pub/sub: host, as in mosquitto); they add
    # their own --help.
    add_help: bool = True


# ---------------------------------------------------------------------------------------------
# Showing packets


def hexdump(data: bytes, indent: str = "    ") -> str:
    """Rows of 16 bytes in hex with their printable ASCII, like ``xxd`` or Wireshark."""
    rows = []
    for start in range(0, len(data), 16):
        chunk = data[start:start + 16]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        rows.append(f"{indent}{hex_part:<47}  {text}")
    return "\n".join(rows)


def _reason_text(packet, value: int, version: int) -> str:
    from .protocol.reason_codes import reason_name

    name = reason_name(value, version, packet.type.name)
    return f"{value}" if name == f"0x{value:02X}" else f"{value} ({name})"


# Shown even at their default values: they are what a reader of a packet looks for first.
_ALWAYS_SHOWN = frozenset({"qos", "clean_session", "keepalive"})


def _worth_showing(field, value) -> bool:
    return field.name in _ALWAYS_SHOWN or field.default is MISSING or value != field.default


def _show(value) -> str:
    """A value in a short form: nested dataclasses list only the fields worth showing."""
    if is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(f"{field.name}={_show(getattr(value, field.name))}"
                          for field in fields(value)
                          if _worth_showing(field, getattr(value, field.name)))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, tuple):
        inner = ", ".join(_show(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def describe(packet, version: int) -> str:
    """One line per packet: its type, then the fields that matter or differ from defaults.

    Return and reason codes carry their names as ``version`` spells them; CONNACK always shows
    its code, because "accepted" or "refused" is the point of that packet.
    """
    parts = [packet.type.name]
    for field in fields(packet):
        value = getattr(packet, field.name)
        if field.name == "reason_code":
            if value != field.default or packet.type.name == "CONNACK":
                parts.append(f"reason_code={_reason_text(packet, value, version)}")
        elif field.name == "reason_codes":
            if value:  # SUBACK always has some; UNSUBACK has them only in MQTT 5
                codes = ", ".join(_reason_text(packet, code, version) for code in value)
                parts.append(f"reason_codes=[{codes}]")
        elif _worth_showing(field, value):
            parts.append(f"{field.name}={_show(value)}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# mqttsim demo


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", type=int, choices=(3, 4, 5), default=4,
                        help="protocol level: 3 (MQTT 3.1), 4 (3.1.1, the default), 5 (5.0)")


def _walkthrough() -> list[tuple[str, str, object]]:
    """The subscriber's side of ``mosquitto_sub -v -t sensor`` + ``mosquitto_pub -t sensor -m 12``.

    Each entry is (direction, what happens, packet). mosquitto_sub connects with a clean
    session and a 60 s keepalive, subscribes at QoS 0, receives the QoS 0 PUBLISH the broker
    forwards from mosquitto_pub (the same bytes the publisher sent), pings while idle, and
    says goodbye with DISCONNECT when stopped.
    """
    from .protocol import packets as p

    up, down = "subscriber -> broker", "broker -> subscriber"
    return [
        (up, "mosquitto_sub connects", p.Connect(client_id="mosq-sub-sensor", keepalive=60)),
        (down, "the broker accepts", p.Connack()),
        (up, "subscribe to 'sensor' at QoS 0",
         p.Subscribe(packet_id=1, subscriptions=(p.Subscription("sensor", qos=0),))),
        (down, "the broker grants QoS 0", p.Suback(packet_id=1, reason_codes=(0,))),
        (down, "mosquitto_pub -t sensor -m 12 published; the broker forwards it",
         p.Publish(topic="sensor", payload=b"12")),
        (up, "nothing to say for a while: keepalive probe", p.Pingreq()),
        (down, "the broker is still there", p.Pingresp()),
        (up, "Ctrl-C: a clean goodbye", p.Disconnect()),
    ]


def _run_demo(args: argparse.Namespace) -> int:
    from .protocol import Decoder, encode
    from .protocol.packets import VERSION_NAMES, Publish

    version = args.version
    steps = _walkthrough()
    print(f"MQTT {VERSION_NAMES[version]} walk-through: mosquitto_sub -v -t sensor, "
          f"then mosquitto_pub -t sensor -m 12")
    print("Every packet is encoded, then decoded again by the side that receives it.\n")
    # The broker's decoder learns the version from CONNECT; the client's is told it.
    at_broker, at_subscriber = Decoder(), Decoder(version=version)
    printed: list[str] = []
    for number, (direction, story, packet) in enumerate(steps, 1):
        data = encode(packet, version)
        receiver = at_broker if direction.endswith("broker") else at_subscriber
        decoded = receiver.feed(data)
        print(f"{number}. {direction}  {packet.type.name}, {len(data)} bytes: {story}")
        print(hexdump(data))
        for got in decoded:
            print(f"    decoded: {describe(got, version)}")
        if decoded != [packet]:
            print(f"error: decoding gave {decoded!r}, not the packet encoded", file=sys.stderr)
            return 1
        if isinstance(packet, Publish):
            # What `mosquitto_sub -v` prints for each message: topic, a space, the payload.
            printed.append(f"{decoded[0].topic} {decoded[0].payload.decode('utf-8')}")
        print()
    print("mosquitto_sub -v -t sensor prints:")
    for line in printed:
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------
# mqttsim decode


def _decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", type=int, choices=(3, 4, 5), default=None,
                        help="protocol level: 3 (MQTT 3.1), 4 (3.1.1), 5 (5.0); by default it "
                             "is learnt from a leading CONNECT, else 3.1.1")
    parser.add_argument("hex", nargs="+", metavar="HEX",
                        help="the bytes in hex; spaces and colons are ignored, so "
                             "'30 0a 00 06 73 65 6e 73 6f 72 31 32' and '30:0a:00:06...' work")


def parse_hex(words: Sequence[str]) -> bytes:
    """Bytes from hex as people paste it: with spaces, colons or a leading 0x."""
    text = "".join(words).replace(":", "")
    text = "".join(text.split())
    if text[:2].lower() == "0x":
        text = text[2:]
    return bytes.fromhex(text)


def _run_decode(args: argparse.Namespace) -> int:
    from .protocol import Decoder
    from .protocol.errors import MQTTError
    from .protocol.packets import MQTT_3_1_1, VERSION_NAMES, PacketType

    try:
        data = parse_hex(args.hex)
    except ValueError as exc:
        print(f"mqttsim decode: not hex: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    version = args.version
    assumed = version is None and not (data and data[0] >> 4 == PacketType.CONNECT)
    if assumed:
        version = MQTT_3_1_1
    decoder = Decoder(version=version)
    try:
        packets = decoder.feed(data)
    except MQTTError as exc:
        packets, error = exc.decoded, exc
    else:
        error = None
    if decoder.version is not None:
        note = " (assumed: the bytes do not start with CONNECT; see --version)" if assumed else ""
        print(f"# MQTT {VERSION_NAMES[decoder.version]}{note}")
    for packet in packets:
        print(describe(packet, decoder.version))
    if error is not None:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    waiting = decoder.buffered
    if waiting:
        print(f"mqttsim decode: the last {waiting} bytes are an incomplete packet",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


# ---------------------------------------------------------------------------------------------
# The table and the entry point

def _lazy(module: str, add: str = "add_arguments", run: str = "run"):
    """(add_arguments, run) for a subcommand living in ``module``, imported on first use so
    the network and lab code load only for the commands that need them."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), add)(parser)

    def run_command(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), run)(args)

    return add_arguments, run_command


COMMANDS: tuple[Command, ...] = (
    Command("demo", "encode and decode the 'sensor 12' walk-through, byte by byte",
            _demo_arguments, _run_demo),
    Command("decode", "decode MQTT packets given in hex", _decode_arguments, _run_decode),
    Command("broker", "run an MQTT broker (TCP, TLS, WebSockets, bridges), like mosquitto",
            *_lazy("mqttsim.net.cli_broker")),
    Command("passwd", "create or update a mosquitto password file (like mosquitto_passwd)",
            *_lazy("mqttsim.net.passwd")),
    Command("sub", "subscribe and print messages, like mosquitto_sub (-h is the host)",
            *_lazy("mqttsim.net.cli_clients", "add_sub_arguments", "run_sub"), add_help=False),
    Command("pub", "publish a message, like mosquitto_pub (-h is the host)",
            *_lazy("mqttsim.net.cli_clients", "add_pub_arguments", "run_pub"), add_help=False),
    Command("rr", "send an MQTT 5 request and print its response, like mosquitto_rr",
            *_lazy("mqttsim.net.cli_rr"), add_help=False),
    Command("run", "run a scenario file, simulated or on sockets; print the summary",
            *_lazy("mqttsim.scenario.cli_run")),
    Command("compare", "run a scenario on both backends; exit 1 if they disagree",
            *_lazy("mqttsim.scenario.cli_run", "add_compare_arguments", "run_compare")),
    Command("exec", "run a program (e.g. mosquitto_sub) on a scenario's link; Linux, root",
            *_lazy("mqttsim.backends.kernel.cli_exec")),
    Command("sweep", "run a scenario over a grid of parameters and seeds; write the table",
            *_lazy("mqttsim.lab.cli_lab", "add_sweep_arguments", "run_sweep")),
    Command("report", "write an HTML report of a run or sweep directory (--out of run/sweep)",
            *_lazy("mqttsim.lab.cli_lab", "add_report_arguments", "run_report")),
    Command("grade", "grade a folder of submitted exercise notebooks (--key: the answers)",
            *_lazy("mqttsim.lab.grade")),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per row of ``COMMANDS``; with ``only``, just
    that command's sub-parser gets its arguments (the others are names and help lines), so
    ``mqttsim pub`` does not import the simulator, pandas and matplotlib to parse its flags."""
    parser = argparse.ArgumentParser(
        prog="mqttsim", description="mqttsim: a lab for learning and measuring MQTT.")
    parser.add_argument("--version", action="version", version=f"mqttsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help,
                                    add_help=command.add_help)
        if only is None or command.name == only:
            command.add_arguments(sub_parser)
        sub_parser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mqttsim`` with ``argv`` (default: the process's arguments); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {command.name for command in COMMANDS}
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    program = None
    if chosen == "exec" and "--" in argv:  # `mqttsim exec ... -- CMD ARGS`: CMD's own words
        split = argv.index("--")
        argv, program = argv[:split], argv[split + 1:]
    args = build_parser(chosen if chosen in names else None).parse_args(argv)
    if chosen == "exec":
        args.program = program or []
    return args.run(args)
