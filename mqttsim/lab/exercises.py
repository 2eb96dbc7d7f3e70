"""Checkers for the exercise notebooks (notebooks/exercises/): right, or wrong and why.

A learner writes ``answer = ...`` in a cell and runs ``check("qos-packets", answer)``. The
checker works the right answer out itself, from the codec or from a simulator run, at check
time: when the codec or the simulator changes, the expected answer moves with it instead of
drifting away from a number typed in here. The verdict never contains the right answer, only
what is wrong with the learner's and a hint where to look.

Every exercise has an id, a question and a checker; ``EXERCISES`` lists them and
``check(id, answer)`` runs one. A ``Verdict`` shows as a coloured box in a notebook and as one
line of text elsewhere; ``bool(verdict)`` says whether the answer was right.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["check", "Verdict", "Exercise", "EXERCISES", "NOT_ANSWERED"]

NOT_ANSWERED = "Not answered yet: replace the ... (or None) in the answer cell and run it again."


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: right or not, and what to tell the learner."""

    exercise: str
    correct: bool
    message: str
    answered: bool = True

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = "RIGHT" if self.correct else ("NOT YET" if not self.answered else "WRONG")
        return f"[{self.exercise}] {mark}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.correct else ("#777" if not self.answered else "#b3261e")
        mark = "✔ Right" if self.correct else ("… Not answered" if not self.answered
                                                 else "✘ Not yet")
        return (f"<div style='border-left:4px solid {colour};padding:4px 10px'>"
                f"<b style='color:{colour}'>{mark}</b> ({html.escape(self.exercise)}): "
                f"{html.escape(self.message)}</div>")


@dataclass(frozen=True)
class Exercise:
    id: str
    question: str
    checker: Callable[[Any], tuple[bool, str]]


def _unanswered(answer: Any) -> bool:
    if answer is None or answer is Ellipsis:
        return True
    if isinstance(answer, Mapping):
        return all(_unanswered(v) for v in answer.values())
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _join(hints: list[str]) -> str:
    """Several hints as sentences: each ends with its own full stop (or question mark)."""
    return " ".join(h if h.endswith((".", "?", "!")) else h + "." for h in hints)


def _parts(answer: Any, keys: tuple, what: str) -> tuple[dict | None, str]:
    """``answer`` as a dict with exactly ``keys``, or (None, what is wrong with it)."""
    if not isinstance(answer, Mapping):
        return None, f"expected a dict {{{', '.join(map(repr, keys))}}} of {what}"
    missing = [k for k in keys if k not in answer or _unanswered(answer[k])]
    extra = [k for k in answer if k not in keys]
    if missing:
        return None, f"no answer yet for {', '.join(map(repr, missing))}"
    if extra:
        return None, f"unexpected key(s) {', '.join(map(repr, extra))}; use {list(keys)}"
    return dict(answer), ""


# --- 1. Bytes on the wire ----------------------------------------------------------------

@lru_cache(maxsize=None)
def _publish_wire(qos: int) -> bytes:
    from ..protocol import encode
    from ..protocol.packets import Publish
    packet = Publish(topic="sensor", payload=b"12", qos=qos, packet_id=1 if qos else None)
    return encode(packet, 4)


def _check_publish_bytes(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("wire", "qos1_extra"), "answers")
    if parts is None:
        return False, problem
    wire, extra = parts["wire"], parts["qos1_extra"]
    if isinstance(wire, str):
        try:
            wire = bytes.fromhex(wire)
        except ValueError:
            return False, ("'wire' is not hex: write bytes like bytes.fromhex('ab cd ...') "
                           "or the string 'ab cd ...'")
    if not isinstance(wire, (bytes, bytearray)):
        return False, "'wire' should be bytes (or a hex string)"
    right = _publish_wire(0)
    hints = []
    if bytes(wire) != right:
        if len(wire) != len(right):
            hints.append(f"your PUBLISH is {len(wire)} bytes, which is not its length: count "
                         "the fixed header (type and flags, then the remaining length), the "
                         "topic with its 2-byte length prefix, then the payload (section 3.3)")
        elif wire[:1] != right[:1]:
            hints.append("the first byte is wrong: PUBLISH is packet type 3 in the high "
                         "nibble; DUP, QoS and RETAIN are the low bits, all 0 here")
        elif wire[1:2] != right[1:2]:
            hints.append("the remaining length (second byte) is wrong: it counts every byte "
                         "after itself")
        else:
            hints.append("the header is right but the topic or payload bytes are not: "
                         "a topic is a 2-byte big-endian length, then UTF-8")
    extra_number = _number(extra)
    if extra_number is None or extra_number != len(_publish_wire(1)) - len(right):
        hints.append("'qos1_extra' is not right: what does a QoS 1 PUBLISH carry that a "
                     "QoS 0 one must not [MQTT-2.3.1-5]? How many bytes is it?")
    if hints:
        return False, _join(hints)
    return True, ("these are the codec's bytes exactly; `mqttsim decode` on them prints the "
                  "PUBLISH back.")


