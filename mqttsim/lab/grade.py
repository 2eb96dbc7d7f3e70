"""``mqttsim grade FOLDER``: grade a class's exercise notebooks; ``--key`` prints the answers.

A teacher collects the students' notebooks in one folder, one sub-folder per student
(``FOLDER/alice/ex5-sessions.ipynb``) or one file per student and exercise directly in it
(``FOLDER/alice.ipynb``: the file's name is the student's). Each notebook is executed
again, top to bottom, on a fresh namespace (saved outputs could have been edited; the
answer may be computed by the student's own code), and then judged by the very checker its
``check("...", answer)`` cell calls. So grading needs no second copy of the exercises: the
exercise notebooks are the assignment, ``mqttsim.lab.exercises`` the tests.

Why not nbgrader or otter-grader: both want the exercises rewritten in their format
(solution and hidden-test cells, an assignment database or a configuration to build), and
their tests would hold fixed answers, while these checkers work the answer out from the
simulator at check time so that it can never drift from what the lab shows. Their output
is plain CSV, which any gradebook imports.

A submission that raises, never defines ``answer``, loops forever or kills its kernel gets
an "error" row that says why; it never stops the grading of the others. The notebooks run
in one kernel (a reset between them) because a kernel start costs more than an exercise;
when one kills or hangs that kernel, it is marked so and the rest go on in a new kernel.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Submission", "find_submissions", "grade", "answer_key", "GRADE_COLUMNS"]

GRADE_COLUMNS = ("student", "exercise", "result", "score", "notebook", "message")
MARK = "MQTTSIM-GRADE "
CHECK_CALL = re.compile(r"""check\(\s*["']([^"']+)["']\s*,\s*answer\s*\)""")


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    exercise: str | None  # None: the notebook has no check("...", answer) cell


def _exercise_of(notebook: Any) -> str | None:
    for cell in notebook.cells:
        if cell.cell_type == "code":
            found = CHECK_CALL.search(cell.source)
            if found:
                return found.group(1)
    return None


def find_submissions(folder: Path | str) -> list[tuple[Submission, str | None]]:
    """Every notebook under ``folder`` as (Submission, problem reading it or None)."""
    import nbformat
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if ".ipynb_checkpoints" in relative.parts:
            continue
        student = relative.parts[0] if len(relative.parts) > 1 else path.stem
        try:
            exercise = _exercise_of(nbformat.read(path, as_version=4))
            found.append((Submission(student, path, exercise), None))
        except Exception as error:  # noqa: BLE001 - not JSON, not a notebook...
            found.append((Submission(student, path, None),
                          f"not a readable notebook ({type(error).__name__}: {error})"))
    return found


def _grading_cell(key: int, exercise: str) -> str:
    """The cell run after a submission: its verdict as one JSON line."""
    return (f"import json as _json\n"
            f"from mqttsim.lab.exercises import check as _check\n"
            f"try:\n"
            f"    _verdict = _check({exercise!r}, answer)\n"
            f"    _result = {{'key': {key}, 'correct': _verdict.correct,\n"
            f"               'answered': _verdict.answered, 'message': _verdict.message}}\n"
            f"except NameError:\n"
            f"    _result = {{'key': {key}, 'error': 'no answer: the answer cell did not run "
            f"(an error before it, or no answer cell)'}}\n"
            f"except Exception as _error:\n"
            f"    _result = {{'key': {key}, 'error': f'{{type(_error).__name__}}: {{_error}}'}}\n"
            f"print({MARK!r} + _json.dumps(_result))")


def _combined(batch: list[tuple[int, Submission]]) -> tuple[Any, dict[int, list[int]]]:
    """One notebook running each submission's code cells on a fresh namespace in its own
    folder, each followed by its grading cell; and the cell indexes of each submission."""
    import nbformat
    combined = nbformat.v4.new_notebook()
    cells_of: dict[int, list[int]] = {}
    for key, submission in batch:
        notebook = nbformat.read(submission.path, as_version=4)
        start = len(combined.cells)
        combined.cells.append(nbformat.v4.new_code_cell(
            f"%reset -f\n%cd {str(submission.path.parent.resolve())!r}"))
        combined.cells += [c for c in notebook.cells if c.cell_type == "code"]
        combined.cells.append(nbformat.v4.new_code_cell(_grading_cell(key, submission.exercise)))
        cells_of[key] = list(range(start, len(combined.cells)))
    return combined, cells_of


def _execute(batch: list[tuple[int, Submission]], timeout: float,
             kernel_name: str | None) -> tuple[dict[int, dict], dict[int, str], str | None]:
    """Run ``batch`` in one kernel: (verdicts by key, first cell error by key, what stopped
    the kernel or None)."""
    from nbclient import NotebookClient
    combined, cells_of = _combined(batch)
    options = {"kernel_name": kernel_name} if kernel_name else {}
    client = NotebookClient(combined, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(batch[0][1].path.parent)}},
                            **options)
    stopped = None
    try:
        client.execute()
    except Exception as error:  # noqa: BLE001 - DeadKernelError, CellTimeoutError...
        stopped = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}" \
            if str(error).strip() else type(error).__name__
    verdicts: dict[int, dict] = {}
    errors: dict[int, str] = {}
    for key, indexes in cells_of.items():
        for number, index in enumerate(indexes[1:-1], 1):
            for out in combined.cells[index].get("outputs", []):
                if out.get("output_type") == "error" and key not in errors:
                    errors[key] = f"code cell {number} raised {out['ename']}: {out['evalue']}"
        for out in combined.cells[indexes[-1]].get("outputs", []):
            for line in str(out.get("text", "")).splitlines():
                if line.startswith(MARK):
                    verdicts[key] = json.loads(line[len(MARK):])
    return verdicts, errors, stopped


def grade(folder: Path | str, timeout: float = 120.0, kernel_name: str | None = None) -> Any:
    """The grade table of every notebook under ``folder`` (``GRADE_COLUMNS``, one row per
    notebook): result "pass", "fail", "not answered" or "error", score 1 or 0."""
    import pandas as pd
    rows: dict[int, dict] = {}
    runnable: list[tuple[int, Submission]] = []
    for key, (submission, problem) in enumerate(find_submissions(folder)):
        rows[key] = {"student": submission.student, "exercise": submission.exercise or "?",
                     "notebook": str(submission.path.relative_to(folder)), "result": "error",
                     "score": 0, "message": problem or ""}
        if problem is None and submission.exercise is None:
            rows[key]["message"] = "no check(\"...\", answer) cell: which exercise is this?"
        elif problem is None:
            runnable.append((key, submission))
    verdicts: dict[int, dict] = {}
    errors: dict[int, str] = {}
    waiting = list(runnable)
    while waiting:
        done, failed, stopped = _execute(waiting, timeout, kernel_name)
        verdicts.update(done)
        errors.update(failed)
        left = [(key, s) for key, s in waiting if key not in done]
        if not stopped or not left:
            break
        # The kernel died or hung in the first submission without a verdict: that one is
        # an error, the ones after it run on in a new kernel.
        culprit = left[0][0]
        errors[culprit] = f"did not finish: its kernel died or it ran too long ({stopped})"
        waiting = left[1:]
    for key, _ in runnable:
        verdict, row = verdicts.get(key), rows[key]
        if verdict is None or "error" in verdict:
            row["message"] = errors.get(key) or (verdict or {}).get("error", "no verdict")
            continue
        row["result"] = ("pass" if verdict["correct"] else
                         "fail" if verdict["answered"] else "not answered")
        row["score"] = int(bool(verdict["correct"]))
        row["message"] = verdict["message"] + (f" (note: {errors[key]})" if key in errors
                                               else "")
    table = pd.DataFrame([rows[k] for k in sorted(rows)], columns=list(GRADE_COLUMNS))
    return table.sort_values(["student", "exercise"], kind="stable").reset_index(drop=True)


def answer_key() -> dict[str, Any]:
    """The right answer to every exercise, worked out by the checkers' own runs (for the
    teacher: ``check(id, answer_key()[id])`` passes)."""
    from . import exercises as ex
    from . import exercises_mqtt as mq
    invalid, matching = ex._topic_truth()
    retained, seq = mq._retained_truth()
    senders, at = mq._wills_truth()
    received, dropped, kept = mq._queue_truth()
    frames, with_mqtt, pub_bytes = mq._capture_truth()
    return {
        "publish-bytes": {"wire": ex._publish_wire(0).hex(" "),
                          "qos1_extra": len(ex._publish_wire(1)) - len(ex._publish_wire(0))},
        "topic-filters": {"invalid": set(invalid), "matching": set(matching)},
        "qos-packets": {qos: ex._flow_packets(qos) for qos in (0, 1, 2)},
        "keepalive": round(ex._broker_closes_at()[0], 2),
        "sessions": {"clean_false": ex._messages_received(False),
                     "clean_true": ex._messages_received(True)},
        "loss": {"tcp": ex._lost("tcp"), "datagram": ex._lost("datagram")},
        "retained": {"received": retained, "kitchen_seq": seq},
        "wills": {"wills_from": set(senders), "faraway_at": round(at, 2)},
        "session-expiry": {"expiry_60": mq._received_with_expiry(60),
                           "expiry_10": mq._received_with_expiry(10)},
        "shared-subscriptions": mq._shared_truth(),
        "offline-queue": {"received": received, "dropped": dropped, "kept": kept},
        "capture": {"frames": frames, "with_mqtt": with_mqtt, "pub_bytes": pub_bytes},
    }


# --- the command line ------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="FOLDER", nargs="?",
                        help="the submitted notebooks: FOLDER/STUDENT/*.ipynb, or "
                             "FOLDER/STUDENT.ipynb")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="for one cell of a submission (default 120)")
    parser.add_argument("--key", action="store_true",
                        help="print the answer key (the right answers, worked out from the "
                             "simulator) instead of grading")


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    if args.key:
        for exercise, answer in answer_key().items():
            print(f"{exercise:22} {_shown(answer)}")
        return 0
    if not args.folder:
        print("mqttsim grade: give the FOLDER of submitted notebooks (or --key)",
              file=sys.stderr)
        return 2
    try:
        table = grade(args.folder, timeout=args.timeout)
    except FileNotFoundError as error:
        print(f"mqttsim grade: {error}", file=sys.stderr)
        return 2
    if table.empty:
        print(f"no notebooks under {args.folder}")
        return 0
    with pd.option_context("display.width", 160, "display.max_colwidth", 70,
                           "display.max_rows", 10_000):
        print(table[["student", "exercise", "result", "score", "message"]]
              .to_string(index=False))
        totals = table.groupby("student")["score"].agg(["sum", "count"])
        print("\n" + "\n".join(f"{student}: {int(r['sum'])} of {int(r['count'])}"
                               for student, r in totals.iterrows()))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def _shown(answer: Any) -> str:
    """An answer as Python, with sets sorted so the key reads the same every time."""
    if isinstance(answer, (set, frozenset)):
        return "{" + ", ".join(repr(v) for v in sorted(answer)) + "}"
    if isinstance(answer, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(v)}" for k, v in answer.items()) + "}"
    return repr(answer)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mqttsim grade")
    add_arguments(parser)
    return run(parser.parse_args(argv))
