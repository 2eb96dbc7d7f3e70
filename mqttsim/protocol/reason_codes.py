"""Return codes (3.1/3.1.1) and reason codes (5.0), with the sets each packet may carry.

Names follow the specifications so log lines read like the spec tables; the per-packet sets
let the codec refuse a reason code the spec does not define for that packet
(e.g. [MQTT-3.4.2-1] for PUBACK).
"""

from __future__ import annotations

# MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 table 3.1).
CONNACK_V3 = {
    0x00: "Connection Accepted",
    0x01: "Connection Refused, unacceptable protocol version",
    0x02: "Connection Refused, identifier rejected",
    0x03: "Connection Refused, Server unavailable",
    0x04: "Connection Refused, bad user name or password",
    0x05: "Connection Refused, not authorized",
}
SUBACK_FAILURE_V3 = 0x80

# MQTT 5 reason codes (5.0 section 2.4). 0x00 means Success / Normal disconnection /
# Granted QoS 0 depending on the packet; ``reason_name`` picks the right word.
REASON_NAMES_V5 = {
    0x00: "Success",
    0x01: "Granted QoS 1",
    0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message",
    0x10: "No matching subscribers",
    0x11: "No subscription existed",
    0x18: "Continue authentication",
    0x19: "Re-authenticate",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x96: "Message rate too high",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9A: "Retain not supported",
    0x9B: "QoS not supported",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}

CONNACK_V5 = frozenset({0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                        0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F})
PUBACK_V5 = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
PUBREC_V5 = PUBACK_V5
PUBREL_V5 = frozenset({0x00, 0x92})
PUBCOMP_V5 = PUBREL_V5
SUBACK_V5 = frozenset({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2})
UNSUBACK_V5 = frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})
DISCONNECT_V5 = frozenset({0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
                           0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B,
                           0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2})
AUTH_V5 = frozenset({0x00, 0x18, 0x19})

# v3.1.1 CONNACK code to the closest MQTT 5 reason code, and back, for engines that speak both.
CONNACK_V3_TO_V5 = {0: 0x00, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


def reason_name(code: int, version: int, packet: str = "") -> str:
    """A readable name for ``code`` as carried by ``packet`` ("CONNACK", "SUBACK", ...)."""
    if version < 5:
        if packet == "CONNACK":
            return CONNACK_V3.get(code, f"unknown return code {code}")
        if packet == "SUBACK":
            return "Failure" if code == SUBACK_FAILURE_V3 else f"Granted QoS {code}"
        return f"0x{code:02X}"
    if code == 0x00:
        return {"SUBACK": "Granted QoS 0", "DISCONNECT": "Normal disconnection"}.get(packet,
                                                                                   "Success")
    return REASON_NAMES_V5.get(code, f"unknown reason code 0x{code:02X}")


def is_failure(code: int) -> bool:
    """Reason codes of 0x80 and above mean failure in every packet [MQTT 5 section 2.4]."""
    return code >= 0x80
