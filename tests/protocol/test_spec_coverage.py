"""How many of the spec's normative statements are named by a test that really runs.

Conformance tests carry the statement id in their name (``test_v311_MQTT_3_1_2_24_...``,
``test_v5_MQTT_4_3_3_8_10_11_12_...`` for several ids of one section, ``..._and_3_2_2_16_...``
for ids of another). This module reads every test function under tests/ with ``ast`` (no
import, so a broken test file cannot hide its names), maps the names to statement ids and
compares them with the checklists in data/spec/. A test marked xfail or skip does not count:
it documents a gap, it does not check the statement.

Ids that can never bind this project sit in NOT_APPLICABLE with the reason; they count as
neither covered nor required. Keep that list short and honest.
"""

from __future__ import annotations

import ast
import csv
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "data" / "spec"
TESTS = ROOT / "tests"
V311_THRESHOLD = 0.90

NOT_APPLICABLE = {
    "3.1.1": {
        "MQTT-3.8.3-2": "binds only servers without wildcard support; the broker matches "
                        "'+' and '#' (test_subscription_tree.py, test_topics.py)",
        "MQTT-7.0.0-1": "binds only bridging servers; mqttsim has no bridge (revisit if one "
                        "is added)",
    },
    "5.0": {
        "MQTT-3.2.2-12": "binds servers whose Maximum QoS is below 2; the broker always "
                         "supports QoS 2 (no setting lowers it, it advertises no Maximum QoS: "
                         "test_v5_MQTT_3_2_2_9_and_10), so no valid Will QoS exceeds it (Will "
                         "QoS 3 is malformed, MQTT-3.1.2-12); test_v5_broker_accepts_a_will_at_"
                         "qos_2",
        # Enhanced authentication (4.12): neither engine implements an AUTH exchange. The
        # broker refuses every CONNECT with an Authentication Method (CONNACK 0x8C, then
        # close: that is MQTT-4.12.0-1's test); the client engine never sends AUTH and ends
        # the connection if a server sends one. Revisit all of these if AUTH is implemented.
        "MQTT-3.15.2-2": "AUTH Reason String: neither engine ever sends AUTH (see 4.12 note)",
        "MQTT-3.15.2-3": "AUTH User Property: neither engine ever sends AUTH (see 4.12 note)",
        "MQTT-4.12.0-2": "server AUTH challenge (0x18): the broker never continues an "
                         "authentication exchange, it refuses the method at CONNECT",
        "MQTT-4.12.0-3": "client AUTH reply (0x18): the client engine answers no AUTH; it "
                         "closes the connection (test_v5_client_without_enhanced_auth_never_"
                         "answers_a_server_auth)",
        "MQTT-4.12.0-4": "rejecting authentication during the exchange: no exchange ever "
                         "starts; refusing the method itself at CONNECT is MQTT-4.12.0-1",
        "MQTT-4.12.0-5": "method repeated in AUTH and successful CONNACK: the broker never "
                         "accepts a CONNECT with a method and the client never sends AUTH",
        "MQTT-4.12.1-1": "re-authentication: the client engine never sends AUTH 0x19",
        "MQTT-4.12.1-2": "failed re-authentication: re-authentication never happens; an AUTH "
                         "on a connection without a method is DISCONNECT 0x82 (MQTT-4.12.0-7)",
    },
}
PREFIX = {"3.1.1": "test_v311_", "5.0": "test_v5_"}
NOT_CHECKING = {"xfail", "skip"}  # marks that mean "this test does not check the statement"


def statement_ids(version: str) -> list[str]:
    with open(SPEC / f"mqtt-{version}-statements.csv", newline="", encoding="utf-8") as f:
        return [row["id"] for row in csv.DictReader(f)]


def ids_in_name(name: str) -> list[str]:
    """Statement ids a test name claims, e.g. ``..._MQTT_3_1_2_14_and_15_...`` -> 2 ids.

    After ``MQTT``, four numbers make an id; further single numbers are more ids of the same
    section; ``and`` may introduce four numbers (an id elsewhere) or single numbers."""
    tokens = name.split("_")
    if "MQTT" not in tokens:
        return []
    rest = tokens[tokens.index("MQTT") + 1:]
    found: list[str] = []
    section: str | None = None
    i = 0
    while i < len(rest):
        run = []
        while i < len(rest) and rest[i].isdigit():
            run.append(rest[i])
            i += 1
        if len(run) >= 4:
            section = ".".join(run[:3])
            run = run[3:]
        for number in run:
            if section is None:
                return found
            found.append(f"MQTT-{section}-{int(number)}")
        if i < len(rest) and rest[i] == "and":
            i += 1
            if i < len(rest) and rest[i] == "MQTT":
                i += 1
            continue
        break
    return found


