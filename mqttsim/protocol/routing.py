"""Who receives a published message: MQTT's routing rule, in one place.

The broker engine applies it to the matches its subscription tree finds (fast, cached per
topic); the lab's outcomes table applies it to the subscriptions in force when a message
reached the broker, to say which copies were *expected*. Both call ``recipients`` here, so
the two cannot disagree about overlapping subscriptions, No Local or shared subscriptions.

- Overlapping subscriptions of one client: one copy, at the highest granted QoS (3.1.1
  [MQTT-3.3.5-1], 5.0 [MQTT-3.3.4-2]), carrying every matching Subscription Identifier
  [MQTT-3.3.4-3], the retained flag kept if any matching subscription asks for Retain As
  Published [MQTT-3.3.1-12].
- No Local: a client's own messages are not sent back to it [MQTT-3.8.3-3].
- Shared subscriptions (MQTT 5, ``$share/{ShareName}/{filter}``): each message goes to one
  member of each matching group (section 4.8.2); which member is the broker's choice (load
  balancing, not a protocol rule), so groups come back apart, with their members.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .topics import parse_shared_subscription, topic_matches

# One client's copy: (granted QoS, retain as published, subscription identifiers).
Target = tuple[int, bool, tuple[int, ...]]


@dataclass
class Recipients:
    """Who gets a message: ``targets`` per client of ordinary subscriptions, and the
    matching share ``groups`` (full ``$share/...`` filter -> members, in subscription
    order), of which one member each is to be added with ``add_member``."""

    targets: dict[Hashable, Target]
    groups: dict[str, list[tuple[Hashable, Any]]] = field(default_factory=dict)


def recipients(plain: Iterable[tuple[Hashable, str, Any]],
               groups: Mapping[str, list[tuple[Hashable, Any]]],
               publisher: Hashable | None) -> Recipients:
    """Apply the routing rule to the subscriptions that match a topic.

    ``plain``: ordinary matches ``(client, filter, entry)``; ``groups``: matching share
    groups; an entry has ``options`` (a ``Subscription``: qos, no_local, retain_as_published)
    and ``identifier`` (or None). ``publisher`` is the publishing client (None: nobody's
    own, e.g. a will or a retained message), for No Local."""
    targets: dict[Hashable, Target] = {}
    for client, _, entry in plain:
        if entry.options.no_local and client == publisher:
            continue  # [MQTT-3.8.3-3]
        add_member(targets, client, entry)
    return Recipients(targets, dict(groups))


def add_member(targets: dict[Hashable, Target], client: Hashable, entry: Any) -> None:
    """Add one subscription's copy to ``targets``; a client already there keeps one copy at
    the higher QoS [MQTT-3.3.4-2] (also a share member that matched on its own too), with
    every identifier [MQTT-3.3.4-3]."""
    options = entry.options
    ident = (entry.identifier,) if entry.identifier else ()
    old = targets.get(client)
    if old is None:
        targets[client] = (options.qos, options.retain_as_published, ident)
    else:
        targets[client] = (max(old[0], options.qos), old[1] or options.retain_as_published,
                           old[2] + ident)


def matching(subscriptions: Iterable[tuple[Hashable, str, Any]], topic: str,
             version: int = 5) -> tuple[list[tuple[Hashable, str, Any]],
                                         dict[str, list[tuple[Hashable, Any]]]]:
    """The ordinary matches and share groups among ``(client, filter as written, entry)``
    for ``topic``, by checking each filter (``topic_matches``): what the broker's tree
    finds, for a list of subscriptions small enough to scan."""
    plain: list[tuple[Hashable, str, Any]] = []
    groups: dict[str, list[tuple[Hashable, Any]]] = {}
    for client, topic_filter, entry in subscriptions:
        share, inner = parse_shared_subscription(topic_filter, version)
        if not topic_matches(inner, topic):
            continue
        if share is None:
            plain.append((client, topic_filter, entry))
        else:
            groups.setdefault(topic_filter, []).append((client, entry))
    return plain, groups
