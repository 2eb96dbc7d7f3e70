"""Topic names, topic filters and matching: the rules of sections 4.7 and 4.8.2 by id and version."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqttsim.protocol.errors import InvalidTopic, ProtocolError
from mqttsim.protocol.topics import (
    MAX_TOPIC_BYTES,
    parse_shared_subscription,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

V311 = pytest.mark.parametrize("version", [3, 4], ids=["3.1", "3.1.1"])


def name_error(name: str, version: int) -> InvalidTopic:
    with pytest.raises(InvalidTopic) as info:
        validate_topic_name(name, version)
    assert info.value.reason_code == 0x90
    return info.value


def filter_error(topic_filter: str, version: int) -> InvalidTopic:
    with pytest.raises(InvalidTopic) as info:
        validate_topic_filter(topic_filter, version)
    assert info.value.reason_code == 0x8F
    return info.value


# ---------------------------------------------------------------- tables users trip over

VALID_FILTERS = [
    "#", "+", "+/+", "/+", "+/", "/", "//", "a//b", "a/+/#", "a/b/c", "+/#", "/#",
    "sport/tennis/player1/#", "sport/+/player1", "$SYS/#", "$SYS/+/x", "a b/c d",
    "a/+/+/+", "ü/温度/+", "$", "$share", "share/g/#",
]
# (filter, 3.1.1 id, 5.0 id)
INVALID_FILTERS = [
    ("a#", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("a/b#", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("a/#/c", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("#/a", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("##", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("a/##", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("#/", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("a/#/", "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
    ("a+", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("+a", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("a/+b/c", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("++", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("a/++/#", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("sport+", "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
    ("", "MQTT-4.7.3-1", "MQTT-4.7.3-1"),
    ("a/\x00", "MQTT-4.7.3-2", "MQTT-4.7.3-2"),
]


@V311
@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_v311_valid_filters(topic_filter: str, version: int) -> None:
    validate_topic_filter(topic_filter, version)


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_v5_valid_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter, 5)


@V311
@pytest.mark.parametrize(("topic_filter", "rule", "_rule5"), INVALID_FILTERS)
def test_v311_invalid_filters(topic_filter: str, rule: str, _rule5: str, version: int) -> None:
    assert filter_error(topic_filter, version).rule == rule


@pytest.mark.parametrize(("topic_filter", "_rule311", "rule"), INVALID_FILTERS)
def test_v5_invalid_filters(topic_filter: str, _rule311: str, rule: str) -> None:
    assert filter_error(topic_filter, 5).rule == rule


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("name", ["a", "/", "a//b", "$SYS/broker/load", "a b", "ü/温度", " ", "$"])
def test_valid_topic_names(name: str, version: int) -> None:
    validate_topic_name(name, version)


# ---------------------------------------------------------------- 4.7.3: size and characters

@V311
def test_v311_MQTT_4_7_3_1_topic_name_and_filter_at_least_one_character(version: int) -> None:
    assert name_error("", version).rule == "MQTT-4.7.3-1"
    assert filter_error("", version).rule == "MQTT-4.7.3-1"


def test_v5_MQTT_4_7_3_1_topic_name_and_filter_at_least_one_character() -> None:
    assert name_error("", 5).rule == "MQTT-4.7.3-1"
    assert filter_error("", 5).rule == "MQTT-4.7.3-1"


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "a/\x00", "\x00/#"])
def test_v311_MQTT_4_7_3_2_no_null_character(text: str) -> None:
    if "#" not in text:
        assert name_error(text, 4).rule == "MQTT-4.7.3-2"
    assert filter_error(text, 4).rule == "MQTT-4.7.3-2"


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "a/\x00", "\x00/#"])
def test_v5_MQTT_4_7_3_2_no_null_character(text: str) -> None:
    if "#" not in text:
        assert name_error(text, 5).rule == "MQTT-4.7.3-2"
    assert filter_error(text, 5).rule == "MQTT-4.7.3-2"


# (text, UTF-8 size): single-byte, two-byte and four-byte characters on both sides of the limit
LENGTH_CASES = [
    ("a" * 65535, 65535),
    ("a" * 65536, 65536),
    ("é" * 32767 + "a", 65535),
    ("é" * 32768, 65536),
    ("😀" * 16383 + "abc", 65535),
    ("😀" * 16384, 65536),
]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize(("text", "size"), LENGTH_CASES, ids=lambda v: str(v)[:8])
def test_MQTT_4_7_3_3_at_most_65535_utf8_bytes(text: str, size: int, version: int) -> None:
    assert len(text.encode()) == size
    for check in (validate_topic_name, validate_topic_filter):
        if size <= MAX_TOPIC_BYTES:
            check(text, version)
        else:
            with pytest.raises(InvalidTopic) as info:
                check(text, version)
            assert info.value.rule == "MQTT-4.7.3-3"
            assert "65536 bytes" in info.value.message
            assert len(str(info.value)) < 300  # the message does not paste the whole topic


def test_v311_MQTT_4_7_3_3_filter_length_counts_wildcards() -> None:
    validate_topic_filter("a" * 65533 + "/#", 4)
    assert filter_error("a" * 65534 + "/#", 4).rule == "MQTT-4.7.3-3"


def test_v5_MQTT_4_7_3_3_shared_filter_length_counts_the_prefix() -> None:
    prefix = "$share/g/"
    validate_topic_filter(prefix + "a" * (65535 - len(prefix)), 5)
    assert filter_error(prefix + "a" * (65536 - len(prefix)), 5).rule == "MQTT-4.7.3-3"


# ---------------------------------------------------------------- wildcards in names

@V311
@pytest.mark.parametrize("name", ["+", "#", "a/+", "a/#", "a+", "sport/tennis#", "+/x"])
def test_v311_MQTT_4_7_1_1_no_wildcards_in_topic_names(name: str, version: int) -> None:
    err = name_error(name, version)
    assert err.rule == "MQTT-4.7.1-1"
    assert "wildcards are only allowed in subscriptions" in err.message


@pytest.mark.parametrize("name", ["+", "#", "a/+", "a/#", "a+", "sport/tennis#", "+/x"])
def test_v5_MQTT_4_7_0_1_no_wildcards_in_topic_names(name: str) -> None:
    err = name_error(name, 5)
    assert err.rule == "MQTT-4.7.0-1"


@pytest.mark.parametrize("version", [3, 4, 5])
def test_MQTT_3_3_2_2_publish_rule_named_in_wildcard_message(version: int) -> None:
    err = name_error("a/+", version)
    assert str(err).startswith(f"[{err.rule}] topic name 'a/+' contains the wildcard '+'")
    assert "MQTT-3.3.2-2" in err.message


def test_invalid_topic_is_a_protocol_error() -> None:
    err = name_error("a/#", 4)
    assert isinstance(err, ProtocolError)


def test_unknown_version_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="version 6"):
        validate_topic_name("a", 6)
    with pytest.raises(ValueError):
        validate_topic_filter("a", 2)


# ---------------------------------------------------------------- wildcards in filters

@V311
def test_v311_MQTT_4_7_1_2_hash_alone_or_after_slash_and_last(version: int) -> None:
    for ok in ("#", "a/#", "/#", "a/b/#", "+/#"):
        validate_topic_filter(ok, version)
    for bad in ("a#", "a/#/b", "#/", "#a", "a/b#"):
        assert filter_error(bad, version).rule == "MQTT-4.7.1-2"
    assert "'a/#/b'" in filter_error("a/#/b", version).message


def test_v5_MQTT_4_7_1_1_hash_alone_or_after_slash_and_last() -> None:
    for ok in ("#", "a/#", "/#", "a/b/#", "+/#"):
        validate_topic_filter(ok, 5)
    for bad in ("a#", "a/#/b", "#/", "#a", "a/b#"):
        assert filter_error(bad, 5).rule == "MQTT-4.7.1-1"


@V311
def test_v311_MQTT_4_7_1_3_plus_occupies_whole_level(version: int) -> None:
    for ok in ("+", "+/+", "/+", "+/", "a/+/b", "+/tennis/#"):
        validate_topic_filter(ok, version)
    for bad in ("a+", "+a", "a/+b", "sport+", "a/b+/c", "++"):
        assert filter_error(bad, version).rule == "MQTT-4.7.1-3"


def test_v5_MQTT_4_7_1_2_plus_occupies_whole_level() -> None:
    for ok in ("+", "+/+", "/+", "+/", "a/+/b", "+/tennis/#"):
        validate_topic_filter(ok, 5)
    for bad in ("a+", "+a", "a/+b", "sport+", "a/b+/c", "++"):
        assert filter_error(bad, 5).rule == "MQTT-4.7.1-2"


# ---------------------------------------------------------------- shared subscriptions

def test_v5_MQTT_4_8_2_1_share_name_not_empty() -> None:
    for bad in ("$share//a", "$share/", "$share//#"):
        assert filter_error(bad, 5).rule == "MQTT-4.8.2-1"


def test_v5_MQTT_4_8_2_2_share_name_without_wildcards_then_slash_and_filter() -> None:
    for bad in ("$share/g+/a", "$share/+/a", "$share/#/a", "$share/g#", "$share/g", "$share/g/"):
        err = filter_error(bad, 5)
        assert err.rule == "MQTT-4.8.2-2", bad
    for ok in ("$share/g/a", "$share/g/#", "$share/g/+/b", "$share/g//", "$share/g/$SYS/#",
               "$share/g/$share/h/x"):
        validate_topic_filter(ok, 5)


def test_v5_shared_subscription_filter_part_follows_the_filter_rules() -> None:
    assert filter_error("$share/g/a#", 5).rule == "MQTT-4.7.1-1"
    assert filter_error("$share/g/a+", 5).rule == "MQTT-4.7.1-2"
    assert "'$share/g/a#'" in filter_error("$share/g/a#", 5).message


@V311
def test_v311_share_prefix_is_an_ordinary_filter(version: int) -> None:
    for ok in ("$share/g/a", "$share//a", "$share/", "$share/g"):
        validate_topic_filter(ok, version)
        assert parse_shared_subscription(ok, version) == (None, ok)
    assert filter_error("$share/g+/a", version).rule == "MQTT-4.7.1-3"
    assert filter_error("$share/#/a", version).rule == "MQTT-4.7.1-2"


def test_parse_shared_subscription() -> None:
    assert parse_shared_subscription("$share/g/a/+/#") == ("g", "a/+/#")
    assert parse_shared_subscription("$share/consumer1/sport/tennis/+") == ("consumer1", "sport/tennis/+")
    assert parse_shared_subscription("$share/g//") == ("g", "/")
    assert parse_shared_subscription("a/b") == (None, "a/b")
    assert parse_shared_subscription("$SHARE/g/a") == (None, "$SHARE/g/a")  # case matters
    with pytest.raises(InvalidTopic):
        parse_shared_subscription("$share//a")


# ---------------------------------------------------------------- matching

MATCH_CASES = [
    # filter, topic, matches
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/tennis/player1/#", "sport/tennis/player2", False),
    ("sport/#", "sport", True),
    ("sport/#", "sports", False),
    ("#", "a/b/c", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "a", True),
    ("+/tennis/#", "sport/tennis/x", True),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("a/b", "a/b/", False),
    ("a/b/", "a/b", False),
    ("/a", "a", False),
    ("a/#", "a/", True),
    ("+/#", "a", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_CASES)
def test_topic_matches_examples(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_v311_MQTT_4_7_2_1_wildcard_first_level_does_not_match_dollar_topics() -> None:
    assert not topic_matches("#", "$SYS/broker/clients")
    assert not topic_matches("#", "$SYS")
    assert not topic_matches("+/monitor/Clients", "$SYS/monitor/Clients")
    assert not topic_matches("+", "$")
    assert topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients")
    assert topic_matches("$SYS/#", "$SYS/x")
    assert topic_matches("$SYS/#", "$SYS")
    assert topic_matches("$SYS", "$SYS")
    assert topic_matches("a/+", "a/$b")  # only the first level is special
    assert topic_matches("#", "a/$b")


def test_v5_MQTT_4_7_2_1_wildcard_first_level_does_not_match_dollar_topics() -> None:
    assert not topic_matches("#", "$share/g/a")
    assert not topic_matches("+/x", "$x/x")
    assert topic_matches("$x/+", "$x/x")


@pytest.mark.parametrize(("topic_filter", "topic"), [
    ("ACCOUNTS", "Accounts"),
    ("a/b", "a/b "),
    ("a /b", "a/b"),
    ("a/b", "a//b"),
    ("a/b", "/a/b"),
    (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")),
    ("ｆｕｌｌ", "full"),
])
def test_v311_MQTT_4_7_3_4_no_normalisation_when_matching(topic_filter: str, topic: str) -> None:
    assert not topic_matches(topic_filter, topic)
    assert not topic_matches(topic, topic_filter)
    assert topic_matches(topic_filter, topic_filter)


def test_v5_MQTT_4_7_3_4_no_normalisation_when_matching() -> None:
    assert not topic_matches("Sport/+", "sport/x")
    assert not topic_matches("sport/ tennis", "sport/tennis")
    assert topic_matches("sport/ tennis", "sport/ tennis")


# ---------------------------------------------------------------- properties

LEVEL_TEXT = st.sampled_from(["a", "b", "$x", "", "$", "A", " "])
TOPIC_NAMES = st.lists(LEVEL_TEXT, min_size=1, max_size=5).map("/".join).filter(bool)
FILTER_LEVELS = st.lists(st.one_of(LEVEL_TEXT, st.just("+")), min_size=1, max_size=5)
TOPIC_FILTERS = st.tuples(FILTER_LEVELS, st.booleans()).map(
    lambda t: "/".join(t[0] + ["#"] if t[1] else t[0])).filter(bool) | st.just("#")


def reference_match(topic_filter: str, topic: str) -> bool:
    """An independent oracle: the filter as a regular expression."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    if topic_filter == "#":
        return True
    head, hash_tail = (topic_filter[:-2], True) if topic_filter.endswith("/#") else (topic_filter, False)
    pattern = "/".join("[^/]*" if level == "+" else re.escape(level) for level in head.split("/"))
    if hash_tail:
        pattern += "(/.*)?"
    return re.fullmatch(pattern, topic, flags=re.DOTALL) is not None