# --- 2. Topic filters --------------------------------------------------------------------

TOPIC_NAME = "home/kitchen/temperature"
FILTERS = ("home/#", "home/+", "home/+/temperature", "+/+/+", "#", "home/kitchen/#",
           "home/kitchen/temperature/#", "+/kitchen", "home/kitchen+", "home/#/temperature",
           "/home/kitchen/temperature", "sport/#")


@lru_cache(maxsize=None)
def _topic_truth() -> tuple[frozenset, frozenset]:
    from ..protocol.errors import InvalidTopic
    from ..protocol.topics import topic_matches, validate_topic_filter
    invalid, matching = set(), set()
    for topic_filter in FILTERS:
        try:
            validate_topic_filter(topic_filter, 4)
        except InvalidTopic:
            invalid.add(topic_filter)
            continue
        if topic_matches(topic_filter, TOPIC_NAME):
            matching.add(topic_filter)
    return frozenset(invalid), frozenset(matching)


def _as_set(value: Any) -> set | None:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return None
    return set(value)


def _check_topic_filters(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("invalid", "matching"), "sets of filters")
    if parts is None:
        return False, problem
    invalid, matching = _as_set(parts["invalid"]), _as_set(parts["matching"])
    if invalid is None or matching is None:
        return False, "each part should be a set of filters, e.g. {'home/#', '#'}"
    unknown = (invalid | matching) - set(FILTERS)
    if unknown:
        return False, f"{sorted(unknown)} are not among the filters of the question"
    right_invalid, right_matching = _topic_truth()
    hints = []
    if invalid != right_invalid:
        if invalid - right_invalid:
            hints.append(f"{len(invalid - right_invalid)} of your 'invalid' filters are "
                         "valid: an empty level and a leading '/' are allowed")
        if right_invalid - invalid:
            hints.append(f"you missed {len(right_invalid - invalid)} invalid filter(s): '#' "
                         "must be last and alone in its level [MQTT-4.7.1-2], '+' alone in "
                         "its level [MQTT-4.7.1-3]")
    if matching & right_invalid:
        hints.append("an invalid filter cannot match anything: a broker refuses it")
    elif matching != right_matching:
        if matching - right_matching:
            hints.append(f"{len(matching - right_matching)} of your 'matching' filters do "
                         f"not match {TOPIC_NAME!r}: '+' is exactly one level, and "
                         "levels are compared from the start")
        if right_matching - matching:
            hints.append(f"you missed {len(right_matching - matching)} matching filter(s): "
                         "remember that '#' also matches the parent level itself "
                         "(4.7.1.2)")
    if hints:
        return False, _join(hints)
    return True, "exactly what the broker's subscription tree decides."


# --- 3. Packets per QoS ------------------------------------------------------------------

FLOW_TYPES = ("PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP")


@lru_cache(maxsize=None)
def _flow_packets(qos: int) -> int:
    """PUBLISH-flow packets on both links of seed-sensor.toml at ``qos`` (pub and sub)."""
    from ..scenario import run
    res = run(_seed_sensor().with_(qos=qos), seed=1)
    return int(res.packets["type"].isin(FLOW_TYPES).sum())


def _seed_sensor() -> Any:
    from pathlib import Path

    from ..scenario import Scenario
    path = Path(__file__).resolve().parents[2] / "data" / "scenarios" / "seed-sensor.toml"
    if path.is_file():
        return Scenario.load(path)
    return Scenario.from_dict(SEED_SENSOR, "seed-sensor")


#: seed-sensor.toml's content, for an installed package without the repository's data/.
SEED_SENSOR = {
    "name": "seed-sensor", "duration": 5.0, "version": "3.1.1", "qos": 0, "clean": True,
    "keepalive": 60, "link": {"latency": 0.001},
    "clients": [{"name": "sub", "connect_at": 0.0, "subscribe": ["sensor"]},
                {"name": "pub", "connect_at": 1.0, "disconnect_at": 2.0,
                 "publish": {"topic": "sensor", "pattern": "once", "start": 1.0,
                             "message": "12"}}]}


