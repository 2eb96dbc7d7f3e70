"""Small tools for reading one table of a scenario and saying exactly what is wrong with it.

Every mistake in a scenario file is reported the same way, before anything runs:

    lossy.toml: clients[2].publish[0].qos = 3: expected an integer from 0 to 2

that is, the file, the key as a dotted path, the value as written, and what is allowed. A
*checker* is a function that takes a value and returns it converted (``5`` -> ``5.0`` where a
float is expected) or raises :class:`Bad` with the allowed values; :class:`Table` runs
checkers on the keys of one table and adds the file and the path to what they raise.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

from ..netmodel.link import Outage
from ..protocol.errors import InvalidTopic


class ScenarioError(ValueError):
    """A scenario file or dict is wrong; the message names the file, key, value and rule."""


class Bad(Exception):
    """Raised by a checker: ``problem`` says what is allowed. ``at`` (e.g. ``"[1]"``) and
    ``value`` narrow the report to one item of a list value."""

    def __init__(self, problem: str, at: str = "", value: Any = None):
        super().__init__(problem)
        self.problem, self.at, self.value = problem, at, value


Checker = Callable[[Any], Any]
REQUIRED = object()  # Table.get's default for keys that must be present


def wants(description: str) -> Callable[[Checker], Checker]:
    """Label a checker with what it accepts, for "missing" messages."""
    def label(check: Checker) -> Checker:
        check.wanted = description  # type: ignore[attr-defined]
        return check
    return label


def describe(check: Checker) -> str:
    return getattr(check, "wanted", "a value")


def show(value: Any, limit: int = 80) -> str:
    """repr() for an error message, shortened so a 100-item list stays on one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Where:
    """A place in the input: the file (or ``<dict>``) and a dotted key path."""

    source: str
    path: str = ""

    def at(self, key: str) -> "Where":
        return Where(self.source, f"{self.path}.{key}" if self.path else key)

    def index(self, i: int | str) -> "Where":
        return Where(self.source, f"{self.path}[{i}]")

    def fail(self, value: Any, problem: str) -> NoReturn:
        raise ScenarioError(f"{self.source}: {self.path} = {show(value)}: {problem}")

    def missing(self, problem: str) -> NoReturn:
        raise ScenarioError(f"{self.source}: {self.path}: missing; {problem}")


class Table:
    """One table of the input whose keys have been checked against the ``known`` ones."""

    def __init__(self, data: Any, where: Where, known: Iterable[str], what: str = "a table"):
        known = sorted(known)
        if not isinstance(data, dict):
            where.fail(data, f"expected {what} with keys {', '.join(known)}")
        for key, value in data.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                where.at(str(key)).fail(
                    value, f"unknown key in {what}; {hint}allowed keys: {', '.join(known)}")
        self.data, self.where = data, where

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None  # None (from a Python dict) means "not set"

    def get(self, key: str, check: Checker, default: Any = REQUIRED) -> Any:
        """The checked value of ``key``, or ``default`` when it is absent (or None)."""
        if key not in self:
            if default is REQUIRED:
                self.where.at(key).missing(f"expected {describe(check)}")
            return default
        return check_at(self.where.at(key), self.data[key], check)

    def fail(self, key: str, problem: str) -> NoReturn:
        self.where.at(key).fail(self.data.get(key), problem)

    def sub(self, key: str, known: Iterable[str], what: str = "a table") -> "Table | None":
        """The sub-table under ``key`` (its keys checked), or None when absent."""
        return Table(self.data[key], self.where.at(key), known, what) if key in self else None

    def items(self, key: str, *, single: bool = False) -> list[tuple[Any, Where]]:
        """The entries of an array under ``key`` with their paths (``key[i]``); with
        ``single``, one table is accepted too, as a one-entry array (path ``key``)."""
        if key not in self:
            return []
        value, where = self.data[key], self.where.at(key)
        if single and isinstance(value, dict):
            return [(value, where)]
        if not isinstance(value, list):
            where.fail(value, "expected an array of tables" + (" or one table" if single else ""))
        return [(item, where.index(i)) for i, item in enumerate(value)]


