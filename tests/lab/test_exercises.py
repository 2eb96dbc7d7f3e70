"""The exercise checkers: a right answer passes, a wrong one gets a hint, and no verdict ever
gives the right answer away. The right answers here are worked out from the specification by
hand (bytes counted, packets of the QoS flows counted, 20 + 1.5 x 20 s...), independently of
how the checkers compute theirs from the codec and the simulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mqttsim.lab.exercises import EXERCISES, NOT_ANSWERED, Verdict, check

ROOT = Path(__file__).resolve().parents[2]

RIGHT = {
    "publish-bytes": {"wire": "30 0a 00 06 73 65 6e 73 6f 72 31 32", "qos1_extra": 2},
    "topic-filters": {
        "invalid": {"home/kitchen+", "home/#/temperature"},
        "matching": {"home/#", "home/+/temperature", "+/+/+", "#", "home/kitchen/#",
                     "home/kitchen/temperature/#"}},
    "qos-packets": {0: 2, 1: 4, 2: 8},
    # Last PINGREQ at 20 s (one keepalive after the SUBACK), then 1.5 x 20 s of silence.
    "keepalive": 50.0,
    # Published at 1, 3, ..., 33 s: 17 messages. Away 10-24 s: a clean session misses the
    # 7 published from 11 to 23 s; the one at 25 s comes a second after it is back.
    "sessions": {"clean_false": 17, "clean_true": 10},
    "loss": {"tcp": 0, "datagram": 4},
    # kitchen retains 5 messages (1-9 s), bath's is not retained, garage retains one: at 12 s
    # the display gets kitchen#5 and garage's.
    "retained": {"received": 2, "kitchen_seq": 5},
    # polite's DISCONNECT discards its will; crashy's reset publishes it at once; faraway's
    # last PINGREQ is at 10 s, its link dies at 15 s: 10 + 1.5 x 10 = 25 s.
    "wills": {"wills_from": {"crashy", "faraway"}, "faraway_at": 25.0},
    # 22 messages (1, 3, ..., 43 s). Expiry 10 s: the session is gone at 20 s with the 5
    # queued (11-19 s), and the 5 published while no session existed (21-29 s) go nowhere.
    "session-expiry": {"expiry_60": 22, "expiry_10": 12},
    # 30 jobs from 2 s, every 0.5 s; 8 of them before w3 subscribes at 6 s (4 each to w1 and
    # w2), then 22 in turn over three workers, w1 first: 8, 7, 7.
    "shared-subscriptions": {"w1": 12, "w2": 11, "w3": 7, "logger": 30},
    # 10 messages while away (11-29 s): the first 5 fill the queue, the last 5 are refused.
    "offline-queue": {"received": 17, "dropped": 5, "kept": "oldest"},
    # Two connections, each a 3-segment handshake; 11 MQTT packets, each in its own segment,
    # with the pure ACKs and the FIN exchange; pub sends CONNECT 17 + PUBLISH 14 (QoS 1:
    # 2 + 2 + 6 + 2 + 2) + DISCONNECT 2 bytes.
    "capture": {"frames": 29, "with_mqtt": 11, "pub_bytes": 33},
}


def revealed(verdict: Verdict, exercise: str) -> list[str]:
    """Pieces of the right answer that appear in the verdict's text."""
    right = RIGHT[exercise]
    text = str(verdict) + re.sub(r"<[^>]*>", "", verdict._repr_html_())  # words, not styles
    pieces = {"publish-bytes": ["30 0a", "300a"], "keepalive": ["50"],
              "sessions": ["17", "10"], "loss": [" 4"], "retained": ["#5"],
              "wills": ["25"], "session-expiry": ["22", "12"],
              "shared-subscriptions": ["12", "11", " 7", "30"],
              "offline-queue": ["17", "keeps the oldest"], "capture": ["29", "11", "33"],
              }.get(exercise, [])
    if exercise == "qos-packets":
        pieces = [f"{q}: {n}" for q, n in right.items()]
    return [p for p in pieces if p in text]


@pytest.mark.parametrize("exercise", list(RIGHT))
def test_right_answer_is_right(exercise: str) -> None:
    verdict = check(exercise, RIGHT[exercise])
    assert verdict.correct, verdict.message
    assert bool(verdict) and "RIGHT" in str(verdict) and "Right" in verdict._repr_html_()


def test_every_exercise_is_tested() -> None:
    assert set(RIGHT) == set(EXERCISES)


