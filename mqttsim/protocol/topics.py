"""Topic names, topic filters and how they match (spec section 4.7, shared subscriptions 4.8.2).

A *topic name* is what a PUBLISH is sent to; it never contains wildcards. A *topic filter*
is what a SUBSCRIBE asks for; ``+`` stands for exactly one level and ``#`` (last, alone in
its level) for the parent level and everything below it. Levels are separated by ``/`` and
may be empty: ``a//b`` has three levels and ``/`` has two.

The rules are the same in MQTT 3.1, 3.1.1 and 5.0, but 5.0 renumbered the statements, so
every function takes the protocol version and raises :class:`InvalidTopic` with the id of
the version in use (3.1 has no numbered statements; it is reported with the 3.1.1 ids).

Topic-name validation runs on every PUBLISH, so its common case (a short, ordinary name)
costs three substring scans and no allocation.
"""

from __future__ import annotations

from .errors import InvalidTopic

__all__ = [
    "MAX_TOPIC_BYTES",
    "SHARE_PREFIX",
    "validate_topic_name",
    "validate_topic_filter",
    "parse_shared_subscription",
    "topic_matches",
    "resolve_topic_alias",
]

#: A topic is a UTF-8 string with a two-byte length prefix [MQTT-4.7.3-3].
MAX_TOPIC_BYTES = 65535
#: MQTT 5 shared subscriptions are filters of the form ``$share/{ShareName}/{filter}``.
SHARE_PREFIX = "$share/"

#: A string of at most this many code points cannot exceed 65535 UTF-8 bytes (4 bytes each),
#: so only longer strings need to be encoded to check the limit.
_SAFE_CHARS = MAX_TOPIC_BYTES // 4

_TOPIC_FILTER_INVALID = 0x8F  # MQTT 5 reason code for a bad filter in SUBSCRIBE/UNSUBSCRIBE

# Statement ids per protocol version. 3.1 (level 3) has no numbered statements; the 3.1.1
# ids name the same rules.
_IDS_311 = {
    "empty": "MQTT-4.7.3-1",
    "null": "MQTT-4.7.3-2",
    "length": "MQTT-4.7.3-3",
    "name_wildcard": "MQTT-4.7.1-1",
    "hash": "MQTT-4.7.1-2",
    "plus": "MQTT-4.7.1-3",
}
_IDS_5 = {
    "empty": "MQTT-4.7.3-1",
    "null": "MQTT-4.7.3-2",
    "length": "MQTT-4.7.3-3",
    "name_wildcard": "MQTT-4.7.0-1",
    "hash": "MQTT-4.7.1-1",
    "plus": "MQTT-4.7.1-2",
    "share_name_empty": "MQTT-4.8.2-1",
    "share_name_chars": "MQTT-4.8.2-2",
}
_IDS = {3: _IDS_311, 4: _IDS_311, 5: _IDS_5}


def _ids(version: int) -> dict[str, str]:
    try:
        return _IDS[version]
    except KeyError:
        raise ValueError(f"unknown MQTT protocol version {version!r}; expected 3, 4 or 5") from None


def _short(text: str, limit: int = 60) -> str:
    """Quote a topic for an error message without pasting 64 KiB into a log line."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _check_common(text: str, kind: str, ids: dict[str, str], reason_code: int | None) -> None:
    """Rules shared by names and filters: non-empty, no U+0000, at most 65535 bytes."""
    if not text:
        raise InvalidTopic(f"{kind} is empty; it must be at least one character long",
                           ids["empty"], reason_code=reason_code)
    if "\x00" in text:
        raise InvalidTopic(f"{kind} {_short(text)} contains the null character U+0000",
                           ids["null"], reason_code=reason_code)
    if len(text) > _SAFE_CHARS:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_TOPIC_BYTES:
            raise InvalidTopic(
                f"{kind} {_short(text)} is {size} bytes in UTF-8; the limit is {MAX_TOPIC_BYTES}",
                ids["length"], reason_code=reason_code)


def validate_topic_name(name: str, version: int) -> None:
    """Raise :class:`InvalidTopic` (reason code 0x90) unless ``name`` may be published to.

    A wildcard in a name is reported under the general rule of section 4.7; in a PUBLISH
    packet the same mistake also breaks MQTT-3.3.2-2, which the message mentions.
    """
    ids = _IDS.get(version) or _ids(version)
    if not name or "\x00" in name or len(name) > _SAFE_CHARS:
        _check_common(name, "topic name", ids, None)
    if "+" in name or "#" in name:
        wildcard = "+" if "+" in name else "#"
        raise InvalidTopic(
            f"topic name {_short(name)} contains the wildcard {wildcard!r}; wildcards are "
            "only allowed in subscriptions (a PUBLISH topic must not contain them, "
            "MQTT-3.3.2-2)", ids["name_wildcard"])


def _split_shared(topic_filter: str, ids: dict[str, str]) -> tuple[str, str]:
    """Split ``$share/{ShareName}/{filter}`` or raise the matching 4.8.2 error."""
    rest = topic_filter[len(SHARE_PREFIX):]
    slash = rest.find("/")
    share_name = rest if slash < 0 else rest[:slash]
    if not share_name:
        raise InvalidTopic(
            f"shared subscription {_short(topic_filter)} has an empty share name; write "
            "'$share/{ShareName}/{filter}'", ids["share_name_empty"],
            reason_code=_TOPIC_FILTER_INVALID)
    for bad in ("+", "#"):
        if bad in share_name:
            raise InvalidTopic(
                f"share name {share_name!r} in {_short(topic_filter)} contains {bad!r}; a share "
                "name must not contain '/', '+' or '#'", ids["share_name_chars"],
                reason_code=_TOPIC_FILTER_INVALID)
    if slash < 0 or slash == len(rest) - 1:
        raise InvalidTopic(
            f"shared subscription {_short(topic_filter)} has no topic filter after the share "
            "name; write '$share/{ShareName}/{filter}'", ids["share_name_chars"],
            reason_code=_TOPIC_FILTER_INVALID)
    return share_name, rest[slash + 1:]


def _check_wildcards(topic_filter: str, ids: dict[str, str], shown: str) -> None:
    """Check that ``#`` is last and alone in its level and ``+`` fills a whole level."""
    has_hash = "#" in topic_filter
    if has_hash:
        hash_at = topic_filter.find("#")
        if hash_at != len(topic_filter) - 1:
            raise InvalidTopic(
                f"topic filter {_short(shown)}: '#' must be the last character of the filter "
                "(e.g. 'a/#', not 'a/#/b')", ids["hash"], reason_code=_TOPIC_FILTER_INVALID)
        if hash_at > 0 and topic_filter[hash_at - 1] != "/":
            raise InvalidTopic(
                f"topic filter {_short(shown)}: '#' must stand alone in its level, right after "
                "a '/' (e.g. 'a/#', not 'a#')", ids["hash"], reason_code=_TOPIC_FILTER_INVALID)
    if "+" in topic_filter:
        for level in topic_filter.split("/"):
            if level != "+" and "+" in level:
                raise InvalidTopic(
                    f"topic filter {_short(shown)}: '+' must fill a whole level, but level "
                    f"{_short(level)} has other characters (e.g. 'a/+/b', not 'a/b+')",
                    ids["plus"], reason_code=_TOPIC_FILTER_INVALID)