def check_at(where: Where, value: Any, check: Checker) -> Any:
    """``check(value)``, with what it raises reported at ``where``."""
    try:
        return check(value)
    except Bad as bad:
        if bad.at:
            where, value = Where(where.source, where.path + bad.at), bad.value
        where.fail(value, bad.problem)


def _kind(value: Any) -> str:
    """What a wrong value is, in TOML's words."""
    names = {bool: "true/false", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(lo: float | None, hi: float | None, above: float | None) -> str:
    if above is not None:
        return f" greater than {above}" + (f" and at most {hi}" if hi is not None else "")
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" >= {lo}"
    return f" <= {hi}" if hi is not None else ""


def _in_bounds(value: float, lo: float | None, hi: float | None, above: float | None) -> bool:
    return ((lo is None or value >= lo) and (hi is None or value <= hi)
            and (above is None or value > above))


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def integer(lo: int | None = None, hi: int | None = None, *, unit: str = "") -> Checker:
    """An int (true/false is not one) within ``lo``..``hi``."""
    wanted = "an integer" + _bounds(lo, hi, None) + _unit(unit)

    @wants(wanted)
    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Bad(f"expected {wanted}, not {_kind(value)}")
        if not _in_bounds(value, lo, hi, None):
            raise Bad(f"expected {wanted}")
        return value

    return check


def number(lo: float | None = None, hi: float | None = None, *,
           above: float | None = None, unit: str = "") -> Checker:
    """A finite int or float within ``lo``..``hi`` (or strictly ``above``), as a float."""
    wanted = "a number" + _bounds(lo, hi, above) + _unit(unit)

    @wants(wanted)
    def check(value: Any) -> float:
        if not is_number(value):
            raise Bad(f"expected {wanted}, not {_kind(value)}")
        if not math.isfinite(value):
            raise Bad(f"expected {wanted}; nan and inf are not allowed here")
        if not _in_bounds(value, lo, hi, above):
            raise Bad(f"expected {wanted}")
        return float(value)

    return check


def choice(*options: Any) -> Checker:
    """One of ``options`` exactly (so ``1`` is not ``"1"``, and true is not 1)."""
    wanted = "one of " + ", ".join(repr(o) for o in options)

    @wants(wanted)
    def check(value: Any) -> Any:
        if not any(type(value) is type(o) and value == o for o in options):
            raise Bad(f"expected {wanted}")
        return value

    return check


@wants("true or false")
def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"expected true or false, not {_kind(value)}")
    return value


@wants("a string")
def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"expected a string, not {_kind(value)}")
    return value