def _marked_not_checking(func: ast.FunctionDef) -> bool:
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr in NOT_CHECKING:
            return True
    return False


@functools.cache  # the test files do not change during a run; parsing them all takes seconds
def collect_test_functions() -> tuple[tuple[str, str, bool], ...]:
    """(file, function name, checks?) for every test function under tests/."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name.startswith("test_"):
                found.append((str(path.relative_to(ROOT)), node.name,
                              not _marked_not_checking(node)))
    return tuple(found)


def coverage(version: str) -> tuple[set[str], set[str], set[str]]:
    """(covered, required, named-but-unknown) statement ids for ``version``."""
    known = set(statement_ids(version))
    required = known - set(NOT_APPLICABLE[version])
    named: set[str] = set()
    for _, name, checks in collect_test_functions():
        if checks and name.startswith(PREFIX[version]):
            named.update(ids_in_name(name[len(PREFIX[version]):]))
    return named & required, required, named - known


def _report(version: str) -> str:
    covered, required, _ = coverage(version)
    missing = sorted(required - covered, key=_id_order)
    return (f"MQTT {version}: {len(covered)}/{len(required)} statement ids covered "
            f"({len(covered) / len(required):.1%}); {len(NOT_APPLICABLE[version])} not applicable"
            f"; missing: {', '.join(missing) or 'none'}")


def _id_order(statement: str) -> tuple[int, ...]:
    return tuple(int(n) for n in statement[5:].replace("-", ".").split("."))


def test_v311_statement_coverage_is_at_least_90_percent():
    covered, required, _ = coverage("3.1.1")
    report = _report("3.1.1")
    print(report)
    assert len(covered) / len(required) >= V311_THRESHOLD, report


def test_v5_statement_coverage_is_measured():
    covered, required, _ = coverage("5.0")
    report = _report("5.0")
    print(report)
    assert len(required) > 200, "the MQTT 5.0 checklist looks truncated"
    assert covered, report


@pytest.mark.parametrize("version", ["3.1.1", "5.0"])
def test_every_named_id_is_in_the_checklist(version):
    """A typo or a 5.0 id in a 3.1.1 test name would otherwise count for nothing, silently."""
    _, _, unknown = coverage(version)
    assert not unknown, f"tests name ids that MQTT {version} does not have: {sorted(unknown)}"


@pytest.mark.parametrize("version", ["3.1.1", "5.0"])
def test_not_applicable_ids_exist_and_are_not_tested(version):
    known = set(statement_ids(version))
    assert set(NOT_APPLICABLE[version]) <= known
    named = {i for _, name, checks in collect_test_functions() if name.startswith(PREFIX[version])
             for i in ids_in_name(name[len(PREFIX[version]):])}
    assert not named & set(NOT_APPLICABLE[version]), "a tested id cannot be 'not applicable'"


@pytest.mark.parametrize("name,ids", [
    ("MQTT_3_1_2_24_server_closes", ["MQTT-3.1.2-24"]),
    ("MQTT_3_1_2_14_and_15_will_retain", ["MQTT-3.1.2-14", "MQTT-3.1.2-15"]),
    ("MQTT_4_3_3_8_10_11_12_qos2", ["MQTT-4.3.3-8", "MQTT-4.3.3-10", "MQTT-4.3.3-11",
                                    "MQTT-4.3.3-12"]),
    ("MQTT_3_2_2_17_18_and_3_3_2_9_aliases", ["MQTT-3.2.2-17", "MQTT-3.2.2-18",
                                              "MQTT-3.3.2-9"]),
    ("MQTT_3_1_3_6_and_MQTT_3_2_2_16_x", ["MQTT-3.1.3-6", "MQTT-3.2.2-16"]),
    ("MQTT_3_1_2_1_protocol_name_must_be_MQTT", ["MQTT-3.1.2-1"]),
    ("MQTT_1_5_3_1_ill_formed_utf8_in_topic", ["MQTT-1.5.3-1"]),
    ("client_id_longer_than_23", []),
])
def test_ids_in_name(name, ids):
    assert ids_in_name(name) == ids


def test_an_xfail_test_does_not_count():
    tree = ast.parse("@pytest.mark.xfail(strict=True)\ndef test_v311_MQTT_9_9_9_9(): pass\n"
                     "@pytest.mark.parametrize('a', [1])\ndef test_v311_MQTT_9_9_9_8(a): pass\n")
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [_marked_not_checking(f) for f in funcs] == [True, False]
