"""The README's command-line section works in a new terminal: `mqttsim` lives in the virtual
environment, so the section must activate it (or call `.venv/bin/mqttsim`) before the first
`mqttsim` command, and doing what it says must find the command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command_line_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]


def test_the_first_command_activates_the_virtual_environment() -> None:
    first_block = re.search(r"```\n(.*?)```", command_line_section(), flags=re.S).group(1)
    first_command = first_block.splitlines()[0].split("#")[0].strip()
    assert first_command == "source .venv/bin/activate", first_block
    assert ".venv/bin/mqttsim" in command_line_section()  # the way without activating


def test_activating_the_environment_finds_mqttsim_in_a_fresh_shell() -> None:
    """As a new terminal would: a PATH without the environment, then the README's line
    (with this test run's environment standing for the repository's .venv)."""
    bash = shutil.which("bash")
    venv = Path(sys.executable).parent.parent
    assert (venv / "bin" / "activate").is_file(), f"{venv} is not a virtual environment"
    clean_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                 if Path(p).resolve() != (venv / "bin").resolve())
    env = {**os.environ, "PATH": clean_path}
    env.pop("VIRTUAL_ENV", None)
    before = subprocess.run([bash, "-c", "command -v mqttsim"], env=env, capture_output=True,
                            text=True, timeout=30)
    after = subprocess.run(
        [bash, "-c", f"source {venv}/bin/activate && command -v mqttsim"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=60)
    if before.returncode == 0:  # installed elsewhere too: only the second half can be shown
        assert Path(before.stdout.strip()).parent.resolve() != (venv / "bin").resolve()
    assert after.returncode == 0, after.stderr
    # The environment's own script (tests/test_packaging.py runs it).
    assert Path(after.stdout.strip()).resolve() == (venv / "bin" / "mqttsim").resolve()
