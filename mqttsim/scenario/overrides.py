"""Overrides: ``--set KEY=VALUE`` and ``Scenario.with_``'s dotted keys, set in a scenario dict.

This module only edits dicts; it knows the format through the schema it is given
(``load.SCHEMA``: None is a value, a dict a table, ``[dict]`` an array of tables) and checks
nothing but the path. The edited dict is then checked in full by ``load.from_dict``, the same
as a file, so an override can never build a scenario a file could not.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from .checks import ScenarioError, show

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["with_dotted_keys", "parse_set"]


def with_dotted_keys(raw: Mapping[str, Any], overrides: Mapping[str, Any],
                     schema: dict[str, Any], source: str) -> dict[str, Any]:
    """A deep copy of ``raw`` with each dotted key of ``overrides`` set.

    A path element picks an array entry by index, or (in arrays of tables that have a
    ``name`` key, the clients) an entry by its name: ``clients.sub.keepalive``,
    ``clients.0.publish.0.qos``. Missing tables are created. Unknown keys are refused with
    the allowed ones (and the closest, for a typo).
    """
    edited = copy.deepcopy(dict(raw))
    for key, value in overrides.items():
        _set(edited, key, value, schema, source)
    return edited


def _set(raw: dict[str, Any], dotted: str, value: Any, schema: Any, source: str) -> None:
    def refuse(problem: str) -> NoReturn:
        raise ScenarioError(f"{source}: override {dotted!r} = {show(value)}: {problem}")

    parts = str(dotted).split(".")
    node: Any = raw
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the top level"
        if isinstance(schema, list):  # an array of tables: pick an entry
            by_name = "name" in schema[0]
            position = _position(node, part, by_name)
            if position is None:
                names = " or a client name" if by_name else ""
                indexes = f"an index from 0 to {len(node) - 1}" if node else "nothing: it is empty"
                refuse(f"{here} has no entry {part!r}; expected {indexes}{names}")
            key, schema = position, schema[0]
        else:
            if part not in schema:
                known = sorted(schema)
                close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                refuse(f"unknown key {part!r} in {here}; {hint}allowed keys: {', '.join(known)}")
            key, schema = part, schema[part]
        if i == len(parts) - 1:
            node[key] = copy.deepcopy(value)  # the caller's list stays the caller's
            return
        node = _descend(node, key, schema, refuse, ".".join(parts[:i + 1]))
def _descend(node: Any, key: Any, schema: Any, refuse: Callable[[str], NoReturn],
             here: str) -> Any:
    """The table or array under ``node[key]``, created or normalised as ``schema`` says."""
    if schema is None:
        refuse(f"{here} is a value, not a table")
    child = node.get(key) if isinstance(node, dict) else node[key]
    if child is None:
        child = {} if isinstance(schema, dict) else []
    elif isinstance(schema, list) and isinstance(child, (dict, str)):
        child = [child]  # one publish table or one filter: an array of one
    elif isinstance(schema, dict) and isinstance(child, str) and "topic" in schema:
        child = {"topic": child}  # a subscription written as a plain filter
    if not isinstance(child, dict if isinstance(schema, dict) else list):
        refuse(f"{here} is {show(child)}, not a {'table' if isinstance(schema, dict) else 'array'}")
    node[key] = child
    return child


def _position(items: list[Any], part: str, by_name: bool) -> int | None:
    if by_name:
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("name") == part:
                return i
    if part.isdigit() and int(part) < len(items):
        return int(part)
    return None


def parse_set(assignments: Iterable[str]) -> dict[str, Any]:
    """``["link.loss=0.1", "transport=datagram"]`` -> ``{"link.loss": 0.1, ...}``.

    Values are read as TOML values (``0.1``, ``true``, ``[1, 2]``, ``"text"``, ``{a = 1}``);
    anything else is taken as a plain string, so ``transport=datagram`` needs no quotes.
    """
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"--set {item!r}: expected KEY=VALUE, e.g. link.loss=0.1")
        overrides[key.strip()] = _toml_value(value.strip())
    return overrides


def _toml_value(text_: str) -> Any:
    try:
        document = tomllib.loads(f"v = {text_}")
    except tomllib.TOMLDecodeError:
        return text_
    value = document.get("v")
    if set(document) != {"v"} or isinstance(value, (datetime.date, datetime.time)):
        return text_  # a second line, or a date: keep the words as written
    return value
