"""Level tries for routing: subscriptions by filter, and retained messages by topic name.

Theory of operation
-------------------
Both structures split a topic at ``/`` and keep one trie node per level, so no operation
scans all entries:

* :class:`SubscriptionTree` answers "who wants a message on topic T?". A filter is stored
  along the path of its levels, with ``+`` and ``#`` as ordinary child keys. Matching T
  walks T's levels and at each node follows at most three children: the literal level,
  ``+`` and ``#``. The cost grows with the depth of T times the number of ``+`` branches
  that actually exist, not with the number of subscriptions.
* :class:`TopicTrie` answers the reverse question, asked when a client subscribes: "which
  stored topic names (retained messages) does filter F match?". It walks F's levels; a
  literal level follows one child, ``+`` all children, ``#`` the whole subtree.

Both honour [MQTT-4.7.2-1]: a wildcard in the *first* level never matches a topic whose
name starts with ``$``. Nodes left without entries or children are pruned on removal, so
a broker with churning subscriptions does not grow without bound.

Shared subscriptions (MQTT 5, ``$share/{ShareName}/{filter}``) are stored at the node of
the underlying filter, apart from ordinary ones: :meth:`SubscriptionTree.match` returns the
ordinary subscriptions and :meth:`SubscriptionTree.match_shared` returns the share groups,
each with all its members, for the broker to pick one member per group. A group is
identified by share name *and* filter, i.e. by the full ``$share/...`` string.

The tree only finds matches. Delivering one copy per client at the highest QoS of its
overlapping subscriptions, and collecting their subscription identifiers, is the broker's
job: it groups the returned ``(key, filter, value)`` triples by key.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from .topics import parse_shared_subscription, validate_topic_filter

__all__ = ["SubscriptionTree", "TopicTrie"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _SubNode:
    """One level of :class:`SubscriptionTree`; ``filter`` is the path from the root."""

    __slots__ = ("parent", "level", "filter", "children", "plain", "shared")

    def __init__(self, parent: _SubNode | None, level: str, topic_filter: str) -> None:
        self.parent = parent
        self.level = level
        self.filter = topic_filter
        self.children: dict[str, _SubNode] = {}
        #: ordinary subscriptions: subscriber key -> value
        self.plain: dict = {}
        #: shared subscriptions: share name -> (full "$share/..." filter, {key: value})
        self.shared: dict[str, tuple[str, dict]] = {}

    def is_empty(self) -> bool:
        return not (self.children or self.plain or self.shared)


class SubscriptionTree(Generic[K, V]):
    """Subscriptions ``(subscriber_key, topic_filter) -> value``, matched by topic name.

    ``subscriber_key`` is whatever identifies a session (a client id); ``value`` is opaque
    to the tree (typically the subscription options and identifier). A key has at most one
    subscription per filter string.
    """

    def __init__(self) -> None:
        self._root = _SubNode(None, "", "")
        # key -> {full filter: (node, share name or None)}, in subscription order; lets
        # remove/remove_all go straight to the node instead of searching.
        self._by_key: dict[K, dict[str, tuple[_SubNode, str | None]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic_filter: str, subscriber_key: K, value: V, *, version: int = 5) -> bool:
        """Store a subscription; return True if it is new, False if it replaced one.

        The broker needs the distinction for MQTT 5 Retain Handling 1 (send retained
        messages only for a new subscription). ``version`` decides whether ``$share/`` means
        a shared subscription (5) or is an ordinary filter (3, 4). The filter is validated,
        so an invalid one raises :class:`~mqttsim.protocol.errors.InvalidTopic`.
        """
        validate_topic_filter(topic_filter, version)
        share, inner = parse_shared_subscription(topic_filter, version)
        node = self._root
        for level in inner.split("/"):
            child = node.children.get(level)
            if child is None:
                path = level if node is self._root else f"{node.filter}/{level}"
                child = node.children[level] = _SubNode(node, level, path)
            node = child

        mine = self._by_key.setdefault(subscriber_key, {})
        old = mine.get(topic_filter)
        if old is not None and old != (node, share):
            # The same string once meant something else (e.g. a literal "$share/..." from a
            # 3.1.1 session now resubscribed as MQTT 5): drop the old meaning.
            self._detach(old[0], old[1], subscriber_key)
        if share is None:
            node.plain[subscriber_key] = value
        else:
            group = node.shared.get(share)
            if group is None:
                group = node.shared[share] = (topic_filter, {})
            group[1][subscriber_key] = value
        mine[topic_filter] = (node, share)
        if old is None:
            self._count += 1
            return True
        return False

    def get(self, topic_filter: str, subscriber_key: K, default: V | None = None) -> V | None:
        """The value stored for this key and filter string, or ``default``."""
        where = self._by_key.get(subscriber_key, {}).get(topic_filter)
        if where is None:
            return default
        node, share = where
        if share is None:
            return node.plain[subscriber_key]
        return node.shared[share][1][subscriber_key]

    def remove(self, topic_filter: str, subscriber_key: K) -> bool:
        """Remove one subscription (UNSUBSCRIBE); return whether it existed."""
        mine = self._by_key.get(subscriber_key)
        if mine is None:
            return False
        where = mine.pop(topic_filter, None)
        if where is None:
            return False
        if not mine:
            del self._by_key[subscriber_key]
        self._detach(where[0], where[1], subscriber_key)
        self._count -= 1
        return True

    def remove_all(self, subscriber_key: K) -> int:
        """Remove every subscription of a key (session ended); return how many there were."""
        mine = self._by_key.pop(subscriber_key, None)
        if not mine:
            return 0
        for node, share in mine.values():
            self._detach(node, share, subscriber_key)
        self._count -= len(mine)
        return len(mine)

    def filters_of(self, subscriber_key: K) -> list[str]:
        """The filter strings (``$share/...`` included) a key subscribes to, oldest first."""
        return list(self._by_key.get(subscriber_key, ()))

    def _detach(self, node: _SubNode, share: str | None, subscriber_key: K) -> None:
        if share is None:
            del node.plain[subscriber_key]
        else:
            members = node.shared[share][1]
            del members[subscriber_key]
            if not members:
                del node.shared[share]
        while node.parent is not None and node.is_empty():
            del node.parent.children[node.level]
            node = node.parent

    def _matching_nodes(self, topic_name: str) -> list[_SubNode]:
        """Every node whose filter matches ``topic_name`` (each node at most once)."""
        levels = topic_name.split("/")
        depth = len(levels)
        dollar = topic_name[:1] == "$"
        found: list[_SubNode] = []
        stack: list[tuple[_SubNode, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            children = node.children
            if not children:
                if i == depth:
                    found.append(node)
                continue
            wild_ok = i > 0 or not dollar  # [MQTT-4.7.2-1]
            if wild_ok:
                hash_node = children.get("#")
                if hash_node is not None:
                    found.append(hash_node)  # '#' also matches the parent level itself
            if i == depth:
                found.append(node)
                continue
            child = children.get(levels[i])
            if child is not None:
                stack.append((child, i + 1))
            if wild_ok:
                plus = children.get("+")
                if plus is not None:
                    stack.append((plus, i + 1))
        return found

    def match(self, topic_name: str) -> list[tuple[K, str, V]]:
        """Ordinary subscriptions matching ``topic_name``: ``[(key, filter, value), ...]``.

        A key appears once per matching filter, so overlapping subscriptions of one client
        all appear; shared subscriptions are left to :meth:`match_shared`.
        """
        out: list[tuple[K, str, V]] = []
        append = out.append
        for node in self._matching_nodes(topic_name):
            if node.plain:
                topic_filter = node.filter
                for key, value in node.plain.items():
                    append((key, topic_filter, value))
        return out

    def match_shared(self, topic_name: str) -> dict[str, list[tuple[K, V]]]:
        """Shared subscriptions matching ``topic_name``, by group.

        Returns ``{"$share/{ShareName}/{filter}": [(key, value), ...]}``; members are in the
        order they subscribed, so a broker's round-robin choice is deterministic.
        """
        out: dict[str, list[tuple[K, V]]] = {}
        for node in self._matching_nodes(topic_name):
            for full_filter, members in node.shared.values():
                out[full_filter] = list(members.items())
        return out


_MISSING = object()


class _TopicNode:
    """One level of :class:`TopicTrie`."""

    __slots__ = ("parent", "level", "children", "topic", "value")

    def __init__(self, parent: _TopicNode | None, level: str) -> None:
        self.parent = parent
        self.level = level
        self.children: dict[str, _TopicNode] = {}
        self.topic: str | None = None  # set while the node holds a value
        self.value: object = _MISSING


class TopicTrie(Generic[V]):
    """A map ``topic name -> value`` that can list the names a topic filter matches.

    Meant for retained messages: on SUBSCRIBE the broker calls :meth:`match_filter` with
    the (non-shared) filter instead of testing every retained topic.
    """

    def __init__(self) -> None:
        self._root = _TopicNode(None, "")
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, topic_name: object) -> bool:
        return isinstance(topic_name, str) and self._find(topic_name) is not None

    def _find(self, topic_name: str) -> _TopicNode | None:
        node = self._root
        for level in topic_name.split("/"):
            node = node.children.get(level)
            if node is None:
                return None
        return node if node.value is not _MISSING else None

    def set(self, topic_name: str, value: V) -> None:
        """Store or replace the value for ``topic_name`` (a valid topic name)."""
        node = self._root
        for level in topic_name.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _TopicNode(node, level)
            node = child
        if node.value is _MISSING:
            self._count += 1
        node.topic = topic_name
        node.value = value

    def get(self, topic_name: str, default: V | None = None) -> V | None:
        node = self._find(topic_name)
        return default if node is None else node.value  # type: ignore[return-value]

    def delete(self, topic_name: str) -> bool:
        """Remove ``topic_name``; return whether it was there."""
        node = self._find(topic_name)
        if node is None:
            return False
        node.value = _MISSING
        node.topic = None
        self._count -= 1
        while node.parent is not None and not node.children and node.value is _MISSING:
            del node.parent.children[node.level]
            node = node.parent
        return True

    def items(self) -> Iterator[tuple[str, V]]:
        """Every ``(topic, value)`` pair, in no particular order."""
        return self._subtree(list(self._root.children.values()))

    def match_filter(self, topic_filter: str) -> Iterator[tuple[str, V]]:
        """Yield ``(topic, value)`` for every stored topic the (valid) filter matches.

        A first-level wildcard skips topics starting with ``$`` [MQTT-4.7.2-1]. Pass the
        filter part of a shared subscription, not the ``$share/...`` string.
        """
        levels = topic_filter.split("/")
        depth = len(levels)
        stack: list[tuple[_TopicNode, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if i == depth:
                if node.value is not _MISSING:
                    yield node.topic, node.value  # type: ignore[misc]
                continue
            level = levels[i]
            if level == "#":
                if node.value is not _MISSING:  # 'a/#' matches 'a' too (never the root)
                    yield node.topic, node.value  # type: ignore[misc]
                below = [c for n, c in node.children.items() if i > 0 or n[:1] != "$"]
                yield from self._subtree(below)
            elif level == "+":
                stack.extend((c, i + 1) for n, c in node.children.items()
                             if i > 0 or n[:1] != "$")
            else:
                child = node.children.get(level)
                if child is not None:
                    stack.append((child, i + 1))

    @staticmethod
    def _subtree(start: list[_TopicNode]) -> Iterator[tuple[str, V]]:
        """Every value at or below the ``start`` nodes (the list is consumed)."""
        stack = start
        while stack:
            node = stack.pop()
            if node.value is not _MISSING:
                yield node.topic, node.value  # type: ignore[misc]
            stack.extend(node.children.values())