@pytest.mark.parametrize("exercise", list(RIGHT))
@pytest.mark.parametrize("placeholder", [None, ..., {}])
def test_placeholder_is_not_answered_not_wrong(exercise: str, placeholder) -> None:
    if placeholder == {} and not isinstance(RIGHT[exercise], dict):
        placeholder = None
    if placeholder == {}:
        placeholder = dict.fromkeys(RIGHT[exercise], ...)
    verdict = check(exercise, placeholder)
    assert not verdict.correct and not verdict.answered
    assert verdict.message == NOT_ANSWERED


INVALID, MATCHING = RIGHT["topic-filters"]["invalid"], RIGHT["topic-filters"]["matching"]
WRONG = [
    # (exercise, answer, words the hint must contain)
    ("publish-bytes", {"wire": "30 08 00 06 73 65 6e 73 6f 72 31 32", "qos1_extra": 2},
     "remaining length"),
    ("publish-bytes", {"wire": "30 0a 06 73 65 6e 73 6f 72 31 32", "qos1_extra": 2},
     "2-byte length prefix"),
    ("publish-bytes", {"wire": "32 0a 00 06 73 65 6e 73 6f 72 31 32", "qos1_extra": 2},
     "first byte"),
    ("publish-bytes", {"wire": "30 0a 00 06 73 65 6e 73 6f 72 31 32", "qos1_extra": 1},
     "MQTT-2.3.1-5"),
    ("publish-bytes", {"wire": "not hex", "qos1_extra": 2}, "not hex"),
    ("topic-filters", {"invalid": {"home/kitchen+"}, "matching": MATCHING}, "MQTT-4.7.1-2"),
    ("topic-filters", {"invalid": INVALID, "matching": MATCHING - {"home/kitchen/temperature/#"}},
     "parent level"),
    ("topic-filters", {"invalid": INVALID, "matching": MATCHING | {"home/+"}},
     "exactly one level"),
    ("topic-filters", {"invalid": INVALID, "matching": {"home/#", "nonsense/#"}},
     "not among the filters"),
    ("topic-filters", {"invalid": "home/kitchen+", "matching": set()}, "should be a set"),
    ("qos-packets", {0: 1, 1: 2, 2: 4}, "QoS 0, 1 and 2: you counted one hop"),
    ("qos-packets", {0: 2, 1: 2, 2: 4}, "QoS 1 and 2: you counted one hop"),
    ("qos-packets", {0: 2, 1: 3, 2: 8}, "QoS 1"),
    ("qos-packets", {0: 2, 1: 4}, "no answer yet for 2"),
    ("keepalive", 60.0, "last packet it received"),
    ("keepalive", 40.0, "one and a half"),
    ("keepalive", 10.0, "before the link even died"),
    ("keepalive", 45.0, "1.5 x rule"),
    ("keepalive", "soon", "one number"),
    ("sessions", {"clean_false": 10, "clean_true": 10}, "MQTT-3.1.2-5"),
    ("sessions", {"clean_false": 17, "clean_true": 17}, "MQTT-3.1.2-6"),
    ("sessions", [17, 9], "expected a dict"),
    ("loss", {"tcp": 6, "datagram": 4}, "TCP resends"),
    ("loss", {"tcp": 0, "datagram": 0}, "nobody resends"),
    ("loss", {"tcp": 0, "datagram": 4, "udp": 4}, "unexpected key"),
    ("retained", {"received": 3, "kitchen_seq": 5}, "without RETAIN is not kept"),
    ("retained", {"received": 2, "kitchen_seq": 1}, "replaces the one before"),
    ("wills", {"wills_from": {"polite", "crashy", "faraway"}, "faraway_at": 25.0},
     "MQTT-3.14.4-3"),
    ("wills", {"wills_from": {"faraway"}, "faraway_at": 25.0}, "MQTT-3.1.2-8"),
    ("wills", {"wills_from": {"crashy", "faraway"}, "faraway_at": 15.0}, "last packet it"),
    ("wills", {"wills_from": {"crashy", "faraway"}, "faraway_at": 12.0}, "before faraway"),
    ("wills", {"wills_from": "crashy", "faraway_at": 25.0}, "should be a set"),
    ("session-expiry", {"expiry_60": 12, "expiry_10": 12}, "less than its session expiry"),
    ("session-expiry", {"expiry_60": 22, "expiry_10": 22}, "discards it"),
    ("shared-subscriptions", {"w1": 10, "w2": 10, "w3": 10, "logger": 0}, "ordinary"),
    ("shared-subscriptions", {"w1": 30, "w2": 30, "w3": 30, "logger": 30}, "exactly one"),
    ("shared-subscriptions", {"w1": 10, "w2": 10, "w3": 10, "logger": 30}, "in turn"),
    ("offline-queue", {"received": 17, "dropped": 5, "kept": "newest"}, "refuses"),
    ("offline-queue", {"received": 22, "dropped": 0, "kept": "oldest"}, "at most 5"),
    ("offline-queue", {"received": 17, "dropped": 5, "kept": "some"}, "'oldest' or"),
    ("capture", {"frames": 11, "with_mqtt": 11, "pub_bytes": 33}, "TCP's own too"),
    ("capture", {"frames": 29, "with_mqtt": 29, "pub_bytes": 33}, "payload is not empty"),
    ("capture", {"frames": 29, "with_mqtt": 11, "pub_bytes": 14}, "not only the PUBLISH"),
]


