"""``mqttsim sub`` and ``mqttsim pub``: mosquitto_sub / mosquitto_pub work-alikes on ``Client``.

Flags, output and exit statuses follow Debian's mosquitto-clients 2.0 so a tutorial written
for those tools works with these, and vice versa: ``-h`` is the host (help is ``--help``
only), ``-d`` prints the packet log in mosquitto's words, a refused connection prints
mosquitto's sentence and exits with the CONNACK code, ``-W`` exits 27 ("Timed out").
``sub`` reconnects after a broken connection as mosquitto_sub does (libmosquitto's loop: a
new attempt every second, the subscriptions made again after each CONNACK; a refused CONNACK
ends it); ``pub`` does not, as mosquitto_pub does not. Difference: a publish refused with an
MQTT 5 reason code >= 0x80 makes ``pub`` exit 1, not just warn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys
import time
from datetime import datetime
from typing import BinaryIO, Callable

from ..protocol import events as ev
from ..protocol.packets import (MQTT_3_1, MQTT_5, Publish, Subscribe, Unsubscribe, Will)
from ..protocol.reason_codes import reason_name
from ..protocol.topics import topic_matches, validate_topic_filter, validate_topic_name
from .cli_common import pem_error, port_problem
from .client import Client, ClientError, ConnectionLost, ConnectionRefused, Message
from .log import client_debug_lines
from .sub_json import message_json

VERSIONS = {"mqttv31": 3, "31": 3, "mqttv311": 4, "311": 4, "mqttv5": 5, "5": 5}
EXIT_TIMEOUT = 27  # mosquitto's MOSQ_ERR_TIMEOUT, the status mosquitto_sub -W exits with
SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # what mosquitto's -c asks for in MQTT 5
# mosquitto_connack_string(): the sentences mosquitto's tools print for a 3.1/3.1.1 refusal.
CONNACK_SENTENCES = {
    1: "Connection Refused: unacceptable protocol version.",
    2: "Connection Refused: identifier rejected.",
    3: "Connection Refused: broker unavailable.",
    4: "Connection Refused: bad user name or password.",
    5: "Connection Refused: not authorised.",
}


class UsageError(Exception):
    """Options that cannot work together; printed as ``Error: ...`` with status 1."""


# ---------------------------------------------------------------------------------------------
# Options shared by both tools


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-h", "--host", default="localhost",
                        help="broker host (default localhost)")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help="broker port (default 1883, or 8883 with TLS)")
    parser.add_argument("-q", "--qos", type=int, choices=(0, 1, 2), default=0, help="QoS")
    parser.add_argument("-i", "--id", dest="client_id", default=None, help="client id")
    parser.add_argument("-I", "--id-prefix", default=None,
                        help="client id: this prefix followed by the process id")
    parser.add_argument("-u", "--username", default=None, help="user name")
    parser.add_argument("-P", "--pw", dest="password", default=None, help="password")
    parser.add_argument("-k", "--keepalive", type=int, default=60,
                        help="keepalive in seconds (default 60)")
    parser.add_argument("-c", "--disable-clean-session", action="store_true",
                        help="persistent session: the broker keeps subscriptions and queues "
                             "QoS 1/2 messages while this client id is away (needs -i or -I)")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="print every packet sent and received, like mosquitto's -d")
    parser.add_argument("-V", "--protocol-version", default="mqttv311",
                        choices=sorted(VERSIONS, key=len, reverse=True), metavar="VERSION",
                        help="mqttv31, mqttv311 (default) or mqttv5")
    parser.add_argument("--will-topic", default=None, help="topic of the will message")
    parser.add_argument("--will-payload", default=None, help="payload of the will message")
    parser.add_argument("--will-qos", type=int, choices=(0, 1, 2), default=0,
                        help="QoS of the will message")
    parser.add_argument("--will-retain", action="store_true", help="retain the will message")
    parser.add_argument("--cafile", default=None,
                        help="CA certificates (PEM) that sign the broker's: enables TLS")
    parser.add_argument("--cert", default=None, help="client certificate (PEM), for TLS")
    parser.add_argument("--key", default=None, help="client private key (PEM), for TLS")
    parser.add_argument("--insecure", action="store_true",
                        help="TLS without checking the broker's host name (testing only)")
    parser.add_argument("-L", "--url", default=None,
                        help="the broker as a URL: mqtt(s)://[user[:password]@]host[:port]/"
                             "topic as mosquitto's -L, or ws(s)://[user[:password]@]host"
                             "[:port][/path] for MQTT over WebSockets (path default /mqtt)")
    parser.add_argument("--ws", action="store_true",
                        help="MQTT over WebSockets to -h/-p (default port 8080, path /mqtt; "
                             "wss:// with --cafile)")


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.cafile is None:
        if args.cert or args.key:
            raise UsageError("--cert and --key need --cafile (TLS is enabled by --cafile).")
        return None
    if args.key and not args.cert:
        raise UsageError("--key needs --cert.")
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:  # missing, unreadable, or not PEM certificates
        raise UsageError(f"--cafile {args.cafile}: cannot load CA certificates: "
                         f"{pem_error(exc)}") from None
    if args.cert:
        try:
            context.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as exc:
            files = f"--cert {args.cert}" + (f" --key {args.key}" if args.key else "")
            raise UsageError(f"{files}: cannot load the certificate and key: "
                             f"{pem_error(exc)}") from None
    if args.insecure:
        context.check_hostname = False
    return context


def _client_id(args: argparse.Namespace, tool: str, version: int) -> str:
    if args.client_id is not None and args.id_prefix is not None:
        raise UsageError("-i and -I cannot be used together.")
    if args.client_id is not None:
        return args.client_id
    if args.id_prefix is not None:
        return f"{args.id_prefix}{os.getpid()}"
    if args.disable_clean_session:
        raise UsageError("You must provide a client id if you are using the -c option.")
    if version == MQTT_3_1:  # 3.1 has no empty client ids; 3.1.1 and 5 let the broker pick
        return f"mqttsim-{tool}-{os.getpid()}"[:23]
    return ""


def _will(args: argparse.Namespace) -> Will | None:
    if args.will_topic is None:
        if args.will_payload is not None or args.will_qos or args.will_retain:
            raise UsageError("Will payload, QoS or retain given, but no will topic given.")
        return None
    payload = (args.will_payload or "").encode()
    return Will(args.will_topic, payload, args.will_qos, args.will_retain)


URL_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}  # a URL's defaults
WS_PORT = 8080  # --ws without -p: the WebSocket listener of the usual classroom config


def apply_url(args: argparse.Namespace) -> None:
    """``-L URL``: set host, port, user, password, TLS and transport from it (raises
    ``UsageError``). As mosquitto_pub/sub's -L, an mqtt(s):// URL's path is the topic; a
    ws(s):// URL's path is the WebSocket resource (``/mqtt`` when none), as MQTT.js and paho
    take it, and the topic comes from -t."""
    from urllib.parse import unquote, urlsplit

    args.websocket_path = "/mqtt"
    if args.url is None:
        return
    try:
        url = urlsplit(args.url)
        port = url.port
    except ValueError as exc:
        raise UsageError(f"-L {args.url}: {exc}.") from None
    if url.scheme not in URL_PORTS or not url.hostname:
        raise UsageError(f"-L {args.url}: expected mqtt://, mqtts://, ws:// or wss:// "
                         "followed by a host.")
    args.host = url.hostname
    args.port = port if port is not None else URL_PORTS[url.scheme]
    if url.username is not None:
        args.username = unquote(url.username)
    if url.password is not None:
        args.password = unquote(url.password)
    args.url_tls = url.scheme in ("mqtts", "wss")
    if url.scheme in ("ws", "wss"):
        args.ws = True
        args.websocket_path = (url.path or "/mqtt") + (f"?{url.query}" if url.query else "")
    elif url.path.strip("/"):
        topic = unquote(url.path[1:])
        if isinstance(args.topic, list):
            args.topic.append(topic)
        elif args.topic is None:
            args.topic = topic


SUB_RECONNECT_DELAY = 1.0  # libmosquitto's default reconnect_delay, constant (no back-off)


def make_client(args: argparse.Namespace, tool: str,
                on_event: Callable | None = None, **options) -> Client:
    """A ``Client`` configured from the common options (raises ``UsageError``)."""
    if not hasattr(args, "websocket_path"):
        apply_url(args)
    version = VERSIONS[args.protocol_version]
    if args.password is not None and args.username is None and version != MQTT_5:
        raise UsageError("A password was given without a user name (MQTT 3.1/3.1.1 forbid it).")
    problem = port_problem(args.port, zero_allowed=False)
    if problem is not None:
        raise UsageError(f"-p {args.port}: {problem}.")
    tls = _tls_context(args)
    if tls is None and getattr(args, "url_tls", False):
        tls = ssl.create_default_context()  # mqtts:// or wss:// without --cafile: system CAs
        if args.insecure:
            tls.check_hostname = False
    default_port = WS_PORT if args.ws else (8883 if tls else 1883)
    port = args.port if args.port is not None else default_port
    session_expiry = SESSION_NEVER_EXPIRES if args.disable_clean_session and version == MQTT_5 \
        else 0
    if args.will_topic is not None:
        _check(validate_topic_name, args.will_topic, version)
    return Client(args.host, port, client_id=_client_id(args, tool, version), version=version,
                  keepalive=args.keepalive, clean_session=not args.disable_clean_session,
                  session_expiry=session_expiry, username=args.username,
                  password=args.password, will=_will(args), tls=tls,
                  on_event=on_event, transport="websockets" if args.ws else "tcp",
                  websocket_path=args.websocket_path, **options)


def _check(validate: Callable, topic: str, version: int) -> None:
    try:
        validate(topic, version)
    except Exception as exc:  # the topic rules raise InvalidTopic, naming the spec statement
        raise UsageError(f"Invalid topic '{topic}': {exc}") from None


class _Output:
    """stdout as bytes, flushed per write: a pipe reader sees each message as it arrives."""

    def __init__(self, stream: BinaryIO | None = None):
        self.stream = stream if stream is not None else sys.stdout.buffer

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def line(self, text: str) -> None:
        self.write(text.encode() + b"\n")


def _debug_printer(out: _Output, enabled: bool, version: int) -> Callable | None:
    if not enabled:
        return None

    last_mid = 0

    def on_event(event) -> None:
        nonlocal last_mid
        if event.__class__ is ev.PacketSent:
            packet = event.packet
            if isinstance(packet, (Publish, Subscribe, Unsubscribe)):
                last_mid = packet.packet_id or last_mid + 1
        for line in client_debug_lines(event, version, last_mid):
            out.line(line)
        if event.__class__ is ev.Subscribed:  # mosquitto_sub's own line after SUBACK
            codes = ", ".join(str(code) for code in event.granted)
            out.line(f"Subscribed (mid: {event.packet_id}): {codes}")
    return on_event


def _refused_text(error: ConnectionRefused, version: int) -> str:
    if version == MQTT_5:
        return f"Connection error: {error.reason}"
    sentence = CONNACK_SENTENCES.get(error.reason_code, error.reason)
    return f"Connection error: {sentence}"


async def _connect(client: Client) -> int:
    """Connect; 0, or the exit status after printing why not (as mosquitto words it)."""
    try:
        await client.connect()
    except ConnectionRefused as exc:
        print(_refused_text(exc, client.version), file=sys.stderr)
        return exc.reason_code or 1
    except socket.gaierror as exc:  # before OSError: its errno is getaddrinfo's, not errno's
        print(f"Error: cannot resolve host {client.host}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except ssl.SSLError as exc:  # before OSError, whose errno means nothing here
        detail = getattr(exc, "verify_message", None) or exc.reason or str(exc)
        print(f"Error: TLS: {detail}", file=sys.stderr)
        return 1
    except (OSError, asyncio.TimeoutError) as exc:
        errno = getattr(exc, "errno", None)
        text = os.strerror(errno) if errno else str(exc)  # "Connection refused", as mosquitto
        print(f"Error: {text or type(exc).__name__}", file=sys.stderr)
        return 1
    except ConnectionLost as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM end the program with a clean DISCONNECT (so no will is sent)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass


def _run(main, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(main(args))
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------------------------------------
# -F: mosquitto_sub's output format

_ESCAPES = {"\\": b"\\", "0": b"\0", "a": b"\a", "e": b"\x1b", "n": b"\n", "r": b"\r",
            "t": b"\t", "v": b"\v"}
_PADDED = set("lmxXAEFS")  # numbers and hex: the 0 flag applies
_MAX_WIDTH = set("tICR")  # a .precision truncates these


def format_message(fmt: str, message: Message, now: float | None = None,
                   pretty: bool = False) -> bytes:
    """Render ``message`` with a mosquitto_sub ``-F`` format string (no trailing newline).

    Supported: %% %t %p %q %r %m %l %x %X %I (ISO-8601 time) %U (Unix time), %j and %J
    (JSON, mqttsim.net.sub_json; ``pretty`` as ``--pretty``), the MQTT 5 properties %A %C
    %D %E %F %P %R %S, flags ``-``
    and ``0``, width and ``.precision``; escapes \\\\ \\0 \\a \\e \\n \\r \\t \\v; ``@X``
    passed to strftime as %X, @@ and @N (nanoseconds). Raises ``UsageError`` naming an
    unknown sequence, as mosquitto_sub does.
    """
    now = time.time() if now is None else now
    out = bytearray()
    i, n = 0, len(fmt)
    while i < n:
        char = fmt[i]
        if char == "%":
            i, piece = _percent(fmt, i + 1, message, now, pretty)
            out += piece
        elif char == "@":
            if i + 1 >= n:
                raise UsageError("Incomplete format specifier '@'.")
            code = fmt[i + 1]
            if code == "@":
                out += b"@"
            elif code == "N":
                out += f"{int(now * 1e9) % 1_000_000_000:09d}".encode()
            else:
                out += datetime.fromtimestamp(now).strftime("%" + code).encode()
            i += 2
        elif char == "\\":
            if i + 1 >= n or fmt[i + 1] not in _ESCAPES:
                shown = fmt[i + 1] if i + 1 < n else ""
                raise UsageError(f"Invalid escape specifier '{shown}'.")
            out += _ESCAPES[fmt[i + 1]]
            i += 2
        else:
            out += char.encode()
            i += 1
    return bytes(out)


def _percent(fmt: str, i: int, message: Message, now: float,
             pretty: bool = False) -> tuple[int, bytes]:
    n = len(fmt)
    left = zero = False
    while i < n and fmt[i] in "-0":
        left, zero = left or fmt[i] == "-", zero or fmt[i] == "0"
        i += 1
    start = i
    while i < n and fmt[i].isdigit():
        i += 1
    width = int(fmt[start:i]) if i > start else 0
    precision = None
    if i < n and fmt[i] == ".":
        start = i = i + 1
        while i < n and fmt[i].isdigit():
            i += 1
        precision = int(fmt[start:i]) if i > start else 0
    if i >= n:
        raise UsageError("Incomplete format specifier '%'.")
    code = fmt[i]
    if code in "jJ":  # printed whole, without width or precision (as mosquitto_sub)
        return i + 1, message_json(message, now, code == "J", pretty, _error_line)
    value = _field(code, message, now)
    if precision is not None and code in _MAX_WIDTH:
        value = value[:precision]
    if len(value) < width:
        pad = width - len(value)
        if left:
            value += b" " * pad
        else:
            value = (b"0" if zero and code in _PADDED else b" ") * pad + value
    return i + 1, value


# mosquitto_sub's -F codes for MQTT 5 properties (%A topic alias, %C content type, %D
# correlation data, %E message expiry interval, %F payload format indicator, %P user
# properties as name:value, %R response topic, %S subscription identifier)
_V5_FIELDS = {"A": "topic_alias", "C": "content_type", "D": "correlation_data",
              "E": "message_expiry_interval", "F": "payload_format_indicator",
              "P": "user_properties", "R": "response_topic", "S": "subscription_identifiers"}


def _error_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _field(code: str, message: Message, now: float) -> bytes:
    if code == "%":
        return b"%"
    if code == "t":
        return message.topic.encode()
    if code == "p":
        return message.payload
    if code == "q":
        return str(message.qos).encode()
    if code == "r":
        return b"1" if message.retain else b"0"
    if code == "m":
        return str(message.packet_id or 0).encode()
    if code == "l":
        return str(len(message.payload)).encode()
    if code == "x":
        return message.payload.hex().encode()
    if code == "X":
        return message.payload.hex().upper().encode()
    if code == "I":
        return datetime.fromtimestamp(now).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z").encode()
    if code == "U":
        return f"{now:.9f}".encode()
    if code in _V5_FIELDS:  # MQTT 5 properties: empty when the message has none
        props = message.properties
        value = getattr(props, _V5_FIELDS[code]) if props is not None else None
        if code == "P":
            return b" ".join(f"{name}:{text}".encode() for name, text in value or ())
        if code == "S":
            value = value[0] if value else None
        if value is None:
            return b""
        return bytes(value) if code == "D" else str(value).encode()
    raise UsageError(f"Invalid format specifier '{code}'.")


# ---------------------------------------------------------------------------------------------
# mqttsim sub


def add_sub_arguments(parser: argparse.ArgumentParser) -> None:
    """mosquitto_sub's options (``-h`` is the host; help is ``--help``)."""
    _add_common(parser)
    parser.add_argument("-t", "--topic", action="append", default=[],
                        help="topic filter to subscribe to (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print 'topic payload' rather than the payload alone")
    parser.add_argument("-C", dest="count", type=int, default=0,
                        help="disconnect and exit after this many messages")
    parser.add_argument("-W", dest="timeout", type=int, default=0,
                        help="exit (status 27) after this many seconds")
    parser.add_argument("-N", dest="no_newline", action="store_true",
                        help="no end of line after each message")
    parser.add_argument("-R", dest="no_retained", action="store_true",
                        help="do not print stale (retained) messages")
    parser.add_argument("-T", "--filter-out", action="append", default=[],
                        help="do not print messages on topics matching this filter (repeatable)")
    parser.add_argument("-U", "--unsubscribe", action="append", default=[],
                        help="topic filter to unsubscribe from (repeatable; with -c)")
    parser.add_argument("-F", dest="format", default=None,
                        help="output format: %%t topic, %%p payload, %%q QoS, %%r retain, "
                             "%%m message id, %%l length, %%x hex payload, %%I ISO time, "
                             "%%j / %%J JSON, \\n, \\t ... (see mosquitto_sub(1))")
    parser.add_argument("--pretty", action="store_true",
                        help="print %%j / %%J JSON on several lines, indented")


