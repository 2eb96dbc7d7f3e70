"""Access control lists in mosquitto's ``acl_file`` syntax, as an engine Authorizer.

The file, as mosquitto 2.0 reads it::

    # comment
    topic read $SYS/#              <- before any "user" line: clients without a user name
    user alice                     <- the rules below are alice's
    topic readwrite sensors/#
    topic deny sensors/secret
    pattern write devices/%u/%c/#  <- every client; %u user name, %c client id

``topic`` and ``pattern`` take an access word (read, write, readwrite, deny; readwrite when
left out) and a topic filter, which may contain spaces. With an ACL file, anything not
granted is refused, and a matching ``deny`` beats any grant (mosquitto checks denials first).
A ``pattern`` with ``%u`` does not apply to a client without a user name, and, as in
mosquitto, when the file has patterns a client whose user name or client id contains ``+``
or ``#`` is refused everything (it could otherwise widen a pattern into a wildcard; mosquitto
2.0 refuses it on its pattern rules only, src/security_default.c "dangerous client id"). A
``/`` is allowed, as in mosquitto: client id ``a/b`` under ``devices/%c/#`` gets
``devices/a/b/#``, a part of client ``a``'s space, which any client could claim anyway by
choosing the client id ``a`` (client ids are not identities; user names are, and only the
password file's owner can create a user ``alice/x``).

Every path asks: live deliveries, retained messages sent on SUBSCRIBE, wills (at CONNECT and
when published) and queued or in-flight messages of a resumed session ("read" again for the
user they finally go to). A shared subscription ``$share/{group}/{filter}`` is checked on its
filter part (the engine passes only that; this class also strips it if given the whole).

SUBSCRIBE: mosquitto 2.0's ACL file grants every subscription and only filters messages on
delivery, which gives a subscriber no signal at all. As issue #4 asks, this Authorizer also
refuses (SUBACK 0x80 / 0x87) a subscription whose filter no ``read`` rule covers entirely,
or that a ``deny`` rule covers entirely; messages are still checked one by one on delivery
(the engine asks "read" per message), so a filter partly covered gets only what is allowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..protocol.errors import InvalidTopic
from ..protocol.topics import SHARE_PREFIX, topic_matches, validate_topic_filter

ACCESS_WORDS = ("read", "write", "readwrite", "deny")


class AclError(ValueError):
    """An ACL file mosquitto would refuse; the message names the file and line."""


@dataclass(frozen=True)
class AclRule:
    """One ``topic`` or ``pattern`` line."""

    access: str  # read | write | readwrite | deny
    topic_filter: str
    line: int = 0

    def grants(self, wanted: str) -> bool:
        return self.access == "readwrite" or self.access == wanted


def filter_covers(grant: str, wanted: str) -> bool:
    """Does every topic ``wanted`` (a filter) matches also match ``grant``?

    For a topic name this is ``topic_matches``; for a filter it treats ``+`` and ``#`` in
    ``wanted`` as sets of levels, so ``a/+`` covers ``a/+`` and ``a/b`` but not ``a/#``.
    """
    if "+" not in wanted and "#" not in wanted:
        return topic_matches(grant, wanted)
    if wanted[:1] == "$" and grant[:1] != "$":
        return False  # [MQTT-4.7.2-1]: wildcards at the start never reach $ topics
    want = wanted.split("/")
    for i, level in enumerate(grant.split("/")):
        if level == "#":
            return True
        if i >= len(want) or want[i] == "#":
            return False
        if level != "+" and want[i] != level:
            return False
    return len(want) == len(grant.split("/"))


@dataclass(frozen=True)
class AclFile:
    """An Authorizer (protocol/auth.py): ``authorize(client_id, username, topic, access)``."""

    anonymous: tuple[AclRule, ...] = ()
    users: Mapping[str, tuple[AclRule, ...]] = field(default_factory=dict)
    patterns: tuple[AclRule, ...] = ()
    # Rules per (client id, user name), built once: "read" is asked for every delivery.
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AclFile:
        return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str, name: str = "<acl>") -> AclFile:
        anonymous: list[AclRule] = []
        users: dict[str, list[AclRule]] = {}
        patterns: list[AclRule] = []
        current = anonymous
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            where = f"{name}:{number}: {keyword}"
            if keyword == "user":
                if not rest:
                    raise AclError(f"{where}: missing user name")
                current = users.setdefault(rest, [])
            elif keyword in ("topic", "pattern"):
                if not rest:
                    raise AclError(f"{where}: missing topic filter")
                access, _, topic_filter = rest.partition(" ")
                topic_filter = topic_filter.strip()
                if not topic_filter:  # one word: the filter, with readwrite access
                    access, topic_filter = "readwrite", access
                elif access not in ACCESS_WORDS:
                    raise AclError(f"{where}: access {access!r} is not one of "
                                   f"{', '.join(ACCESS_WORDS)}")
                try:
                    validate_topic_filter(topic_filter, 4)
                except InvalidTopic as exc:
                    raise AclError(f"{where}: invalid topic filter {topic_filter!r}: "
                                   f"{exc}") from None
                rule = AclRule(access, topic_filter, number)
                (patterns if keyword == "pattern" else current).append(rule)
            else:
                raise AclError(f"{name}:{number}: unknown keyword {keyword!r} (expected user, "
                               "topic or pattern)")
        return cls(tuple(anonymous), {user: tuple(rules) for user, rules in users.items()},
                   tuple(patterns))

    def rules_for(self, client_id: str, username: str | None) -> list[AclRule] | None:
        """The rules that apply to this client, patterns filled in; None: refuse everything."""
        rules = list(self.anonymous if username is None else self.users.get(username, ()))
        if self.patterns:
            if "+" in client_id or "#" in client_id or (
                    username is not None and ("+" in username or "#" in username)):
                return None
            for rule in self.patterns:
                text = rule.topic_filter
                if "%u" in text:
                    if username is None:
                        continue
                    text = text.replace("%u", username)
                rules.append(AclRule(rule.access, text.replace("%c", client_id), rule.line))
        return rules

    def authorize(self, client_id: str, username: str | None, topic: str, access: str) -> bool:
        """``access`` is "read" or "write" for a topic name, "subscribe" for a filter."""
        key = (client_id, username)
        rules = self._cache.get(key, False)
        if rules is False:
            if len(self._cache) >= 10_000:
                self._cache.clear()
            rules = self._cache[key] = self.rules_for(client_id or "", username)
        if not rules:
            return False
        if access == "subscribe":
            if topic.startswith(SHARE_PREFIX):  # $share/{group}/{filter}: check the filter
                parts = topic.split("/", 2)
                topic = parts[2] if len(parts) == 3 else topic
            covers, wanted = filter_covers, "read"
        else:
            covers, wanted = topic_matches, access
        for rule in rules:  # denials first, as mosquitto
            if rule.access == "deny" and covers(rule.topic_filter, topic):
                return False
        return any(rule.access != "deny" and rule.grants(wanted)
                   and covers(rule.topic_filter, topic) for rule in rules)
