"""The protocol layer's own error types.

Every error names the normative statement it enforces (``rule``, e.g. ``"MQTT-3.1.2-24"``)
when there is one, so a log line or a failed test points straight at the spec. The
``reason_code`` is what an MQTT 5 peer would put in its DISCONNECT or CONNACK.
"""

from __future__ import annotations


class MQTTError(Exception):
    """Base class of everything ``mqttsim.protocol`` raises on bad input."""

    default_reason_code = 0x82  # Protocol Error

    def __init__(self, message: str, rule: str | None = None, *, reason_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.reason_code = self.default_reason_code if reason_code is None else reason_code
        #: whole packets the decoder completed in the same ``feed`` call before this error,
        #: so a driver can still act on them (nothing already received is lost).
        self.decoded: list = []

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}" if self.rule else self.message


class MalformedPacket(MQTTError):
    """The bytes do not form a valid packet (MQTT 5 reason code 0x81)."""

    default_reason_code = 0x81


class ProtocolError(MQTTError):
    """The packet is well formed but breaks a protocol rule (MQTT 5 reason code 0x82)."""

    default_reason_code = 0x82


class PacketTooLarge(MalformedPacket):
    """A packet exceeds the receiver's maximum packet size (MQTT 5 reason code 0x95)."""

    default_reason_code = 0x95


class InvalidTopic(ProtocolError):
    """A topic name or topic filter breaks the topic rules of section 4.7."""

    default_reason_code = 0x90  # Topic Name invalid; filters use 0x8F


class UnsupportedProtocolVersion(ProtocolError):
    """CONNECT names a protocol level this implementation does not speak.

    The broker answers with CONNACK 0x01 (3.1/3.1.1) or 0x84 (5.0) and closes
    [MQTT-3.1.2-2]; ``protocol_level`` is what the client asked for.
    """

    default_reason_code = 0x84

    def __init__(self, message: str, rule: str | None = None, *, protocol_name: str = "",
                 protocol_level: int = 0):
        super().__init__(message, rule)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level
