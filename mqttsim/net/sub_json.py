"""``mqttsim sub -F %j`` and ``%J``: a message as JSON, byte for byte as mosquitto_sub prints it.

mosquitto_sub(1) (2.0) describes ``%j`` as "JSON output of message parameters and timestamp,
with a quoted and escaped payload" and ``%J`` as the same "with the payload decoded as JSON"
(an error line on stderr for a payload that is not JSON). Debian's build prints them with the
cJSON library (client/sub_client_output.c, json_print), and scripts parse, diff and grep
that text, so this module reproduces cJSON's printing rather than Python's ``json.dumps``:

- keys in the order ``tst, topic, qos, retain, payloadlen, mid`` (QoS > 0 only),
  ``properties`` (MQTT 5, when the message has any), ``payload``;
- ``tst`` is local time as ``2020-05-06T21:48:00.123456Z+0000`` (mosquitto writes the
  microseconds, a literal ``Z`` and then the ``%z`` offset);
- strings escape ``"`` ``\\`` and control characters (``\\b \\f \\n \\r \\t``, others
  ``\\u00XX``) and leave every other byte as it is, UTF-8 or not; ``%j``'s payload is the
  text up to its first NUL byte (cJSON takes a C string), an empty payload is ``null``;
- numbers as cJSON 1.7.15 (Debian 12) prints them, all as doubles: ``%1.15g``, or
  ``%1.17g`` when that does not read back the same (so ``-0`` stays ``-0`` and ``1e10`` is
  ``10000000000``);
- MQTT 5 properties in wire order as mosquitto_sub prints them; we no longer have the wire
  order once decoded, so they come in the order our broker's encoder writes them (the same
  text as mosquitto_sub through ``mqttsim broker``; through mosquitto's broker, which
  writes user properties first, the keys come in another order);
- ``--pretty``: cJSON's formatted style (tabs, ``"key":<TAB>value``, arrays on one line).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

_EPSILON = sys.float_info.epsilon
_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
            0x0D: b"\\r", 0x09: b"\\t"}


class _Object(list):
    """A JSON object as its (key, value) pairs, so that order and repeated keys are kept."""


class _Raw(bytes):
    """Bytes already printed as a JSON string: the payload of ``%j``."""


class NotJson(ValueError):
    """The payload is not a JSON text (``%J``)."""


def message_json(message: Any, now: float, decode_payload: bool, pretty: bool = False,
                 on_error: Callable[[str], None] | None = None) -> bytes:
    """``%j`` (``decode_payload`` False) or ``%J`` of ``message`` (mqttsim.net.client
    Message) received at ``now``. For ``%J`` with a payload that is not JSON, ``on_error``
    gets mosquitto_sub's error line and nothing is printed."""
    fields = _Object([
        ("tst", timestamp(now)), ("topic", message.topic), ("qos", message.qos),
        ("retain", int(bool(message.retain))), ("payloadlen", len(message.payload))])
    if message.qos > 0:
        fields.append(("mid", message.packet_id or 0))
    properties = _properties(message.properties)
    if properties:
        fields.append(("properties", properties))
    payload: Any
    if not message.payload:
        payload = None
    elif decode_payload:
        try:
            payload = parse(message.payload)
        except NotJson:
            if on_error is not None:
                on_error(f"Error: Message payload is not valid JSON on topic "
                         f"{message.topic}.")
            return b""
    else:
        payload = _Raw(string(message.payload.split(b"\0", 1)[0]))
    fields.append(("payload", payload))
    return dumps(fields, pretty)


def timestamp(now: float) -> str:
    """mosquitto_sub's ``tst``: local time, microseconds, a literal Z, the UTC offset."""
    moment = datetime.fromtimestamp(now).astimezone()
    return (moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"
            + moment.strftime("%z"))


def _properties(props: Any) -> _Object:
    """MQTT 5 properties in the order our broker's encoder writes them (mosquitto_sub
    prints them in wire order), user properties gathered in one object where the first
    one stands."""
    out = _Object()
    if props is None:
        return out
    if props.payload_format_indicator is not None:
        out.append(("payload-format-indicator", props.payload_format_indicator))
    if props.message_expiry_interval is not None:
        out.append(("message-expiry-interval", props.message_expiry_interval))
    if props.content_type is not None:
        out.append(("content-type", props.content_type))
    if props.response_topic is not None:
        out.append(("response-topic", props.response_topic))
    if props.correlation_data is not None:
        data = bytes(props.correlation_data).split(b"\0", 1)[0]
        out.append(("correlation-data", _Raw(string(data))))
    for identifier in props.subscription_identifiers or ():
        out.append(("subscription-identifier", identifier))
    if props.topic_alias is not None:
        out.append(("topic-alias", props.topic_alias))
    if props.user_properties:
        out.append(("user-properties", _Object(props.user_properties)))
    return out


# -- cJSON's printing ----------------------------------------------------------------------

def string(value: bytes | str) -> bytes:
    """A JSON string as cJSON prints it (quotes included)."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    out = bytearray(b'"')
    for byte in data:
        escape = _ESCAPES.get(byte)
        if escape is not None:
            out += escape
        elif byte < 0x20:
            out += b"\\u%04x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def number(value: float) -> bytes:
    """cJSON 1.7.15's print_number: ``%1.15g``, or ``%1.17g`` when that does not read
    back within a relative DBL_EPSILON; NaN and infinities as null."""
    d = float(value)
    if math.isnan(d) or math.isinf(d):
        return b"null"
    text = "%1.15g" % d
    test = float(text)
    if abs(test - d) > max(abs(test), abs(d)) * _EPSILON:
        text = "%1.17g" % d
    return text.encode()


def dumps(value: Any, pretty: bool = False, depth: int = 1) -> bytes:
    """cJSON_PrintUnformatted (or cJSON_Print with ``pretty``) of a value."""
    if isinstance(value, _Raw):
        return bytes(value)
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, (int, float)):  # bools are handled above
        return number(value)
    if isinstance(value, (str, bytes)):
        return string(value)
    if not isinstance(value, _Object):  # an array
        separator = b", " if pretty else b","
        return b"[" + separator.join(dumps(item, pretty, depth + 1) for item in value) + b"]"
    pairs = value  # an object
    if not pretty:
        return b"{" + b",".join(string(key) + b":" + dumps(item, pretty, depth + 1)
                                for key, item in pairs) + b"}"
    inner = b"\t" * depth
    body = b",\n".join(inner + string(key) + b":\t" + dumps(item, pretty, depth + 1)
                       for key, item in pairs)
    return b"{\n" + body + (b"\n" if pairs else b"") + b"\t" * (depth - 1) + b"}"


def parse(payload: bytes) -> Any:
    """A payload as a JSON value (objects as _Object), or NotJson. NaN and Infinity are
    refused, as cJSON refuses them."""
    def refuse(name: str) -> Any:
        raise NotJson(name)

    try:
        return json.loads(payload.decode("utf-8"), object_pairs_hook=_Object,
                          parse_constant=refuse, parse_int=float)  # all doubles, as cJSON
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotJson(str(exc)) from None