@wants("a non-empty string")
def name(value: Any) -> str:
    """A node name: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise Bad("expected a non-empty string" + ("" if isinstance(value, str)
                                                    else f", not {_kind(value)}"))
    return value

# --- Checkers for the values of the scenario format.

MAX_COUNT = 100_000  # clients from one table: a typo of 10**7 should not hang the loader
MAX_PAYLOAD = 268_435_455  # the largest MQTT remaining length
SIZE_KEYS = {"fixed": ("dist", "mean"), "uniform": ("dist", "low", "high"),
             "exponential": ("dist", "mean", "low")}
VERSIONS = {3: 3, 4: 4, 5: 5, "3.1": 3, "3.1.1": 4, "5": 5, "5.0": 5}

QOS = integer(0, 2)
KEEPALIVE = integer(0, 65535, unit="seconds, 0 = no keepalive")
SECONDS = number(lo=0, unit="seconds")
POSITIVE_SECONDS = number(above=0, unit="seconds")
PROBABILITY = number(0, 1, unit="a probability")
BYTES = integer(0, MAX_PAYLOAD, unit="bytes")


@wants("an MQTT version: 3, 4, 5, '3.1', '3.1.1' or '5.0'")
def mqtt_version(value: Any) -> int:
    if type(value) in (int, str) and value in VERSIONS:
        return VERSIONS[value]
    raise Bad("expected 3 (MQTT 3.1), 4 (3.1.1) or 5, or one of the strings "
              "'3.1', '3.1.1', '5', '5.0'")


def bandwidth(value: Any) -> float | None:
    if is_number(value) and value == float("inf"):
        return None  # as if omitted: no serialization delay
    return number(above=0, unit="bits per second; inf or omitted for no limit")(value)


def outages(value: Any) -> tuple[Outage, ...]:
    if not isinstance(value, list):
        raise Bad("expected an array of [start, end] pairs (seconds)")
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2 and all(map(is_number, item))
                and 0 <= item[0] < item[1] < float("inf")):
            raise Bad("expected [start, end] with 0 <= start < end (seconds)", f"[{i}]", item)
    return tuple(Outage(float(start), float(end)) for start, end in value)


def node_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Bad("expected an array of router names, e.g. [\"ap\", \"wan\"]")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise Bad("expected a non-empty string (a router name)", f"[{i}]", item)
    return tuple(value)


def topic_rule(validate: Callable[[str, int], None], version: int, kind: str) -> Checker:
    """A checker applying the protocol's own topic rules for ``version``."""
    @wants(f"a {kind}")
    def check(value: Any) -> str:
        topic = text(value)
        try:
            validate(topic, version)
        except InvalidTopic as error:
            raise Bad(f"not a valid {kind} in MQTT version {version}: {error}") from None
        return topic

    return check


def node_in(nodes: list[str]) -> Checker:
    wanted = "the broker or a router: " + ", ".join(map(repr, nodes))

    @wants(wanted)
    def check(value: Any) -> str:
        if isinstance(value, str) and value in nodes:
            return value
        raise Bad(f"no such node; expected {wanted} (a router must be listed in routers)")

    return check


# --- Input that would crash or stall the run rather than be a mistake in one key.

MAX_DEPTH = 32  # the format nests 5 levels (clients[i].link.up.gilbert); deeper is not ours


