"""Primitive MQTT data types: variable byte integers, UTF-8 strings, binary data.

Shared by the encoder, the decoder and the property codec. The rule ids differ between
versions (3.1.1 section 1.5.3 vs 5.0 section 1.5.4), so string helpers take the version.
"""

from __future__ import annotations

import struct

from .errors import MalformedPacket

UINT16 = struct.Struct("!H")
UINT32 = struct.Struct("!I")
MAX_VARINT = 268_435_455  # largest value four variable-byte-integer bytes can hold


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# Remaining lengths below 16 KiB cover almost every packet: look them up instead of looping.
_SMALL_VARINTS = [_varint_bytes(n) for n in range(16384)]


def encode_varint(value: int) -> bytes:
    """Encode a variable byte integer in the fewest bytes [MQTT-1.5.5-1]."""
    if 0 <= value < 16384:
        return _SMALL_VARINTS[value]
    if value < 0 or value > MAX_VARINT:
        raise MalformedPacket(f"variable byte integer {value} is outside 0..{MAX_VARINT}")
    return _varint_bytes(value)


def decode_varint(buf, pos: int, end: int, version: int) -> tuple[int, int]:
    """Decode a variable byte integer at ``pos``; return (value, position after it)."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise MalformedPacket("variable byte integer runs past the end of the packet")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 28:
            raise MalformedPacket("variable byte integer longer than 4 bytes")
    if pos - start > 1 and byte == 0:
        raise MalformedPacket("variable byte integer not encoded in the fewest bytes",
                              "MQTT-1.5.5-1" if version == 5 else None)
    return value, pos


def string_rules(version: int) -> tuple[str, str]:
    """The (well-formed UTF-8, no U+0000) statement ids for ``version``."""
    return ("MQTT-1.5.4-1", "MQTT-1.5.4-2") if version == 5 else ("MQTT-1.5.3-1", "MQTT-1.5.3-2")


def encode_string(text: str, version: int, what: str = "string") -> bytes:
    """Length-prefixed UTF-8; refuses surrogates, U+0000 and more than 65535 bytes."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPacket(f"{what} {text!r} is not well-formed UTF-8 (it holds a surrogate)",
                              string_rules(version)[0]) from None
    except AttributeError:
        raise MalformedPacket(f"{what} must be a str, not {type(text).__name__}") from None
    if "\x00" in text:
        raise MalformedPacket(f"{what} {text!r} contains U+0000", string_rules(version)[1])
    if len(data) > 65535:
        raise MalformedPacket(f"{what} is {len(data)} bytes long; the limit is 65535",
                              "MQTT-4.7.3-3" if what.startswith("topic") else None)
    return UINT16.pack(len(data)) + data


def encode_binary(data: bytes, what: str = "binary data") -> bytes:
    """Length-prefixed binary data (password, correlation data, will payload)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedPacket(f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > 65535:
        raise MalformedPacket(f"{what} is {len(data)} bytes long; the limit is 65535")
    return UINT16.pack(len(data)) + bytes(data)


def decode_string(buf, pos: int, end: int, version: int, what: str = "string") -> tuple[str, int]:
    """Decode a length-prefixed UTF-8 string, enforcing section 1.5.3 (1.5.4 in MQTT 5)."""
    if pos + 2 > end:
        raise MalformedPacket(f"{what} length runs past the end of the packet")
    length = (buf[pos] << 8) | buf[pos + 1]
    pos += 2
    stop = pos + length
    if stop > end:
        raise MalformedPacket(f"{what} of {length} bytes runs past the end of the packet")
    try:
        text = str(buf[pos:stop], "utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what} is not well-formed UTF-8 ({exc.reason} at byte {exc.start})",
                              string_rules(version)[0]) from None
    if "\x00" in text:
        raise MalformedPacket(f"{what} {text!r} contains U+0000", string_rules(version)[1])
    return text, stop


def decode_binary(buf, pos: int, end: int, what: str = "binary data") -> tuple[bytes, int]:
    """Decode length-prefixed binary data."""
    if pos + 2 > end:
        raise MalformedPacket(f"{what} length runs past the end of the packet")
    length = (buf[pos] << 8) | buf[pos + 1]
    pos += 2
    stop = pos + length
    if stop > end:
        raise MalformedPacket(f"{what} of {length} bytes runs past the end of the packet")
    return bytes(buf[pos:stop]), stop