@pytest.mark.parametrize("exercise, answer, hint", WRONG)
def test_wrong_answer_gets_a_hint_not_the_answer(exercise: str, answer, hint: str) -> None:
    verdict = check(exercise, answer)
    assert verdict.answered and not verdict.correct
    assert hint in verdict.message, verdict.message
    assert "WRONG" in str(verdict) and "Not yet" in verdict._repr_html_()
    assert not revealed(verdict, exercise), verdict.message


def test_unknown_exercise_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="publish-bytes"):
        check("no-such-exercise", 1)


def test_answers_may_be_written_in_other_natural_forms() -> None:
    assert check("publish-bytes", {"wire": bytes.fromhex("300a000673656e736f723132"),
                                   "qos1_extra": 2.0})
    assert check("topic-filters", {"invalid": ["home/kitchen+", "home/#/temperature"],
                                   "matching": list(RIGHT["topic-filters"]["matching"])})
    assert check("keepalive", 50.4)  # within a second


def test_a_hint_is_said_once_and_hints_are_separate_sentences() -> None:
    one_hop = check("qos-packets", {0: 1, 1: 2, 2: 4}).message
    assert one_hop.count("you counted one hop") == 1, one_hop
    two = check("publish-bytes", {"wire": "30 08 00 06 73 65 6e 73 6f 72 31 32",
                                  "qos1_extra": 1}).message
    assert "after itself. 'qos1_extra'" in two, two
    for exercise, answer, _ in WRONG:
        message = check(exercise, answer).message
        assert message.rstrip()[-1] in ".?!", message


def test_the_session_story_has_no_message_at_the_instants_the_phone_leaves_or_returns() -> None:
    """Exercise 5 was ambiguous when a message went out exactly as the phone came back."""
    from mqttsim.lab.exercises import session_scenario
    sc = session_scenario()
    phone = next(c for c in sc.clients if c.name == "phone")
    friend = next(c for c in sc.clients if c.name == "friend").publish[0]
    sent = [friend.start + i * friend.interval
            for i in range(int((friend.stop - friend.start) / friend.interval) + 1)]
    for crash in phone.crashes:
        for instant in (crash.at, crash.at + crash.down):
            assert min(abs(t - instant) for t in sent) >= 0.5, (instant, sent)
    text = (ROOT / "notebooks" / "exercises" / "ex5-sessions.ipynb").read_text()
    crash = phone.crashes[0]
    assert f"crashes at {crash.at:g} s and is back at {crash.at + crash.down:g} s" in text


def test_the_loss_story_sends_the_sixty_messages_the_question_says() -> None:
    from mqttsim import run
    from mqttsim.lab.exercises import loss_scenario
    assert len(run(loss_scenario(), seed=1).published) == 60
    text = (ROOT / "notebooks" / "exercises" / "ex6-loss-over-tcp.ipynb").read_text()
    assert "once a second for a minute (60 messages" in text


def test_the_answer_key_agrees_with_the_answers_worked_out_by_hand() -> None:
    from mqttsim.lab.grade import answer_key
    key = answer_key()
    assert set(key) == set(RIGHT)
    for exercise, right in RIGHT.items():
        if exercise == "publish-bytes":
            assert key[exercise] == right
        elif exercise == "keepalive":
            assert abs(key[exercise] - right) <= 1.0
        elif exercise == "wills":
            assert key[exercise]["wills_from"] == right["wills_from"]
            assert abs(key[exercise]["faraway_at"] - right["faraway_at"]) <= 1.0
        else:
            assert key[exercise] == right, exercise
