"""``mqttsim rr``: one MQTT 5 request and its response, like ``mosquitto_rr``.

What mosquitto_rr(1) 2.0 does, and so this does: connect (MQTT 5 unless ``-V`` says
otherwise), subscribe to the response topic ``-e``, and once the SUBACK grants it, publish
the request to ``-t`` with the Response Topic property set to ``-e`` (MQTT 5 section 4.10)
and whatever ``-D publish ...`` adds, typically ``correlation-data``; then print the first
message that arrives on the response topic the way ``mosquitto_sub`` would (``-v``, ``-F``,
``-N``, ``--pretty``), disconnect and exit 0. ``-W`` bounds the wait (``Timed out``,
status 27). Like mosquitto_rr, the first message on the response topic is the answer,
whatever its Correlation Data: the responder copies it back [MQTT 5 4.10.2] for the
requester's own bookkeeping, which ``-F %D`` or ``%j`` shows.

A responder, for the lessons, is two commands:
``mqttsim sub -t req -F '%R %D %p' | while read topic id body; do ...; done`` or any MQTT 5
client that publishes to the Response Topic with the Correlation Data it received.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..protocol.packets import MQTT_5
from ..protocol.properties import NO_PROPERTIES, Properties
from ..protocol.reason_codes import reason_name
from ..protocol.topics import validate_topic_name
from .cli_clients import (EXIT_TIMEOUT, VERSIONS, UsageError, _add_common, _check, _connect,
                          _debug_printer, _Output, _payload, _run, format_message,
                          make_client, render)
from .client import ClientError, Message

# -D publish <property> <value>: the PUBLISH properties mosquitto_rr takes, and how to read
# each value (mosquitto's client_props.c names).
PUBLISH_PROPERTIES = {
    "correlation-data": ("correlation_data", lambda v: v.encode()),
    "content-type": ("content_type", str),
    "message-expiry-interval": ("message_expiry_interval", int),
    "payload-format-indicator": ("payload_format_indicator", int),
    "user-property": ("user_properties", None),  # takes a name and a value
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """mosquitto_rr's options (``-h`` is the host; help is ``--help``)."""
    _add_common(parser)
    parser.set_defaults(protocol_version="mqttv5")  # as mosquitto_rr
    parser.add_argument("-t", "--topic", default=None, help="topic the request is sent to")
    parser.add_argument("-e", dest="response_topic", default=None,
                        help="response topic: subscribed to, and sent as the request's "
                             "Response Topic")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", default=None, help="the request's payload")
    source.add_argument("-f", "--file", default=None, help="send this file's content")
    source.add_argument("-n", "--null-message", action="store_true",
                        help="send an empty (zero length) request")
    source.add_argument("-s", "--stdin-file", action="store_true",
                        help="send all of stdin as the request")
    parser.add_argument("-r", "--retain", action="store_true", help="retain the request")
    parser.add_argument("-D", dest="properties", nargs="+", action="append", default=[],
                        metavar="ARG", help="publish PROPERTY VALUE (correlation-data, "
                        "content-type, message-expiry-interval, payload-format-indicator, "
                        "user-property NAME VALUE)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print 'topic payload' rather than the payload alone")
    parser.add_argument("-N", dest="no_newline", action="store_true",
                        help="no end of line after the response")
    parser.add_argument("-F", dest="format", default=None,
                        help="output format, as mosquitto_sub's -F")
    parser.add_argument("--pretty", action="store_true", help="indented %%j / %%J JSON")
    parser.add_argument("-W", dest="timeout", type=int, default=0,
                        help="give up (status 27) after this many seconds")


def run(args: argparse.Namespace) -> int:
    return _run(_rr_main, args)


def request_properties(args: argparse.Namespace) -> Properties:
    """The request's PUBLISH properties: Response Topic and the ``-D publish`` ones."""
    fields: dict = {"response_topic": args.response_topic}
    users = []
    for item in args.properties:
        if len(item) < 3 or item[0] != "publish":
            raise UsageError(f"-D {' '.join(item)}: only '-D publish PROPERTY VALUE' is "
                             "supported")
        name = item[1]
        if name == "response-topic":
            raise UsageError("Error in PUBLISH properties: Duplicate response topic.")
        if name not in PUBLISH_PROPERTIES:
            raise UsageError(f"Invalid property name '{name}' for publish.")
        field, convert = PUBLISH_PROPERTIES[name]
        if convert is None:
            if len(item) != 4:
                raise UsageError("-D publish user-property needs a name and a value.")
            users.append((item[2], item[3]))
            continue
        if len(item) != 3:
            raise UsageError(f"-D publish {name} takes one value.")
        try:
            fields[field] = convert(item[2])
        except ValueError:
            raise UsageError(f"Invalid value '{item[2]}' for property {name}.") from None
    if users:
        fields["user_properties"] = tuple(users)
    return Properties(**fields)


def _check_args(args: argparse.Namespace, version: int) -> Properties:
    if args.topic is None or args.response_topic is None:
        raise UsageError("You must specify a topic (-t) and a response topic (-e).")
    _check(validate_topic_name, args.topic, version)
    _check(validate_topic_name, args.response_topic, version)  # no wildcards, as mosquitto
    if args.format is not None:
        format_message(args.format, Message("t", b""))
    if args.timeout < 0:
        raise UsageError("-W takes a positive number.")
    props = request_properties(args)
    return props if version == MQTT_5 else NO_PROPERTIES  # 3.1.1 has no properties


async def _rr_main(args: argparse.Namespace) -> int:
    out = _Output()
    version = VERSIONS[args.protocol_version]
    properties = _check_args(args, version)
    payload = _payload(args)
    client = make_client(args, "rr", _debug_printer(out, args.debug, version))
    status = await _connect(client)
    if status:
        return status
    exchange = asyncio.create_task(_exchange(client, args, payload, properties, out))
    try:
        status = await asyncio.wait_for(exchange, args.timeout or None)
    except asyncio.TimeoutError:
        print("Timed out", file=sys.stderr)
        status = EXIT_TIMEOUT
    await client.disconnect()
    return status


async def _exchange(client, args: argparse.Namespace, payload: bytes,
                    properties: Properties, out: _Output) -> int:
    """Subscribe to the response topic, send the request, print the first response."""
    try:
        [granted] = await client.subscribe(args.response_topic, args.qos)
        if granted >= 0x80:
            print(reason_name(granted, client.version, "SUBACK"), file=sys.stderr)
            return 1
        code = await client.publish(args.topic, payload, args.qos, args.retain, properties)
        if code >= 0x80:
            print(f"Warning: Publish failed: {reason_name(code, client.version, 'PUBACK')}.",
                  file=sys.stderr)
        async for message in client.messages:
            if message.topic == args.response_topic:
                out.write(render(args, message))
                return 0
    except ClientError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 1
