"""The bridge options of ``mosquitto.conf``: a ``connection NAME`` line and the lines after it.

As mosquitto.conf(5) describes them, read into ``mqttsim.protocol.bridge.BridgeConfig``:
``connection``, ``address host[:port]`` (1883 by default), ``topic PATTERN [in|out|both [QOS
[LOCAL_PREFIX REMOTE_PREFIX]]]`` (``""`` for an empty prefix or pattern), ``cleansession``
(false), ``local_cleansession``, ``keepalive_interval`` (60, at least 5),
``restart_timeout BASE [CAP]`` (5 30), ``bridge_protocol_version`` (mqttv31, mqttv311,
mqttv50), ``try_private`` (true), ``remote_clientid``/``clientid`` (``HOSTNAME.NAME``, as
Mosquitto's src/conf.c makes it), ``local_clientid`` (``local.`` + the remote one),
``remote_username``/``remote_password``. ``notifications`` is accepted and not implemented
(no ``$SYS/broker/connection/.../state`` messages): noted in the ``-v`` log. Other bridge
options of Mosquitto (TLS to the remote broker, several addresses, lazy start) are refused as
unknown options.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from ..protocol.bridge import BridgeConfig, BridgeError, BridgeTopic

PROTOCOL_VERSIONS = {"mqttv31": 3, "mqttv311": 4, "mqttv50": 5}
DEFAULT_BRIDGE_PORT = 1883


@dataclass(frozen=True)
class BridgeSettings:
    """One bridge: where the remote broker is, and the bridge's own settings."""

    host: str
    port: int
    config: BridgeConfig


def _unquote(word: str) -> str:
    return "" if word == '""' else word


class BridgeOptions:
    """The ``opt_*`` handlers of the bridge lines, mixed into config.py's parser (which
    supplies ``error``, ``boolean``, ``integer``, ``port``, ``number`` and ``notes``)."""

    _bridges: list[dict[str, Any]]

    def _bridge(self) -> dict[str, Any]:
        if not getattr(self, "_bridges", None):
            raise self.error("a bridge option needs a 'connection NAME' line before it")
        return self._bridges[-1]

    def _bridge_set(self, key: str, value: Any) -> None:
        self._bridge()[key] = (value, self.number)

    def opt_connection(self, value: str) -> None:
        if not hasattr(self, "_bridges"):
            self._bridges = []
        if len(value.split()) != 1:
            raise self.error("expected 'connection NAME' (one word)")
        if any(b["name"][0] == value for b in self._bridges):
            raise self.error(f"a bridge named {value!r} is already defined")
        self._bridges.append({"name": (value, self.number), "topics": []})

    def opt_address(self, value: str) -> None:
        words = value.split()
        if len(words) != 1:
            raise self.error("one address only (several addresses are not supported)")
        host, colon, port = words[0].rpartition(":")
        if not colon:
            host, port = words[0], str(DEFAULT_BRIDGE_PORT)
        if not host:
            raise self.error(f"{value!r} has no host")
        self._bridge_set("address", (host, self.port(port)))

    def opt_topic(self, value: str) -> None:
        words = value.split()
        if len(words) not in (1, 2, 3, 5):
            raise self.error("expected 'topic PATTERN [in|out|both [QOS [LOCAL_PREFIX "
                             "REMOTE_PREFIX]]]'")
        direction = words[1] if len(words) > 1 else "out"
        qos = self.integer(words[2], 0, 2) if len(words) > 2 else 0
        prefixes = (_unquote(words[3]), _unquote(words[4])) if len(words) == 5 else ("", "")
        try:
            topic = BridgeTopic(_unquote(words[0]), direction, qos, *prefixes)
        except BridgeError as exc:
            raise self.error(str(exc)) from None
        self._bridge()["topics"].append(topic)

    def opt_cleansession(self, value: str) -> None:
        self._bridge_set("clean_session", self.boolean(value))

    def opt_local_cleansession(self, value: str) -> None:
        self._bridge_set("local_clean_session", self.boolean(value))

    def opt_keepalive_interval(self, value: str) -> None:
        self._bridge_set("keepalive", self.integer(value, 5, 65535))

    def opt_restart_timeout(self, value: str) -> None:
        words = value.split()
        if len(words) > 2:
            raise self.error("expected 'restart_timeout BASE [CAP]'")
        base = self.integer(words[0], 1, 2**31 - 1)
        cap = self.integer(words[1], base, 2**31 - 1, " (the cap is at least the base)") \
            if len(words) == 2 else None
        self._bridge_set("restart", (float(base), None if cap is None else float(cap)))

    def opt_bridge_protocol_version(self, value: str) -> None:
        if value not in PROTOCOL_VERSIONS:
            raise self.error(f"{value!r} is not one of {', '.join(PROTOCOL_VERSIONS)}")
        self._bridge_set("version", PROTOCOL_VERSIONS[value])

    def opt_try_private(self, value: str) -> None:
        self._bridge_set("try_private", self.boolean(value))

    def opt_remote_clientid(self, value: str) -> None:
        self._bridge_set("remote_client_id", value)

    opt_clientid = opt_remote_clientid  # the old name mosquitto still accepts

    def opt_local_clientid(self, value: str) -> None:
        self._bridge_set("local_client_id", value)

    def opt_remote_username(self, value: str) -> None:
        self._bridge_set("username", value)

    def opt_remote_password(self, value: str) -> None:
        self._bridge_set("password", value.encode())

    def opt_notifications(self, value: str) -> None:
        self._bridge()
        if self.boolean(value):
            self.notes.append(f"line {self.number}: notifications ignored: bridges publish "
                              "no $SYS/broker/connection/.../state messages")

    def bridge_settings(self) -> tuple[BridgeSettings, ...]:
        """Every ``connection`` section, checked as a whole."""
        found = []
        local_ids = set()
        for b in getattr(self, "_bridges", ()):
            name, self.number = b["name"]
            self.option = "connection"
            if "address" not in b:
                raise self.error(f"bridge {name!r} has no address line")
            if not b["topics"]:
                raise self.error(f"bridge {name!r} has no topic line: it would carry nothing")
            get = {key: value for key, (value, _line) in
                   ((k, v) for k, v in b.items() if k not in ("topics",))}
            remote_id = get.get("remote_client_id") or f"{socket.gethostname()}.{name}"
            base, cap = get.get("restart", (5.0, 30.0))
            if "username" not in get and "password" in get:
                raise self.error(f"bridge {name!r}: remote_password needs remote_username")
            try:
                config = BridgeConfig(
                    name, remote_id, tuple(b["topics"]),
                    local_client_id=get.get("local_client_id", ""),
                    version=get.get("version", 4), clean_session=get.get("clean_session", False),
                    local_clean_session=get.get("local_clean_session"),
                    keepalive=get.get("keepalive", 60), try_private=get.get("try_private", True),
                    restart_base=base, restart_cap=cap, username=get.get("username"),
                    password=get.get("password"))
            except BridgeError as exc:
                raise self.error(str(exc)) from None
            if config.local_id in local_ids:
                raise self.error(f"bridge local client id {config.local_id!r} is not unique "
                                 "(set local_clientid)")
            local_ids.add(config.local_id)
            host, port = get["address"]
            found.append(BridgeSettings(host, port, config))
        return tuple(found)
