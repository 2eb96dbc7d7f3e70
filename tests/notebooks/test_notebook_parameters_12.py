"""12-nat-and-mqtt5 starts with a papermill ``parameters`` cell, and the lesson reads it."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "12-nat-and-mqtt5.ipynb"


def test_the_first_code_cell_is_tagged_parameters_and_every_name_in_it_is_used():
    cells = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    first = cells[0]
    assert "parameters" in first.metadata.get("tags", [])  # papermill's convention
    names = {t.id for node in ast.parse(first.source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    assert names == {"NAT_IDLE", "ON_IDLE", "KEEPALIVE_SLOW", "KEEPALIVE_FAST", "SEED"}
    rest = "\n".join(c.source for c in cells[1:])
    for name in names:  # a parameter nothing reads would change nothing
        assert name in rest, name