def _check_qos_packets(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, (0, 1, 2), "packet counts per QoS")
    if parts is None:
        return False, problem
    hints, one_hop = [], []
    for qos in (0, 1, 2):
        value = _number(parts[qos])
        right = _flow_packets(qos)
        if value == right:
            continue
        if value is not None and value == right / 2:
            one_hop.append(str(qos))
        else:
            hints.append({0: "QoS 0: no acknowledgement at all (section 4.3.1)",
                          1: "QoS 1: each hop is a PUBLISH and its acknowledgement (4.3.2)",
                          2: "QoS 2: each hop is a four-packet handshake (4.3.3)"}[qos]
                         + f" - your count {parts[qos]!r} is not right")
    if one_hop:  # said once, however many levels it concerns
        levels = " and ".join(filter(None, (", ".join(one_hop[:-1]), one_hop[-1])))
        hints.insert(0, f"QoS {levels}: you counted one hop; the message crosses two "
                        "(publisher to broker, broker to subscriber), each with its own "
                        "handshake")
    if hints:
        return False, _join(hints)
    return True, "count them yourself in res.packets, or in the ladder diagrams of 03-qos."


# --- 4. Keepalive: when does the broker notice? ------------------------------------------

KEEPALIVE = 20
OUTAGE_START = 30.0


def keepalive_scenario() -> Any:
    """A lone subscriber, keepalive 20 s, whose link dies at 30 s and stays dead."""
    from ..scenario import Scenario
    return Scenario.from_dict({
        "name": "silent-sensor", "duration": 120.0, "keepalive": KEEPALIVE,
        "link": {"latency": 0.01, "outages": [[OUTAGE_START, 1000.0]]},
        "clients": [{"name": "sensor", "subscribe": "commands/sensor"}]})


@lru_cache(maxsize=None)
def _broker_closes_at() -> tuple[float, float]:
    """(when the broker closed the connection, when it last heard from the client)."""
    from ..scenario import run
    res = run(keepalive_scenario(), seed=1)
    conn = res.connections.iloc[0]
    heard = res.packets[(res.packets["src"] == "sensor") & (res.packets["t_recv"].notna())]
    return float(conn["t_down"]), float(heard["t_recv"].max())


def _check_keepalive(answer: Any) -> tuple[bool, str]:
    value = _number(answer)
    if value is None:
        return False, "expected one number: the time in seconds, e.g. 42.0"
    closed, heard = _broker_closes_at()
    if abs(value - closed) <= 1.0:
        return True, ("the broker counts 1.5 keepalive periods from the last packet it "
                      "received [MQTT-3.1.2-24].")
    if abs(value - (OUTAGE_START + 1.5 * KEEPALIVE)) <= 1.0:
        return False, ("the broker does not know when the link died: it counts from the last "
                       "packet it received. When did the client last send something?")
    if abs(value - (heard + KEEPALIVE)) <= 1.0:
        return False, ("one keepalive period is what the client promises; the broker allows "
                       "one and a half [MQTT-3.1.2-24].")
    if value < OUTAGE_START:
        return False, "that is before the link even died."
    return False, ("not right (within 1 s). Find the client's last PINGREQ before the outage "
                   "(it sends one when it has been quiet for a keepalive period), then apply "
                   "the 1.5 x rule.")


# --- 5. Persistent sessions --------------------------------------------------------------

def session_scenario() -> Any:
    """A phone subscribed at QoS 1 is away from 10 s to 24 s; a friend writes every 2 s, at
    odd seconds: nothing is published at the instants the phone leaves or comes back, so
    which messages it missed is never a matter of milliseconds."""
    from ..scenario import Scenario
    return Scenario.from_dict({
        "name": "phone-away", "duration": 40.0, "qos": 1, "clean": False,
        "link": {"latency": 0.01},
        "clients": [{"name": "phone", "subscribe": "chat/#",
                     "crashes": [{"at": 10.0, "down": 14.0}]},
                    {"name": "friend", "publish": {"topic": "chat/friend", "interval": 2.0,
                                                   "start": 1.0, "stop": 34.0}}]})