def validate_topic_filter(topic_filter: str, version: int) -> None:
    """Raise :class:`InvalidTopic` (reason code 0x8F) unless ``topic_filter`` may be subscribed.

    In MQTT 5 a filter starting with ``$share/`` is a shared subscription and its share name
    is checked too; in 3.1 and 3.1.1 it is an ordinary filter.
    """
    ids = _ids(version)
    _check_common(topic_filter, "topic filter", ids, _TOPIC_FILTER_INVALID)
    inner = topic_filter
    if version == 5 and topic_filter.startswith(SHARE_PREFIX):
        _, inner = _split_shared(topic_filter, ids)
    if "+" in inner or "#" in inner:
        _check_wildcards(inner, ids, topic_filter)


def parse_shared_subscription(topic_filter: str, version: int = 5) -> tuple[str | None, str]:
    """Return ``(share_name, filter)`` for ``$share/{ShareName}/{filter}``, else ``(None, topic_filter)``.

    Only MQTT 5 has shared subscriptions, so for ``version`` 3 or 4 the filter is returned
    unchanged. A malformed ``$share/`` filter raises :class:`InvalidTopic`, as in
    :func:`validate_topic_filter`.
    """
    ids = _ids(version)
    if version != 5 or not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    return _split_shared(topic_filter, ids)


def topic_matches(topic_filter: str, topic_name: str) -> bool:
    """Whether a (valid, non-shared) ``topic_filter`` matches a (valid) ``topic_name``.

    Comparison is exact: case, spaces and Unicode forms are significant [MQTT-4.7.3-4].
    A filter that starts with a wildcard does not match a name starting with ``$``
    [MQTT-4.7.2-1], so ``#`` never sees ``$SYS/...`` but ``$SYS/#`` does. For a shared
    subscription pass the filter part from :func:`parse_shared_subscription`.
    """
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic_name
    if topic_name[:1] == "$" and topic_filter[0] in "+#":
        return False
    filter_levels = topic_filter.split("/")
    name_levels = topic_name.split("/")
    n_names = len(name_levels)
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True  # the parent level and any number of children, including none
        if i >= n_names:
            return False
        if level != "+" and level != name_levels[i]:
            return False
    return len(filter_levels) == n_names


def resolve_topic_alias(aliases: dict[int, str], topic: str, alias: int, limit: int,
                        range_rule: str, unknown_rule: str | None) -> str:
    """MQTT 5 receiver side of a Topic Alias (section 3.3.2.3.4), for broker and client.

    ``aliases`` is this connection's map. A PUBLISH with a topic and an alias (re)binds the
    alias; one with an empty topic uses it. Out-of-range or unbound aliases are protocol
    errors with reason code 0x94 (Topic Alias invalid).
    """
    from .errors import ProtocolError

    if not 1 <= alias <= limit:
        raise ProtocolError(f"topic alias {alias} is outside 1..{limit}", range_rule,
                            reason_code=0x94)
    if topic:
        aliases[alias] = topic
        return topic
    bound = aliases.get(alias)
    if bound is None:
        raise ProtocolError(f"topic alias {alias} was never set on this connection",
                            unknown_rule, reason_code=0x94)
    return bound
