"""Pluggable authentication and authorization for the broker engine.

The engine asks two questions and never stores credentials itself: "may this user connect?"
(answered with a 3.1.1 return code: 0 accepted, 4 bad user name or password, 5 not
authorized; the engine maps it to MQTT 5 reason codes) and "may this client read, write or
subscribe to this topic?". The socket server plugs in mosquitto-style password and ACL
files; the simulator usually runs with everyone allowed.
"""

from __future__ import annotations

from typing import Protocol

ACCEPTED, BAD_CREDENTIALS, NOT_AUTHORIZED = 0, 4, 5


class Authenticator(Protocol):
    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> int:
        """0 to accept, 4 for a bad user name or password, 5 for not authorized."""


class Authorizer(Protocol):
    def authorize(self, client_id: str, username: str | None, topic: str, access: str) -> bool:
        """May the client ``access`` ("read", "write" or "subscribe") ``topic``?"""


class AllowAll:
    """Everyone may connect, publish and subscribe (mosquitto's ``allow_anonymous true``)."""

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> int:
        return ACCEPTED

    def authorize(self, client_id: str, username: str | None, topic: str, access: str) -> bool:
        return True


class StaticUsers:
    """Users and passwords held in memory, for tests and notebooks.

    ``anonymous`` says whether a client without a user name may connect, as mosquitto's
    ``allow_anonymous``.
    """

    def __init__(self, users: dict[str, str | bytes], anonymous: bool = False):
        self.users = {name: pw.encode() if isinstance(pw, str) else pw
                      for name, pw in users.items()}
        self.anonymous = anonymous

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> int:
        if username is None:
            return ACCEPTED if self.anonymous else NOT_AUTHORIZED
        expected = self.users.get(username)
        if expected is None or password != expected:
            return BAD_CREDENTIALS
        return ACCEPTED


class TopicRules:
    """A small ACL: per user, (topic filter, access) pairs where access is read, write,
    readwrite or deny; anything not granted is refused. ``"%c"`` and ``"%u"`` in a filter stand
    for the client id and user name, as in mosquitto's ``pattern`` lines.

    A client id or user name containing ``+`` or ``#`` would turn such a rule into a
    wildcard (client id ``#`` and ``%c/#`` would grant everything), so rules with ``%c`` /
    ``%u`` grant it nothing and its denials still apply (mosquitto 2.0 refuses such clients
    on its pattern rules: src/security_default.c, "dangerous client id"). A ``/`` is allowed,
    as in mosquitto: ``a/b`` under ``devices/%c/#`` gets ``devices/a/b/#``, inside the space
    of client id ``a``, which any client could have chosen anyway (a client id is not an
    identity); a user name is, and only the password file's owner can create ``alice/x``.

    ``subscribe`` is asked with the filter part of a shared subscription (the engine strips
    ``$share/{group}/``), so the group name never widens or narrows what may be read.
    """

    def __init__(self, rules: dict[str | None, list[tuple[str, str]]]):
        self.rules = rules

    def authorize(self, client_id: str, username: str | None, topic: str, access: str) -> bool:
        from .topics import topic_matches

        wanted = "read" if access == "subscribe" else access
        granted = False
        unsafe = _widens(client_id) or _widens(username or "")
        for pattern, kind in self.rules.get(username, []) + self.rules.get("*", []):
            if "%c" in pattern or "%u" in pattern:
                if unsafe and kind != "deny":
                    continue
                pattern = pattern.replace("%c", client_id).replace("%u", username or "")
            topic_filter = pattern
            if access == "subscribe":
                matched = topic_filter == topic or topic_matches(topic_filter, topic)
            else:
                matched = topic_matches(topic_filter, topic)
            if not matched:
                continue
            if kind == "deny":
                return False
            if kind == "readwrite" or kind == wanted:
                granted = True
        return granted


def _widens(name: str) -> bool:
    """Would ``name`` put a wildcard into a ``%c`` / ``%u`` rule?"""
    return "+" in name or "#" in name
