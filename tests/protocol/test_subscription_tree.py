"""SubscriptionTree (filter -> subscribers, matched by topic) and TopicTrie (retained topics)."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqttsim.protocol.errors import InvalidTopic
from mqttsim.protocol.subscriptions import SubscriptionTree, TopicTrie
from mqttsim.protocol.topics import parse_shared_subscription, topic_matches


def plain(tree: SubscriptionTree, topic: str) -> set[tuple]:
    return set(tree.match(topic))


# ---------------------------------------------------------------- SubscriptionTree basics

def test_add_reports_new_or_replaced_and_keeps_latest_value() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    assert tree.add("a/+", "c1", 1) is True
    assert tree.add("a/+", "c1", 2) is False  # same client, same filter: replaced
    assert tree.add("a/+", "c2", 1) is True
    assert tree.add("a/#", "c1", 0) is True
    assert len(tree) == 3
    assert tree.get("a/+", "c1") == 2
    assert tree.get("a/b", "c1", default=-1) == -1
    assert plain(tree, "a/x") == {("c1", "a/+", 2), ("c2", "a/+", 1), ("c1", "a/#", 0)}


def test_overlapping_subscriptions_of_one_client_all_returned() -> None:
    """The broker merges them into one copy at the highest QoS, with all identifiers."""
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    for topic_filter, qos in (("#", 0), ("sport/#", 1), ("sport/+", 2), ("sport/tennis", 1)):
        tree.add(topic_filter, "c", qos)
    assert sorted(tree.match("sport/tennis")) == [
        ("c", "#", 0), ("c", "sport/#", 1), ("c", "sport/+", 2), ("c", "sport/tennis", 1)]
    assert sorted(tree.match("sport")) == [("c", "#", 0), ("c", "sport/#", 1)]
    assert tree.match("other/x") == [("c", "#", 0)]


def test_remove_and_prune_empty_nodes() -> None:
    tree: SubscriptionTree[str, None] = SubscriptionTree()
    tree.add("a/b/c", "c1", None)
    tree.add("a/+/#", "c1", None)
    tree.add("a/b/c", "c2", None)
    assert tree.remove("a/b/c", "c1") is True
    assert tree.remove("a/b/c", "c1") is False
    assert tree.remove("a/b/c", "nobody") is False
    assert tree.remove("x", "c2") is False
    assert plain(tree, "a/b/c") == {("c1", "a/+/#", None), ("c2", "a/b/c", None)}
    assert tree.remove("a/b/c", "c2") is True
    assert set(tree._root.children["a"].children) == {"+"}  # the a/b/c branch is gone
    assert tree.remove("a/+/#", "c1") is True
    assert tree._root.children == {}
    assert len(tree) == 0
    assert tree.match("a/b/c") == []


def test_remove_all_uses_the_per_key_index() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    for i, topic_filter in enumerate(["a", "a/+", "$share/g/a", "b/#"]):
        tree.add(topic_filter, "gone", i)
    tree.add("a", "stays", 9)
    assert tree.filters_of("gone") == ["a", "a/+", "$share/g/a", "b/#"]
    assert tree.remove_all("gone") == 4
    assert tree.remove_all("gone") == 0
    assert tree.filters_of("gone") == []
    assert len(tree) == 1
    assert tree.match("a") == [("stays", "a", 9)]
    assert tree.match_shared("a") == {}
    assert set(tree._root.children) == {"a"}


def test_filters_of_keeps_subscription_order_across_replacement() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("x", "c", 0)
    tree.add("y", "c", 0)
    tree.add("x", "c", 1)
    assert tree.filters_of("c") == ["x", "y"]


def test_add_validates_and_leaves_tree_unchanged_on_error() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    with pytest.raises(InvalidTopic) as info:
        tree.add("a/#/b", "c", 0)
    assert info.value.rule == "MQTT-4.7.1-1"
    with pytest.raises(InvalidTopic) as info:
        tree.add("a+", "c", 0, version=4)
    assert info.value.rule == "MQTT-4.7.1-3"
    with pytest.raises(InvalidTopic):
        tree.add("$share//a", "c", 0)
    assert len(tree) == 0 and tree._root.children == {} and tree.filters_of("c") == []


def test_v311_MQTT_4_7_2_1_tree_wildcards_skip_dollar_topics() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    for topic_filter in ("#", "+/broker", "+/#", "$SYS/#", "$SYS/+", "$SYS/broker"):
        tree.add(topic_filter, "c", 0, version=4)
    assert sorted(f for _, f, _ in tree.match("$SYS/broker")) == ["$SYS/#", "$SYS/+", "$SYS/broker"]
    assert sorted(f for _, f, _ in tree.match("$SYS")) == ["$SYS/#"]
    assert sorted(f for _, f, _ in tree.match("x/broker")) == ["#", "+/#", "+/broker"]
    assert sorted(f for _, f, _ in tree.match("x/$SYS")) == ["#", "+/#"]


def test_v311_MQTT_4_7_3_4_tree_matching_is_exact() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("Sport/Tennis", "c", 0)
    tree.add("sport /+", "c", 0)
    assert tree.match("sport/tennis") == []
    assert tree.match("sport/ ") == []
    assert tree.match("sport /x") == [("c", "sport /+", 0)]


def test_empty_levels_and_plus_matching_empty_level() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    for topic_filter in ("/", "+/+", "/+", "+", "a//b", "a/+/b"):
        tree.add(topic_filter, "c", 0)
    assert sorted(f for _, f, _ in tree.match("/")) == ["+/+", "/", "/+"]
    assert sorted(f for _, f, _ in tree.match("a//b")) == ["a/+/b", "a//b"]
    assert sorted(f for _, f, _ in tree.match("a")) == ["+"]


def test_very_deep_topic_does_not_recurse() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    deep = "/".join(["x"] * 20000)
    tree.add(deep, "c", 0)
    tree.add("+/" * 19999 + "#", "c", 1)
    assert len(tree.match(deep)) == 2
    assert tree.remove(deep, "c")
    assert tree.remove_all("c") == 1
    assert tree._root.children == {}


def test_match_visits_only_matching_branches() -> None:
    """10,000 literal subscriptions: matching one topic touches a handful of nodes."""
    tree: SubscriptionTree[int, int] = SubscriptionTree()
    for i in range(10_000):
        tree.add(f"dev/{i}/temp", i, 0)
    tree.add("dev/+/temp", -1, 0)
    visited = []

    class CountingDict(dict):
        def get(self, key, default=None):  # type: ignore[override]
            visited.append(key)
            return super().get(key, default)

    dev = tree._root.children["dev"]
    dev.children = CountingDict(dev.children)
    assert sorted(k for k, _, _ in tree.match("dev/42/temp")) == [-1, 42]
    assert sorted(visited) == ["#", "+", "42"]  # no scan over the 10,000 siblings


# ---------------------------------------------------------------- shared subscriptions

def test_v5_shared_subscriptions_are_grouped_by_share_name_and_filter() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("$share/g1/sport/+", "a", 1)
    tree.add("$share/g1/sport/+", "b", 2)
    tree.add("$share/g2/sport/+", "a", 0)
    tree.add("$share/g1/sport/#", "c", 1)  # same share name, other filter: another group
    tree.add("sport/+", "a", 2)  # plain subscription of a member
    assert tree.match("sport/tennis") == [("a", "sport/+", 2)]
    assert tree.match_shared("sport/tennis") == {
        "$share/g1/sport/+": [("a", 1), ("b", 2)],
        "$share/g2/sport/+": [("a", 0)],
        "$share/g1/sport/#": [("c", 1)],
    }
    assert tree.match_shared("sport") == {"$share/g1/sport/#": [("c", 1)]}
    assert tree.filters_of("a") == ["$share/g1/sport/+", "$share/g2/sport/+", "sport/+"]
    assert tree.get("$share/g2/sport/+", "a") == 0
    assert tree.add("$share/g1/sport/+", "b", 1) is False
    assert tree.remove("$share/g1/sport/+", "a") is True
    assert tree.match_shared("sport/x")["$share/g1/sport/+"] == [("b", 1)]
    assert tree.remove("$share/g1/sport/+", "b") is True
    assert "$share/g1/sport/+" not in tree.match_shared("sport/x")
    assert len(tree) == 3


def test_v5_shared_subscription_does_not_match_its_literal_topic() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("$share/g/a", "c", 0)
    assert tree.match_shared("$share/g/a") == {}
    assert tree.match_shared("a") == {"$share/g/a": [("c", 0)]}


def test_v5_shared_hash_filter_still_skips_dollar_topics() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("$share/g/#", "c", 0)
    assert tree.match_shared("$SYS/x") == {}
    assert tree.match_shared("x") == {"$share/g/#": [("c", 0)]}


def test_v311_share_prefix_is_a_literal_filter_in_the_tree() -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    tree.add("$share/g/a", "old", 0, version=4)
    assert tree.match("$share/g/a") == [("old", "$share/g/a", 0)]
    assert tree.match("a") == [] and tree.match_shared("a") == {}
    # the same client later resubscribes with MQTT 5: the string now means a shared group
    assert tree.add("$share/g/a", "old", 1, version=5) is False
    assert tree.match("$share/g/a") == []
    assert tree.match_shared("a") == {"$share/g/a": [("old", 1)]}
    assert len(tree) == 1
    assert tree.remove("$share/g/a", "old")
    assert tree._root.children == {}


# ---------------------------------------------------------------- Hypothesis: tree vs brute force

LEVELS = st.sampled_from(["a", "b", "$x", ""])
TOPICS = st.lists(LEVELS, min_size=1, max_size=4).map("/".join).filter(bool)
PLAIN_FILTERS = st.one_of(
    st.just("#"),
    st.tuples(st.lists(st.one_of(LEVELS, st.just("+")), min_size=1, max_size=4), st.booleans())
    .map(lambda t: "/".join(t[0] + ["#"] if t[1] else t[0])).filter(bool),
)
FILTERS = st.one_of(
    PLAIN_FILTERS,
    st.tuples(st.sampled_from(["g1", "g2"]), PLAIN_FILTERS).map(lambda t: f"$share/{t[0]}/{t[1]}"),
)
KEYS = st.sampled_from(["c1", "c2", "c3"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), FILTERS, KEYS, st.integers(0, 2)),
        st.tuples(st.just("remove"), FILTERS, KEYS, st.just(0)),
        st.tuples(st.just("remove_all"), st.just(""), KEYS, st.just(0)),
    ),
    max_size=40,
)


def brute_force(model: dict[tuple[Hashable, str], int], topic: str) -> tuple[set, dict]:
    plain_hits, shared_hits = set(), {}
    for (key, topic_filter), value in model.items():
        share, inner = parse_shared_subscription(topic_filter)
        if topic_matches(inner, topic):
            if share is None:
                plain_hits.add((key, topic_filter, value))
            else:
                shared_hits.setdefault(topic_filter, set()).add((key, value))
    return plain_hits, shared_hits


@settings(max_examples=300)
@given(OPS, st.lists(TOPICS, min_size=1, max_size=8))
def test_tree_match_equals_brute_force(ops: list, topics: list[str]) -> None:
    tree: SubscriptionTree[str, int] = SubscriptionTree()
    model: dict[tuple[str, str], int] = {}
    for op, topic_filter, key, value in ops:
        if op == "add":
            assert tree.add(topic_filter, key, value) == ((key, topic_filter) not in model)
            model[key, topic_filter] = value
        elif op == "remove":
            assert tree.remove(topic_filter, key) == ((key, topic_filter) in model)
            model.pop((key, topic_filter), None)
        else:
            gone = [k for k in model if k[0] == key]
            assert tree.remove_all(key) == len(gone)
            for k in gone:
                del model[k]
        assert len(tree) == len(model)
    for topic in topics:
        expected_plain, expected_shared = brute_force(model, topic)
        found = tree.match(topic)
        assert len(found) == len(set(found))  # no duplicates
        assert set(found) == expected_plain
        assert {g: set(members) for g, members in tree.match_shared(topic).items()} == expected_shared
    for key in ("c1", "c2", "c3"):
        assert sorted(tree.filters_of(key)) == sorted(f for k, f in model if k == key)
    for key, topic_filter in list(model):
        tree.remove(topic_filter, key)
    assert tree._root.children == {}  # pruning leaves nothing behind


# ---------------------------------------------------------------- TopicTrie

def test_topic_trie_set_get_delete() -> None:
    trie: TopicTrie[bytes] = TopicTrie()
    trie.set("a/b", b"1")
    trie.set("a/b", b"2")
    trie.set("a", b"3")
    assert len(trie) == 2
    assert trie.get("a/b") == b"2" and "a/b" in trie and "a/c" not in trie
    assert trie.get("a/c", b"none") == b"none"
    assert trie.delete("a/b") is True
    assert trie.delete("a/b") is False
    assert trie.delete("zzz") is False
    assert "a/b" not in trie and "a" in trie
    assert trie.delete("a")
    assert len(trie) == 0 and trie._root.children == {}


def test_topic_trie_stores_falsy_values() -> None:
    trie: TopicTrie[object] = TopicTrie()
    trie.set("x", None)
    assert "x" in trie and len(trie) == 1
    assert list(trie.match_filter("#")) == [("x", None)]


def test_topic_trie_match_filter_examples() -> None:
    trie: TopicTrie[int] = TopicTrie()
    topics = ["sport", "sport/tennis", "sport/tennis/p1", "sport/", "/finance", "$SYS/load", "a//b"]
    for i, topic in enumerate(topics):
        trie.set(topic, i)

    def names(topic_filter: str) -> list[str]:
        return sorted(t for t, _ in trie.match_filter(topic_filter))

    assert names("sport/#") == ["sport", "sport/", "sport/tennis", "sport/tennis/p1"]
    assert names("sport/+") == ["sport/", "sport/tennis"]
    assert names("#") == ["/finance", "a//b", "sport", "sport/", "sport/tennis", "sport/tennis/p1"]
    assert names("+/+") == ["/finance", "sport/", "sport/tennis"]
    assert names("$SYS/#") == ["$SYS/load"]
    assert names("+/load") == []  # [MQTT-4.7.2-1]
    assert names("a/+/b") == ["a//b"]
    assert names("Sport") == []  # [MQTT-4.7.3-4]
    assert sorted(trie.items()) == sorted((t, i) for i, t in enumerate(topics))


TRIE_OPS = st.lists(st.tuples(st.booleans(), TOPICS, st.integers(0, 9)), max_size=40)


@settings(max_examples=300)
@given(TRIE_OPS, st.lists(PLAIN_FILTERS, min_size=1, max_size=8))
def test_topic_trie_match_filter_equals_brute_force(ops: list, filters: list[str]) -> None:
    trie: TopicTrie[int] = TopicTrie()
    model: dict[str, int] = {}
    for is_set, topic, value in ops:
        if is_set:
            trie.set(topic, value)
            model[topic] = value
        else:
            assert trie.delete(topic) == (topic in model)
            model.pop(topic, None)
        assert len(trie) == len(model)
    for topic_filter in filters:
        found = list(trie.match_filter(topic_filter))
        assert len(found) == len(set(found))
        assert set(found) == {(t, v) for t, v in model.items() if topic_matches(topic_filter, t)}
    assert dict(trie.items()) == model
    for topic in list(model):
        trie.delete(topic)
    assert trie._root.children == {}
