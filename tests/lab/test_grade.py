"""`mqttsim grade`: a class folder with right, wrong, broken and kernel-killing submissions
gets one row per notebook and never stops; `--key` gives answers that pass every check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mqttsim.lab.exercises import EXERCISES, check
from mqttsim.lab.grade import answer_key
from mqttsim.lab.grade import main as grade_main

ROOT = Path(__file__).resolve().parents[2]
EXERCISE_FOLDER = ROOT / "notebooks" / "exercises"


def submit(folder: Path, name: str, exercise: str, answer_cell: str,
           workspace: str | None = None) -> None:
    """The committed exercise notebook as a student hands it in: an answer typed in."""
    notebook = nbformat.read(EXERCISE_FOLDER / exercise, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith("answer = "):
            cell.source = answer_cell
        if workspace and cell.cell_type == "code" and "# res = run(sc" in cell.source:
            cell.source = workspace
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


@pytest.fixture
def python3_kernel(tmp_path: Path, monkeypatch) -> None:
    """The notebooks ask for "python3": make that this Python, whatever else is installed."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def test_a_class_is_graded_one_row_per_notebook(tmp_path: Path, python3_kernel, capsys):
    # Sorted by path, which is the order they run in: the kernel killer goes last but one.
    hand_in = tmp_path / "hand-in"
    submit(hand_in, "alice/ex5.ipynb", "ex5-sessions.ipynb",
           'answer = {"clean_false": 17, "clean_true": 10}')
    submit(hand_in, "alice/ex4.ipynb", "ex4-keepalive.ipynb",  # computed, not typed
           "answer = float(res.connections.iloc[0]['t_down'])",
           workspace="res = run(sc, seed=1)")
    submit(hand_in, "bob/ex5.ipynb", "ex5-sessions.ipynb",
           'answer = {"clean_false": 17, "clean_true": 17}')
    submit(hand_in, "carol/ex5.ipynb", "ex5-sessions.ipynb",
           'answer = {"clean_false": 17, "clean_true": 1 / 0}')
    submit(hand_in, "dave/ex5.ipynb", "ex5-sessions.ipynb",
           'answer = {"clean_false": ..., "clean_true": ...}')
    submit(hand_in, "erin/ex7.ipynb", "ex7-retained.ipynb",
           'answer = {"received": 2, "kitchen_seq": 5}', workspace="raise RuntimeError('x')")
    submit(hand_in, "frank/ex5.ipynb", "ex5-sessions.ipynb",
           'import os\nos._exit(1)\nanswer = {"clean_false": 17, "clean_true": 10}')
    submit(hand_in, "gina/ex5.ipynb", "ex5-sessions.ipynb",
           'answer = {"clean_false": 17, "clean_true": 10}')
    (hand_in / "harry.ipynb").write_text("this is not a notebook")
    csv = tmp_path / "grades.csv"

    assert grade_main([str(hand_in), "--csv", str(csv), "--timeout", "60"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(csv, keep_default_na=False)
    got = {(r.student, r.exercise): (r.result, r.score) for r in table.itertuples()}
    assert got == {
        ("alice", "sessions"): ("pass", 1), ("alice", "keepalive"): ("pass", 1),
        ("bob", "sessions"): ("fail", 0),
        ("carol", "sessions"): ("error", 0),
        ("dave", "sessions"): ("not answered", 0),
        ("erin", "retained"): ("pass", 1),  # an error elsewhere does not void the answer
        ("frank", "sessions"): ("error", 0),
        ("gina", "sessions"): ("pass", 1),  # after frank killed the shared kernel
        ("harry", "?"): ("error", 0)}
    message = dict(zip(table["student"], table["message"]))
    assert "ZeroDivisionError" in message["carol"]
    assert "MQTT-3.1.2-6" in message["bob"]  # the checker's hint, not the answer
    assert "RuntimeError" in message["erin"]
    assert "kernel" in message["frank"].lower()
    assert "not a readable notebook" in message["harry"]
    assert "alice: 2 of 2" in printed and "bob: 0 of 1" in printed


def test_the_answer_key_passes_every_check() -> None:
    key = answer_key()
    assert set(key) == set(EXERCISES) and len(key) >= 12
    for exercise, answer in key.items():
        assert check(exercise, answer), (exercise, answer)


def test_grade_without_a_folder_says_what_it_needs(tmp_path: Path, capsys) -> None:
    assert grade_main([str(tmp_path / "nowhere")]) == 2
    assert "no folder" in capsys.readouterr().err
    assert grade_main([]) == 2
    assert "FOLDER" in capsys.readouterr().err
