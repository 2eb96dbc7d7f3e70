"""A sweep's grid: checked, and every point applied to the scenario, before anything runs.

An unknown key or a refused value must fail at once, naming the key and listing the valid
ones, not an hour into a sweep.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["SweepError", "valid_keys", "column_name", "check_grid", "grid_scenarios",
           "ROW_KEYS"]

#: Columns of every row besides the grid's; a grid key equal to one gets a ``set.`` prefix.
ROW_KEYS = ("seed", "qos")


class SweepError(ValueError):
    """A grid that cannot be swept: unknown key, refused value, no values."""


def _schema_lines(schema: Any, prefix: str) -> list[str]:
    """Dotted keys of a SCHEMA table, the leaves of each table on one line:
    ``link.{bandwidth,jitter,...}``; arrays of tables as ``clients.<name>.{...}``."""
    leaves = sorted(k for k, v in schema.items() if v is None)
    lines = []
    if leaves:
        lines.append(prefix + "{" + ",".join(leaves) + "}" if prefix else ", ".join(leaves))
    for key in sorted(k for k, v in schema.items() if v is not None):
        sub = schema[key]
        if isinstance(sub, list):
            pick = "<name>" if key == "clients" else "<index>"
            lines += _schema_lines(sub[0], f"{prefix}{key}.{pick}.")
        else:
            lines += _schema_lines(sub, f"{prefix}{key}.")
    return lines


def valid_keys() -> list[str]:
    """Every override key, compactly: top-level keys, then one line per table."""
    from ..scenario.load import SCHEMA
    return _schema_lines(SCHEMA, "")


def column_name(key: str) -> str:
    return f"set.{key}" if key in ROW_KEYS else key


def _points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def check_grid(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise SweepError(f"grid must be a dict of override key -> list of values, not "
                         f"{type(grid).__name__}")
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise SweepError(f"grid[{key!r}] must be a list of values, not {values!r}")
        values = list(values)
        if not values:
            raise SweepError(f"grid[{key!r}] is empty: give at least one value")
        checked[str(key)] = values
    return checked


def grid_scenarios(scenario: Any, grid: dict[str, list[Any]]) -> list[tuple[dict, Any]]:
    """(point, scenario with the point's overrides) for every grid point, or a SweepError
    naming the first key or value the scenario refuses; nothing has run yet."""
    from ..scenario import ScenarioError
    names = ", ".join(c.name for c in scenario.clients)
    for key in grid:  # an unknown key fails on every point: say so once, with the keys
        try:
            scenario.with_(**{key: grid[key][0]})
        except ScenarioError as error:
            # apply_overrides words a key it cannot place as "override 'key' = value: ..."
            # and a value the scenario refuses as "... (after the overrides ...)".
            if f"override {key!r}" in str(error):
                raise SweepError(f"grid key {key!r} is not a parameter of scenario "
                                 f"{scenario.name!r}: {error}\nvalid keys (<name>: "
                                 f"{names}):\n  " + "\n  ".join(valid_keys())) from None
    built = []
    for point in _points(grid):
        try:
            built.append((point, scenario.with_(**point)))
        except ScenarioError as error:
            raise SweepError(f"grid point {_show(point)} is refused: {error}") from None
    return built


def _show(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items()) or "(no overrides)"