def check_depth(data: Any, where: Where) -> None:
    """Refuse arrays or tables nested deeper than ``MAX_DEPTH``, without recursion: a
    hand-made or generated document 10,000 levels deep would overflow Python's stack in
    ``copy.deepcopy`` or ``repr`` (RecursionError) before any key is checked."""
    stack = [(data, 1, where)]
    while stack:
        node, depth, at = stack.pop()
        if depth > MAX_DEPTH:
            raise ScenarioError(f"{at.source}: {at.path or 'the document'}: arrays or tables "
                                f"nested more than {MAX_DEPTH} levels deep; a scenario nests "
                                "5 levels at most")
        if isinstance(node, dict):
            stack.extend((value, depth + 1, at.at(str(key))) for key, value in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((value, depth + 1, at.index(i)) for i, value in enumerate(node))


MAX_STRING_BYTES = 65535  # every MQTT UTF-8 string has a two-byte length (MQTT 1.5.3/1.5.4)


def client_identifier(version: int) -> Checker:
    """A client id MQTT can carry in CONNECT for ``version``: no U+0000 ([MQTT-1.5.3-2];
    MQTT 5 [MQTT-1.5.4-2]) and at most 65535 bytes of UTF-8. Checked here so the scenario is
    refused when loaded, not when the client's CONNECT fails to encode mid-run."""
    rule = "MQTT-1.5.4-2" if version == 5 else "MQTT-1.5.3-2"
    wanted = "a client id (a string without U+0000, at most 65535 bytes of UTF-8)"

    @wants(wanted)
    def check(value: Any) -> str:
        client_id = text(value)
        if "\0" in client_id:
            raise Bad(f"a client id must not contain the null character U+0000 [{rule}]; "
                      "it is sent as the CONNECT client identifier")
        size = len(client_id.encode("utf-8", "surrogatepass"))
        if size > MAX_STRING_BYTES:
            raise Bad(f"a client id is at most {MAX_STRING_BYTES} bytes of UTF-8, not {size}")
        return client_id

    return check


# --- Work: refuse a scenario whose run would not end in a useful time, before it starts.

# The simulator handles about 55,000 MQTT packets a second of wall time and keeps a row per
# packet and per TCP segment (measured: 200,000 QoS 1 messages to one subscriber, 800,000
# packets, take 15 s and 600 MB; DESIGN.md "Speed, by construction"). 5 million packets is
# about a minute and a half and a few GB: more than any lab exercise needs, and a run that
# big is a typo (duration = 1e300, interval = 1e-9) far more often than an intention.
MAX_PACKETS = 5_000_000
PACKETS_PER_QOS = (1, 2, 4)  # PUBLISH; + PUBACK; + PUBREC, PUBREL, PUBCOMP


class Work(NamedTuple):
    """One source of packets in a scenario and about how many it makes."""

    packets: float
    where: str  # the dotted key of the client table (and publish entry)
    why: str  # how the number comes about, in the scenario's own terms


def _messages(publish: Any, end: float) -> tuple[float, str]:
    """About how many messages one publish table sends before ``end``, and why."""
    if publish.pattern == "once":
        return 1.0, "once"
    stop = min(publish.stop if publish.stop is not None else end, end)
    span = max(0.0, stop - publish.start)
    per = publish.burst if publish.pattern == "burst" else 1
    count = (span / publish.interval + 1) * per
    why = (f"{publish.pattern} every {publish.interval:g} s"
           + (f" ({per} a burst)" if per > 1 else "") + f" for {span:g} s")
    if publish.count is not None and publish.count < count:
        return float(publish.count), f"count = {publish.count}"
    return count, why


def workload(clients: Iterable[tuple[Any, str]], duration: float) -> list[Work]:
    """Each client's keepalive pings and each publish table's messages with their copies
    to matching subscribers, as an upper estimate of MQTT packets (every subscriber is
    assumed connected all the time; a QoS 1 delivery is 2 packets, QoS 2 is 4)."""
    from ..protocol.topics import topic_matches

    clients = list(clients)
    subscriptions = [(sub.topic.split("/", 2)[2] if sub.topic.startswith("$share/")
                      else sub.topic, sub.qos) for spec, _ in clients for sub in spec.subscribe]
    work = []
    for spec, where in clients:
        end = min(spec.disconnect_at if spec.disconnect_at is not None else duration, duration)
        span = max(0.0, end - spec.connect_at)
        if spec.keepalive:
            work.append(Work(2 * span / spec.keepalive, f"{where} (client {spec.name})",
                             f"PINGREQ and PINGRESP every keepalive = {spec.keepalive} s for "
                             f"{span:g} s"))
        for i, publish in enumerate(spec.publish):
            messages, why = _messages(publish, end)
            copies = [min(publish.qos, qos) for topic_filter, qos in subscriptions
                      if topic_matches(topic_filter, publish.topic)]
            per_message = PACKETS_PER_QOS[publish.qos] + sum(PACKETS_PER_QOS[q] for q in copies)
            work.append(Work(messages * per_message, f"{where}.publish[{i}] (client {spec.name})",
                             f"{messages:.3g} messages ({why}), {per_message} packets each "
                             f"at QoS {publish.qos} with {len(copies)} subscriber copies"))
    return work


def check_workload(clients: Iterable[tuple[Any, str]], duration: float, source: str) -> None:
    """Refuse a scenario estimated above ``MAX_PACKETS``, naming the biggest source."""
    work = workload(clients, duration)
    total = sum(item.packets for item in work)
    if total <= MAX_PACKETS:
        return
    top = max(work, key=lambda item: item.packets)
    raise ScenarioError(
        f"{source}: about {total:.3g} MQTT packets to simulate, more than the limit of "
        f"{MAX_PACKETS:,} per run (about 90 s and a few GB of tables); most come from "
        f"{top.where}: {top.why}. Shorten duration, make the interval longer, or set count "
        "or stop")
