"""Students work in copies (work/), so the committed notebooks stay as committed and the
suite, which checks notebooks/, passes however much the lab was used."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import uuid
from pathlib import Path

import nbformat
import pytest

from mqttsim.lab.workspace import main as workspace_main
from mqttsim.lab.workspace import prepare_workspace

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def answered_with_outputs(path: Path) -> None:
    """What a student leaves behind: an answer typed in, every cell run, outputs saved."""
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = number + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="sensor 12\n")]
        if cell.source.startswith("answer = "):
            cell.source = "answer = {'clean_false': 1, 'clean_true': 2}"
    nbformat.write(notebook, path)


def test_every_notebook_is_copied_in_the_same_layout(tmp_path: Path) -> None:
    done = prepare_workspace(NOTEBOOKS, tmp_path / "work")
    committed = sorted(p.relative_to(NOTEBOOKS) for p in NOTEBOOKS.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    assert set(committed) <= set(done.copied)
    for relative in committed:
        assert (tmp_path / "work" / relative).read_bytes() == (NOTEBOOKS / relative).read_bytes()
    # What notebooks read beside them comes along (11-your-own-client runs my_client.py).
    beside = [p.relative_to(NOTEBOOKS) for p in NOTEBOOKS.glob("*.py")]
    assert beside and set(beside) <= set(done.copied)


def test_a_students_copy_is_never_overwritten_and_new_notebooks_arrive(tmp_path: Path) -> None:
    source, work = tmp_path / "notebooks", tmp_path / "work"
    shutil.copytree(NOTEBOOKS / "exercises", source / "exercises")
    prepare_workspace(source, work)
    mine = work / "exercises" / "ex5-sessions.ipynb"
    answered_with_outputs(mine)
    students = mine.read_bytes()
    shutil.copy(NOTEBOOKS / "00-start-here.ipynb", source / "00-start-here.ipynb")  # git pull
    (source / "exercises" / "ex5-sessions.ipynb").write_text(
        (source / "exercises" / "ex5-sessions.ipynb").read_text() + "\n")  # the lab changed it
    again = prepare_workspace(source, work)
    assert again.copied == [Path("00-start-here.ipynb")]
    assert again.outdated == [Path("exercises/ex5-sessions.ipynb")]
    assert mine.read_bytes() == students


def test_the_command_says_what_it_did(tmp_path: Path, capsys) -> None:
    arguments = [str(NOTEBOOKS), str(tmp_path / "work")]
    assert workspace_main(arguments) == 0
    assert "Copied" in capsys.readouterr().out
    assert workspace_main(arguments) == 0
    assert capsys.readouterr().out == ""  # nothing new, nothing changed: nothing to say
    assert workspace_main([str(tmp_path / "nowhere"), str(tmp_path / "w")]) == 2
    assert "no notebooks folder" in capsys.readouterr().err


def test_make_lab_prepares_work_and_opens_jupyterlab_there() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    copy = next(i for i, line in enumerate(lines) if "-m mqttsim.lab.workspace notebooks work"
                in line)
    start = next(i for i, line in enumerate(lines) if "jupyter lab" in line)
    assert copy < start and "--ServerApp.root_dir=work" in " ".join(lines[start:start + 2])


def test_git_ignores_the_copies_and_the_reports() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("work/00-start-here.ipynb", "work/exercises/ex5-sessions.ipynb",
                 "notebooks/reports/lossy-2g-sweep.html"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"git does not ignore {path}"
    kept = subprocess.run(["git", "check-ignore", "-q", "notebooks/05-sessions.ipynb"],
                          cwd=ROOT, timeout=30)
    assert kept.returncode == 1


def test_a_students_answered_notebook_does_not_reach_the_suite() -> None:
    """A used copy in work/ (answers, outputs) is not among the notebooks the suite checks:
    the notebook tests' list of notebooks, read afresh with the copy in place."""
    work = ROOT / "work"
    created = not work.exists()
    dirty = work / "exercises" / f"zz-used-{uuid.uuid4().hex[:8]}.ipynb"
    try:
        dirty.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NOTEBOOKS / "exercises" / "ex5-sessions.ipynb", dirty)
        answered_with_outputs(dirty)
        spec = importlib.util.spec_from_file_location(
            "fresh_notebook_tests", ROOT / "tests" / "notebooks" / "test_notebooks_run.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        checked = {p.resolve() for p in (*module.ALL, *module.EXERCISE_NOTEBOOKS)}
        assert (NOTEBOOKS / "exercises" / "ex5-sessions.ipynb").resolve() in checked
        assert dirty.resolve() not in checked
    finally:
        dirty.unlink(missing_ok=True)
        if created:
            shutil.rmtree(work, ignore_errors=True)