def run_sub(args: argparse.Namespace) -> int:
    return _run(_sub_main, args)


def render(args: argparse.Namespace, message: Message) -> bytes:
    """One message as mosquitto_sub prints it with these options (newline included)."""
    if args.format is not None:
        text = format_message(args.format, message, pretty=args.pretty)
    elif args.verbose:
        text = message.topic.encode() + b" " + (message.payload or b"(null)")
    else:
        text = message.payload
    return text if args.no_newline else text + b"\n"


def _check_sub_args(args: argparse.Namespace, version: int) -> None:
    if not args.topic and not args.unsubscribe:
        raise UsageError("You must specify a topic to subscribe to.")
    for topic_filter in (*args.topic, *args.unsubscribe, *args.filter_out):
        _check(validate_topic_filter, topic_filter, version)
    if args.format is not None:  # refuse a bad format before connecting, as mosquitto does
        format_message(args.format, Message("t", b""))
    if args.count < 0 or args.timeout < 0:
        raise UsageError("-C and -W take a positive number.")


async def _sub_main(args: argparse.Namespace) -> int:
    out = _Output()
    apply_url(args)
    version = VERSIONS[args.protocol_version]
    _check_sub_args(args, version)
    client = make_client(args, "sub", _debug_printer(out, args.debug, version),
                         reconnect=True, reconnect_delay=SUB_RECONNECT_DELAY,
                         reconnect_max_delay=SUB_RECONNECT_DELAY)
    status = await _connect(client)
    if status:
        return status
    stop = asyncio.Event()
    _stop_on_signals(stop)
    consumer = asyncio.create_task(_consume(client, args, out))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({consumer, stopper}, timeout=args.timeout or None,
                                 return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if consumer in done:
        status = consumer.result()
    else:
        consumer.cancel()
        status = 0 if stopper in done else EXIT_TIMEOUT
        if status == EXIT_TIMEOUT:
            print("Timed out", file=sys.stderr)
    await client.disconnect()
    return status


async def _consume(client: Client, args: argparse.Namespace, out: _Output) -> int:
    """Subscribe, unsubscribe, then print messages; returns the exit status."""
    try:
        if args.topic:
            granted = await client.subscribe(args.topic, args.qos)
            if all(code >= 0x80 for code in granted):
                print("All subscription requests were denied.", file=sys.stderr)
                return 1
        if args.unsubscribe:
            await client.unsubscribe(args.unsubscribe)
        received = 0
        async for message in client.messages:
            if message.retain and args.no_retained:
                continue
            if any(topic_matches(f, message.topic) for f in args.filter_out):
                continue
            out.write(render(args, message))
            received += 1
            if args.count and received >= args.count:
                return 0
    except ConnectionRefused as exc:  # on a reconnect: mosquitto_sub's words, and it ends
        print(_refused_text(exc, client.version), file=sys.stderr)
        return exc.reason_code or 1
    except ClientError as exc:  # the connection broke while subscribing
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# mqttsim pub


def add_pub_arguments(parser: argparse.ArgumentParser) -> None:
    """mosquitto_pub's options (``-h`` is the host; help is ``--help``)."""
    _add_common(parser)
    parser.add_argument("-t", "--topic", default=None, help="topic to publish to")
    parser.add_argument("-r", "--retain", action="store_true", help="retain the message")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", default=None, help="the message to send")
    source.add_argument("-f", "--file", default=None, help="send this file's content")
    source.add_argument("-l", "--stdin-line", action="store_true",
                        help="send each line of stdin as a message")
    source.add_argument("-n", "--null-message", action="store_true",
                        help="send an empty (zero length) message")
    source.add_argument("-s", "--stdin-file", action="store_true",
                        help="send all of stdin as one message")


def run_pub(args: argparse.Namespace) -> int:
    return _run(_pub_main, args)


def _payload(args: argparse.Namespace) -> bytes | None:
    """The single message to send (None for -l, which sends lines as they come)."""
    if args.message is not None:
        return args.message.encode()
    if args.null_message:
        return b""
    if args.file is not None:
        try:
            with open(args.file, "rb") as handle:
                return handle.read()
        except OSError:
            raise UsageError(f'Unable to open file "{args.file}".') from None
    if args.stdin_file:
        return sys.stdin.buffer.read()
    if args.stdin_line:
        return None
    raise UsageError("Both topic and message must be supplied.")


async def _pub_main(args: argparse.Namespace) -> int:
    out = _Output()
    apply_url(args)
    version = VERSIONS[args.protocol_version]
    if args.topic is None:
        raise UsageError("Both topic and message must be supplied.")
    _check(validate_topic_name, args.topic, version)
    payload = _payload(args)
    client = make_client(args, "pub", _debug_printer(out, args.debug, version))
    status = await _connect(client)
    if status:
        return status
    try:
        if payload is not None:
            codes = [await client.publish(args.topic, payload, args.qos, args.retain)]
        else:
            codes = await _publish_lines(client, args)
    except ClientError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    failed = [code for code in codes if code >= 0x80]
    for code in failed:
        print(f"Warning: Publish failed: {reason_name(code, version, 'PUBACK')}.",
              file=sys.stderr)
    await client.disconnect()
    return 1 if failed else 0


async def _publish_lines(client: Client, args: argparse.Namespace) -> list[int]:
    """-l: one message per line of stdin, sent as each line arrives (the newline is not
    part of the message; an empty line is an empty message, as with mosquitto_pub)."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task] = []
    while True:
        line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            break
        pending.append(asyncio.ensure_future(
            client.publish(args.topic, line.rstrip(b"\r\n"), args.qos, args.retain)))
        await asyncio.sleep(0)  # let the publish reach the engine in order
    return list(await asyncio.gather(*pending))
