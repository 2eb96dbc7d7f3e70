"""Which spec statement a codec check enforces, per protocol version.

The same rule has different ids in 3.1.1 and 5.0 (e.g. "Will Flag 0 requires Will QoS 0" is
MQTT-3.1.2-13 in 3.1.1 and MQTT-3.1.2-11 in 5.0), so the encoder and decoder look the id up
here by a short name instead of hard-coding one version's numbering. MQTT 3.1 (level 3) has
no numbered statements; its checks cite the 3.1.1 id of the same rule.
"""

from __future__ import annotations

_RULES: dict[str, tuple[str | None, str | None]] = {
    # name: (3.1.1 id, 5.0 id)
    "reserved_flags": ("MQTT-2.2.2-2", "MQTT-2.1.3-1"),
    "nonzero_packet_id": ("MQTT-2.3.1-1", "MQTT-2.2.1-3"),
    "qos0_no_packet_id": ("MQTT-2.3.1-5", "MQTT-2.2.1-2"),
    "pub_ack_packet_id": ("MQTT-2.3.1-6", "MQTT-2.2.1-5"),
    "sub_ack_packet_id": ("MQTT-2.3.1-7", "MQTT-2.2.1-6"),
    "protocol_name": ("MQTT-3.1.2-1", "MQTT-3.1.2-1"),
    "protocol_level": ("MQTT-3.1.2-2", "MQTT-3.1.2-2"),
    "connect_reserved_flag": ("MQTT-3.1.2-3", "MQTT-3.1.2-3"),
    "will_qos_without_will": ("MQTT-3.1.2-13", "MQTT-3.1.2-11"),
    "will_qos_range": ("MQTT-3.1.2-14", "MQTT-3.1.2-12"),
    "will_retain_without_will": ("MQTT-3.1.2-15", "MQTT-3.1.2-13"),
    "password_without_username": ("MQTT-3.1.2-22", None),
    "client_id_present": ("MQTT-3.1.3-3", "MQTT-3.1.3-3"),
    "will_fields_present": ("MQTT-3.1.2-9", "MQTT-3.1.2-9"),
    "username_absent": ("MQTT-3.1.2-18", "MQTT-3.1.2-16"),
    "username_present": ("MQTT-3.1.2-19", "MQTT-3.1.2-17"),
    "password_absent": ("MQTT-3.1.2-20", "MQTT-3.1.2-18"),
    "password_present": ("MQTT-3.1.2-21", "MQTT-3.1.2-19"),
    "connack_flags": (None, "MQTT-3.2.2-1"),
    "connack_session_present_on_error": ("MQTT-3.2.2-4", "MQTT-3.2.2-6"),
    "connack_code": ("MQTT-3.2.2-6", "MQTT-3.2.2-8"),
    "dup_on_qos0": ("MQTT-3.3.1-2", "MQTT-3.3.1-2"),
    "qos_3": ("MQTT-3.3.1-4", "MQTT-3.3.1-4"),
    "publish_wildcard": ("MQTT-3.3.2-2", "MQTT-3.3.2-2"),
    "empty_topic": ("MQTT-4.7.3-1", "MQTT-4.7.3-1"),
    "topic_length": ("MQTT-4.7.3-3", "MQTT-4.7.3-3"),
    "pubrel_flags": ("MQTT-3.6.1-1", "MQTT-3.6.1-1"),
    "subscribe_flags": ("MQTT-3.8.1-1", "MQTT-3.8.1-1"),
    "subscribe_empty": ("MQTT-3.8.3-3", "MQTT-3.8.3-2"),
    "subscribe_options": ("MQTT-3.8.3-4", "MQTT-3.8.3-5"),
    "suback_code": ("MQTT-3.9.3-2", "MQTT-3.9.3-2"),
    "unsubscribe_flags": ("MQTT-3.10.1-1", "MQTT-3.10.1-1"),
    "unsubscribe_empty": ("MQTT-3.10.3-2", "MQTT-3.10.3-2"),
    "disconnect_flags": ("MQTT-3.14.1-1", "MQTT-3.14.1-1"),
    "auth_flags": (None, "MQTT-3.15.1-1"),
    "first_packet_connect": ("MQTT-3.1.0-1", "MQTT-3.1.0-1"),
}

# Reason-code statements exist only in 5.0.
ACK_CODE_RULES = {4: "MQTT-3.4.2-1", 5: "MQTT-3.5.2-1", 6: "MQTT-3.6.2-1", 7: "MQTT-3.7.2-1",
                  11: "MQTT-3.11.3-2", 14: "MQTT-3.14.2-1", 15: "MQTT-3.15.2-1"}


def rule(name: str, version: int | None) -> str | None:
    """The statement id of check ``name`` in ``version`` (None if that version has none)."""
    v311, v5 = _RULES[name]
    return v5 if version == 5 else v311