@given(TOPIC_FILTERS, TOPIC_NAMES)
def test_topic_matches_agrees_with_regex_oracle(topic_filter: str, topic: str) -> None:
    validate_topic_filter(topic_filter, 4)
    validate_topic_name(topic, 4)
    assert topic_matches(topic_filter, topic) == reference_match(topic_filter, topic)


@given(TOPIC_NAMES)
def test_every_topic_matches_itself_and_is_a_valid_filter(topic: str) -> None:
    validate_topic_filter(topic, 4)
    assert topic_matches(topic, topic)


def level_rule_ok(topic_filter: str) -> bool:
    """Oracle for the wildcard rules, stated per level."""
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


@given(st.text(alphabet="ab/+#$", min_size=1, max_size=10))
def test_filter_validation_agrees_with_level_rules(text: str) -> None:
    for version in (4, 5):
        try:
            validate_topic_filter(text, version)
        except InvalidTopic as err:
            assert not level_rule_ok(text) or (version == 5 and text.startswith("$share/"))
            assert err.rule is not None
        else:
            assert level_rule_ok(text) or (version == 5 and text.startswith("$share/"))


@given(st.text(alphabet="ab/+#$\x00", min_size=0, max_size=10))
def test_name_validation_accepts_exactly_wildcard_free_names(text: str) -> None:
    ok = bool(text) and not any(c in text for c in "+#\x00")
    try:
        validate_topic_name(text, 5)
    except InvalidTopic:
        assert not ok
    else:
        assert ok