@lru_cache(maxsize=None)
def _messages_received(clean: bool) -> int:
    from ..scenario import run
    res = run(session_scenario().with_(**{"clients.phone.clean": clean}), seed=1)
    return int(res.received["payload"].nunique())


def _check_sessions(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("clean_false", "clean_true"), "message counts")
    if parts is None:
        return False, problem
    hints = []
    persistent, clean = (_number(parts[k]) for k in ("clean_false", "clean_true"))
    if persistent != _messages_received(False):
        hints.append("clean_false: with a persistent session the broker keeps the phone's "
                     "subscription and queues its QoS 1 messages while it is away "
                     "[MQTT-3.1.2-5]: count all of them, before, during and after")
    if clean != _messages_received(True):
        hints.append("clean_true: a clean session starts empty [MQTT-3.1.2-6], so what was "
                     "published while the phone was away is gone; it gets messages again "
                     "once it has reconnected and subscribed again. Count res.received")
    if hints:
        return False, _join(hints)
    return True, "the difference is the messages the broker queued for the absent phone."


# --- 6. Loss over TCP and over datagrams -------------------------------------------------

def loss_scenario() -> Any:
    """One sensor publishing at QoS 0 every second for a minute (60 messages, from 2 s to
    61 s) over a link that loses 10 % of packets."""
    from ..scenario import Scenario
    return Scenario.from_dict({
        "name": "lossy-qos0", "duration": 70.0, "qos": 0,
        "link": {"latency": 0.05, "loss": 0.1},
        "clients": [{"name": "display", "subscribe": "sensor", "link": {"loss": 0.0}},
                    {"name": "sensor", "connect_at": 1.0,
                     "publish": {"topic": "sensor", "interval": 1.0, "start": 2.0,
                                 "count": 60}}]})


@lru_cache(maxsize=None)
def _lost(transport: str) -> int:
    from ..scenario import run
    res = run(loss_scenario().with_(transport=transport), seed=1)
    return int((res.outcomes["outcome"] == "lost").sum())


def _check_loss(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("tcp", "datagram"), "lost-message counts")
    if parts is None:
        return False, problem
    hints = []
    if _number(parts["tcp"]) != _lost("tcp"):
        hints.append("tcp: MQTT runs over TCP, and TCP resends a lost segment until it "
                     "arrives; a QoS 0 message is lost only when the connection breaks")
    if _number(parts["datagram"]) != _lost("datagram"):
        hints.append("datagram: here every packet is lost on its own and nobody resends a "
                     "QoS 0 message; run loss_scenario().with_(transport='datagram') with "
                     "seed=1 and count the 'lost' outcomes")
    if hints:
        return False, _join(hints)
    return True, "TCP turned the loss into delay (look at the latency), datagrams into loss."


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("publish-bytes", "The bytes of `pub -t sensor -m 12` (QoS 0, MQTT 3.1.1), and "
             "how many more a QoS 1 PUBLISH needs.", _check_publish_bytes),
    Exercise("topic-filters", f"Which filters are invalid, and which match {TOPIC_NAME!r}?",
             _check_topic_filters),
    Exercise("qos-packets", "How many PUBLISH/PUBACK/PUBREC/PUBREL/PUBCOMP packets carry one "
             "message from publisher to subscriber at QoS 0, 1 and 2?", _check_qos_packets),
    Exercise("keepalive", "Keepalive 20 s, the link dies at 30 s: when does the broker close "
             "the connection?", _check_keepalive),
    Exercise("sessions", "How many messages does the phone get with and without a persistent "
             "session?", _check_sessions),
    Exercise("loss", "How many QoS 0 messages are lost over TCP, and over datagrams?",
             _check_loss),
)}


# Exercises 7-12 live in their own module, which uses the helpers above (hence the import
# here, after them, and not at the top).
from .exercises_mqtt import MQTT_EXERCISES  # noqa: E402

EXERCISES.update({e.id: e for e in MQTT_EXERCISES})


def check(exercise: str, answer: Any) -> Verdict:
    """Check ``answer`` to ``exercise`` (an id of ``EXERCISES``); never reveals the answer."""
    if exercise not in EXERCISES:
        raise KeyError(f"no exercise {exercise!r}; exercises are {', '.join(EXERCISES)}")
    if _unanswered(answer):
        return Verdict(exercise, False, NOT_ANSWERED, answered=False)
    correct, message = EXERCISES[exercise].checker(answer)
    return Verdict(exercise, correct, _join([message]))
